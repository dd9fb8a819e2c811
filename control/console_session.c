#include "control/console_session.h"
#include "common/htab.h"
#include "common/http.h"

#include <stdlib.h>
#include <string.h>

struct session {
    struct dsf_hlink link;
    struct session *prev, *next; /* least recently used first */
    int64_t created_ms, used_ms;
    char id[CONSOLE_SESSION_ID_LEN + 1];
};

struct console_sessions {
    struct dsf_htab byid;
    struct session *oldest, *newest;
    int64_t idle_ms, max_ms;
};

struct console_sessions *console_sessions_new(int64_t idle_ms, int64_t max_ms)
{
    struct console_sessions *cs = calloc(1, sizeof(*cs));
    if (!cs || dsf_htab_grow(&cs->byid) < 0) {
        free(cs);
        return NULL;
    }
    cs->idle_ms = idle_ms;
    cs->max_ms = max_ms;
    return cs;
}

void console_sessions_free(struct console_sessions *cs)
{
    if (!cs)
        return;
    dsf_htab_free_all(&cs->byid, NULL);
    free(cs);
}

static void unlink_lru(struct console_sessions *cs, struct session *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        cs->oldest = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        cs->newest = s->prev;
    s->prev = s->next = NULL;
}

static void push_newest(struct console_sessions *cs, struct session *s)
{
    s->prev = cs->newest;
    s->next = NULL;
    if (cs->newest)
        cs->newest->next = s;
    else
        cs->oldest = s;
    cs->newest = s;
}

static void drop(struct console_sessions *cs, struct session *s)
{
    unlink_lru(cs, s);
    dsf_htab_remove(&cs->byid, &s->link);
    free(s);
}

static int expired(const struct console_sessions *cs, const struct session *s, int64_t now)
{
    return now - s->used_ms >= cs->idle_ms || now - s->created_ms >= cs->max_ms;
}

/* Every byte compared whatever the first difference: the id is the secret. */
static int same_id(const char *a, const char *b)
{
    unsigned char diff = 0;
    for (size_t i = 0; i < CONSOLE_SESSION_ID_LEN; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

static struct session *find(struct console_sessions *cs, const char *id)
{
    if (strlen(id) != CONSOLE_SESSION_ID_LEN)
        return NULL;
    uint64_t h = dsf_hash_bytes(id, CONSOLE_SESSION_ID_LEN);
    for (struct dsf_hlink *l = dsf_htab_first(&cs->byid, h); l; l = l->next) {
        struct session *s = (struct session *)l;
        if (l->hash == h && same_id(s->id, id))
            return s;
    }
    return NULL;
}

int console_session_create(struct console_sessions *cs, int64_t now_ms, char *id)
{
    console_sessions_live(cs, now_ms);
    if (cs->byid.count >= CONSOLE_SESSIONS_MAX)
        drop(cs, cs->oldest);
    struct session *s = calloc(1, sizeof(*s));
    if (!s)
        return -1;
    if (dsf_random_hex(s->id, CONSOLE_SESSION_ID_LEN / 2) < 0) {
        free(s);
        return -1;
    }
    s->created_ms = s->used_ms = now_ms;
    dsf_htab_insert(&cs->byid, &s->link, dsf_hash_bytes(s->id, CONSOLE_SESSION_ID_LEN));
    push_newest(cs, s);
    memcpy(id, s->id, CONSOLE_SESSION_ID_LEN + 1);
    return 0;
}

int console_session_touch(struct console_sessions *cs, const char *id, int64_t now_ms)
{
    struct session *s = find(cs, id);
    if (!s)
        return 0;
    if (expired(cs, s, now_ms)) {
        drop(cs, s);
        return 0;
    }
    s->used_ms = now_ms;
    unlink_lru(cs, s);
    push_newest(cs, s);
    return 1;
}

int console_session_end(struct console_sessions *cs, const char *id)
{
    struct session *s = find(cs, id);
    if (s)
        drop(cs, s);
    return s != NULL;
}

size_t console_sessions_live(struct console_sessions *cs, int64_t now_ms)
{
    /* At most CONSOLE_SESSIONS_MAX: a walk of them all is cheap. */
    for (struct session *s = cs->oldest, *next; s; s = next) {
        next = s->next;
        if (expired(cs, s, now_ms))
            drop(cs, s);
    }
    return cs->byid.count;
}

int console_cookie_get(const char *header, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    for (const char *p = header; p && *p;) {
        p += strspn(p, " \t;");
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > n && strncmp(p, name, n) == 0 && p[n] == '=') {
            if (len - n - 1 >= cap)
                return -1;
            memcpy(out, p + n + 1, len - n - 1);
            out[len - n - 1] = '\0';
            return 0;
        }
        p = end;
    }
    return -1;
}
