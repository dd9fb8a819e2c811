#include "agent/buffer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPARE_ENTRIES 4

void buffer_init(struct buffer *b, uint64_t max_bytes, int release_on_delivery)
{
    memset(b, 0, sizeof(*b));
    b->max_bytes = max_bytes;
    b->release_on_delivery = release_on_delivery;
}

static void destroy_list(struct buffer_entry *e)
{
    while (e) {
        struct buffer_entry *next = e->next;
        free(e);
        e = next;
    }
}

void buffer_free(struct buffer *b)
{
    destroy_list(b->head);
    destroy_list(b->free_list);
    b->head = b->tail = b->free_list = NULL;
    buf_free(&b->scratch.data);
}

static void recycle(struct buffer *b, struct buffer_entry *e)
{
    if (b->nfree < SPARE_ENTRIES) {
        e->next = b->free_list;
        b->free_list = e;
        b->nfree++;
    } else {
        free(e);
    }
}

/* Unlinks the head entry and accounts for it. */
static struct buffer_entry *pop_head(struct buffer *b)
{
    struct buffer_entry *e = b->head;
    b->head = e->next;
    if (!b->head)
        b->tail = NULL;
    b->bytes -= e->len;
    b->messages--;
    if (e->state == ENTRY_INFLIGHT)
        b->inflight--;
    return e;
}

static struct buffer_entry *get_entry(struct buffer *b, size_t len)
{
    for (struct buffer_entry **pp = &b->free_list; *pp; pp = &(*pp)->next) {
        if ((*pp)->cap >= len) {
            struct buffer_entry *e = *pp;
            *pp = e->next;
            b->nfree--;
            return e;
        }
    }
    /* Round up so that entries of slightly varying size fit the recycled ones. */
    size_t cap = (len + 1023) & ~(size_t)1023;
    struct buffer_entry *e = malloc(sizeof(*e) + cap);
    if (e)
        e->cap = (uint32_t)cap;
    return e;
}

static void count_drop(struct buffer *b, size_t len, uint32_t npoints)
{
    b->dropped_messages++;
    b->dropped_points += npoints;
    b->dropped_bytes += len;
}

/* Links a copy at the tail; the caller has made room. */
static int link_tail(struct buffer *b, const char *boot, uint64_t seq, const void *data, size_t len,
                     uint32_t npoints)
{
    struct buffer_entry *e = get_entry(b, len);
    if (!e)
        return -1;
    memcpy(e->data, data, len);
    snprintf(e->boot, sizeof(e->boot), "%s", boot);
    e->len = (uint32_t)len;
    e->seq = seq;
    e->npoints = npoints;
    e->state = ENTRY_QUEUED;
    e->sent_ms = 0;
    e->next = NULL;
    if (b->tail)
        b->tail->next = e;
    else
        b->head = e;
    b->tail = e;
    b->bytes += len;
    b->messages++;
    return 0;
}

void buffer_refill(struct buffer *b)
{
    struct spool_record *r = &b->scratch;
    size_t len;
    while (b->spool && (len = spool_peek_len(b->spool)) && b->bytes + len <= b->max_bytes) {
        if (spool_take(b->spool, r))
            break;
        if (link_tail(b, r->boot, r->seq, r->data.data, r->data.len, r->npoints))
            count_drop(b, r->data.len, r->npoints);
    }
}

void buffer_save(struct buffer *b)
{
    if (!b->spool || !b->head)
        return;
    /* Newest first, each to the spool's front, so the spool ends up in send order. */
    size_t n = b->messages, i = 0;
    struct buffer_entry **all = calloc(n, sizeof(*all));
    if (!all)
        return;
    for (struct buffer_entry *e = b->head; e && i < n; e = e->next)
        all[i++] = e;
    while (i--)
        spool_put(b->spool, all[i]->boot, all[i]->seq, all[i]->npoints, all[i]->data, all[i]->len,
                  1);
    free(all);
    while (b->head)
        recycle(b, pop_head(b));
}

int buffer_append(struct buffer *b, const char *boot, uint64_t seq, const void *data, size_t len,
                  uint32_t npoints)
{
    if (b->spool) {
        buffer_refill(b);
        if (b->spool->messages || b->bytes + len > b->max_bytes) {
            /* Order is memory first, then the spool: once spooling, keep spooling. */
            return spool_put(b->spool, boot, seq, npoints, data, len, 0);
        }
    }
    if (len > b->max_bytes || len > UINT32_MAX) {
        count_drop(b, len, npoints);
        return -1;
    }
    while (b->head && b->bytes + len > b->max_bytes) {
        struct buffer_entry *old = pop_head(b);
        count_drop(b, old->len, old->npoints);
        recycle(b, old);
    }
    if (link_tail(b, boot, seq, data, len, npoints)) {
        count_drop(b, len, npoints);
        return -1;
    }
    return 0;
}

struct buffer_entry *buffer_next_queued(struct buffer *b)
{
    for (struct buffer_entry *e = b->head; e; e = e->next)
        if (e->state == ENTRY_QUEUED)
            return e;
    return NULL;
}

static struct buffer_sent *sent_slot(struct buffer *b, const char *boot)
{
    struct buffer_sent *oldest = &b->sent[0];
    for (size_t i = 0; i < BUFFER_SENT_BOOTS; i++) {
        struct buffer_sent *s = &b->sent[i];
        if (s->last_use && strcmp(s->boot, boot) == 0)
            return s;
        if (s->last_use < oldest->last_use)
            oldest = s;
    }
    snprintf(oldest->boot, sizeof(oldest->boot), "%s", boot);
    oldest->max_seq = 0;
    return oldest;
}

void buffer_mark_inflight(struct buffer *b, struct buffer_entry *e, int64_t now_ms)
{
    if (e->sent_ms)
        b->resent++;
    e->state = ENTRY_INFLIGHT;
    /* Never 0: 0 means "not published by this run", which acks cannot release. */
    e->sent_ms = now_ms ? now_ms : 1;
    b->inflight++;
    struct buffer_sent *s = sent_slot(b, e->boot);
    s->last_use = ++b->sent_uses;
    if (e->seq > s->max_seq)
        s->max_seq = e->seq;
}

uint64_t buffer_sent_max(const struct buffer *b, const char *boot)
{
    for (size_t i = 0; i < BUFFER_SENT_BOOTS; i++)
        if (b->sent[i].last_use && strcmp(b->sent[i].boot, boot) == 0)
            return b->sent[i].max_seq;
    return 0;
}

void buffer_delivered(struct buffer *b, uint64_t seq, int ok)
{
    for (struct buffer_entry *e = b->head; e; e = e->next) {
        if (e->seq != seq)
            continue;
        if (e->state == ENTRY_INFLIGHT)
            b->inflight--;
        e->state = ok ? ENTRY_DELIVERED : ENTRY_QUEUED;
        break;
    }
    if (!b->release_on_delivery)
        return;
    /* Release the delivered prefix; a delivered entry behind an undelivered one waits. */
    while (b->head && b->head->state == ENTRY_DELIVERED) {
        recycle(b, pop_head(b));
        b->released++;
    }
    buffer_refill(b);
}

/* Binary search of the sorted, disjoint ranges. */
static int in_ranges(const struct seq_range *r, size_t n, uint64_t seq)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (seq < r[mid].lo)
            hi = mid;
        else if (seq > r[mid].hi)
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

size_t buffer_ack_ranges(struct buffer *b, const char *boot, const struct seq_range *r, size_t n)
{
    struct buffer_entry **pp = &b->head, *prev = NULL;
    size_t released = 0;
    while (*pp) {
        struct buffer_entry *e = *pp;
        if (!e->sent_ms || strcmp(e->boot, boot) != 0 || !in_ranges(r, n, e->seq)) {
            prev = e;
            pp = &e->next;
            continue;
        }
        *pp = e->next;
        if (b->tail == e)
            b->tail = prev;
        b->bytes -= e->len;
        b->messages--;
        if (e->state == ENTRY_INFLIGHT)
            b->inflight--;
        recycle(b, e);
        b->released++;
        released++;
    }
    buffer_refill(b);
    return released;
}

size_t buffer_ack_range(struct buffer *b, const char *boot, uint64_t lo, uint64_t hi)
{
    struct seq_range r = {lo, hi};
    return buffer_ack_ranges(b, boot, &r, 1);
}

void buffer_requeue_inflight(struct buffer *b)
{
    for (struct buffer_entry *e = b->head; e; e = e->next) {
        if (e->state == ENTRY_INFLIGHT) {
            e->state = ENTRY_QUEUED;
            b->inflight--;
        }
    }
}

size_t buffer_requeue_stale(struct buffer *b, int64_t now_ms, int64_t timeout_ms)
{
    size_t n = 0;
    for (struct buffer_entry *e = b->head; e; e = e->next) {
        if (e->state == ENTRY_QUEUED || now_ms - e->sent_ms < timeout_ms)
            continue;
        if (e->state == ENTRY_INFLIGHT)
            b->inflight--;
        e->state = ENTRY_QUEUED;
        n++;
    }
    return n;
}
