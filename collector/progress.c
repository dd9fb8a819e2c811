#include "collector/progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PENDING, DONE, ABANDONED };

static int grow(struct progress *p)
{
    size_t cap = p->cap ? p->cap * 2 : 64;
    struct progress_entry *ring = malloc(cap * sizeof(*ring));
    if (!ring)
        return -1;
    for (size_t i = 0; i < p->count; i++)
        ring[i] = p->ring[(p->head + i) % p->cap];
    free(p->ring);
    p->ring = ring;
    p->cap = cap;
    p->head = 0;
    return 0;
}

uint64_t progress_push(struct progress *p, uint64_t value, const char *tag)
{
    if (p->count == p->cap && grow(p))
        return UINT64_MAX;
    struct progress_entry *e = &p->ring[(p->head + p->count) % p->cap];
    e->value = value;
    snprintf(e->tag, sizeof(e->tag), "%s", tag ? tag : "");
    e->state = PENDING;
    return p->first_slot + p->count++;
}

static struct progress_entry *at(struct progress *p, uint64_t slot)
{
    if (slot < p->first_slot || slot >= p->first_slot + p->count)
        return NULL;
    return &p->ring[(p->head + (slot - p->first_slot)) % p->cap];
}

void progress_abandon(struct progress *p, uint64_t slot)
{
    struct progress_entry *e = at(p, slot);
    if (e)
        e->state = ABANDONED;
}

void progress_done(struct progress *p, uint64_t slot)
{
    struct progress_entry *done = at(p, slot);
    if (!done)
        return;
    done->state = DONE;
    for (size_t i = 0; i < p->count; i++) { /* a resend stands in for its lost copy */
        struct progress_entry *e = &p->ring[(p->head + i) % p->cap];
        if (e->state == ABANDONED && e->value == done->value && strcmp(e->tag, done->tag) == 0)
            e->state = DONE;
    }
    while (p->count && p->ring[p->head].state == DONE) {
        struct progress_entry *e = &p->ring[p->head];
        /* Within one tag (one agent run) the durable point only moves up: a late resend
         * of an older message does not take it back. */
        if (!p->has_durable || strcmp(p->durable_tag, e->tag) != 0 || e->value > p->durable)
            p->durable = e->value;
        memcpy(p->durable_tag, e->tag, sizeof(p->durable_tag));
        p->has_durable = p->dirty = 1;
        p->head = (p->head + 1) % p->cap;
        p->count--;
        p->first_slot++;
    }
}

size_t progress_pending(const struct progress *p)
{
    return p->count;
}

void progress_free(struct progress *p)
{
    free(p->ring);
    memset(p, 0, sizeof(*p));
}
