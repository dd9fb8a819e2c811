/*
 * The notification log, as Alertmanager keeps it: per (group, receiver, integration) the
 * fingerprints of the firing and resolved alerts last notified and when. Deduplication
 * compares a group against it; persisting it keeps a restarted engine from notifying a
 * firing group again.
 */
#define DSF_MODULE "notify"
#include "alarm/notify/internal.h"
#include "common/bucket.h"
#include "common/log.h"
#include "common/loop.h"

#include <event2/event.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NF_LOG_FILE "nflog.json"
#define NF_LOG_SLOTS 1024
/* Writing (and fsyncing) the whole log after every notification would stall the loop in a
 * storm of a thousand groups; batching the writes risks, after a crash, only repeating what
 * was sent in the last moment before it. */
#define NF_LOG_SYNC_MS 100
/* Entries older than this are forgotten (Alertmanager's default data retention). */
#define NF_LOG_RETENTION_NS (120LL * 3600 * 1000000000)

static size_t slot_of(const char *key)
{
    return dsf_fnv1a32(key, strlen(key)) % NF_LOG_SLOTS;
}

static void free_entry(struct nf_log_entry *e)
{
    free(e->key);
    free(e->firing);
    free(e->resolved);
    free(e);
}

struct nf_log_entry *nf_log_get(struct nf_log *lg, const char *key, int create)
{
    size_t s = slot_of(key);
    for (struct nf_log_entry *e = lg->slots[s]; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    if (!create)
        return NULL;
    struct nf_log_entry *e = calloc(1, sizeof(*e));
    if (!e || !(e->key = strdup(key))) {
        free(e);
        return NULL;
    }
    e->next = lg->slots[s];
    lg->slots[s] = e;
    lg->count++;
    return e;
}

static int set_fps(uint64_t **dst, size_t *n, const uint64_t *src, size_t count)
{
    uint64_t *copy = NULL;
    if (count && !(copy = malloc(count * sizeof(*copy))))
        return -1;
    if (count)
        memcpy(copy, src, count * sizeof(*copy));
    free(*dst);
    *dst = copy;
    *n = count;
    return 0;
}

static void put_fps(struct dsf_buf *b, const uint64_t *v, size_t n)
{
    buf_putc(b, '[');
    for (size_t i = 0; i < n; i++)
        buf_printf(b, "%s\"%016" PRIx64 "\"", i ? "," : "", v[i]);
    buf_putc(b, ']');
}

/* Forgets what is past retention, and entries that never recorded a notification (resolved
 * groups that were never told), so a churning fleet does not grow the log forever. */
static void prune(struct nf_log *lg, int64_t now_ns)
{
    for (size_t s = 0; s < NF_LOG_SLOTS; s++) {
        struct nf_log_entry **pp = &lg->slots[s];
        while (*pp) {
            struct nf_log_entry *e = *pp;
            if (!e->inflight && e->at_ns < now_ns - NF_LOG_RETENTION_NS) {
                *pp = e->next;
                free_entry(e);
                lg->count--;
            } else {
                pp = &e->next;
            }
        }
    }
}

static int save(struct nf_log *lg)
{
    struct dsf_buf b = {0};
    prune(lg, dsf_now_ns());
    buf_puts(&b, "{\"entries\":[");
    int first = 1;
    for (size_t s = 0; s < NF_LOG_SLOTS; s++) {
        for (struct nf_log_entry *e = lg->slots[s]; e; e = e->next) {
            if (!e->at_ns)
                continue;
            buf_puts(&b, first ? "\n{\"key\":" : ",\n{\"key\":");
            first = 0;
            nf_json_str(&b, e->key);
            buf_printf(&b, ",\"at\":%" PRId64 ",\"firing\":", e->at_ns);
            put_fps(&b, e->firing, e->nfiring);
            buf_puts(&b, ",\"resolved\":");
            put_fps(&b, e->resolved, e->nresolved);
            buf_putc(&b, '}');
        }
    }
    buf_puts(&b, "\n]}\n");
    int rc = b.oom ? -1 : nf_write_atomic(lg->dir, NF_LOG_FILE, b.data, b.len);
    if (rc)
        log_error("cannot write %s/%s: a restart may notify again", lg->dir, NF_LOG_FILE);
    buf_free(&b);
    return rc;
}

static void on_sync(evutil_socket_t fd, short what, void *arg)
{
    struct nf_log *lg = arg;
    lg->dirty = 0;
    save(lg);
}

int nf_log_record(struct nf_log *lg, struct nf_log_entry *e, const uint64_t *firing, size_t nfiring,
                  const uint64_t *resolved, size_t nresolved, int64_t now_ns)
{
    if (set_fps(&e->firing, &e->nfiring, firing, nfiring) ||
        set_fps(&e->resolved, &e->nresolved, resolved, nresolved))
        return -1;
    e->at_ns = now_ns;
    if (!lg->sync)
        return save(lg);
    if (!lg->dirty) {
        lg->dirty = 1;
        struct timeval tv = {0, NF_LOG_SYNC_MS * 1000};
        evtimer_add(lg->sync, &tv);
    }
    return 0;
}

static int read_fps(json_t *arr, uint64_t **out, size_t *n)
{
    size_t count = json_array_size(arr);
    *out = NULL;
    *n = 0;
    if (!count)
        return 0;
    if (!(*out = calloc(count, sizeof(**out))))
        return -1;
    for (size_t i = 0; i < count; i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        if (!s)
            return -1;
        (*out)[(*n)++] = strtoull(s, NULL, 16);
    }
    return 0;
}

static int load(struct nf_log *lg, const char *path, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) {
        /* A missing log is a first start; an unreadable one is reported, not fatal: losing
         * it only risks one repeated notification. */
        if (access(path, F_OK) == 0)
            log_warn("%s: %s: starting with an empty notification log", path, jerr.text);
        return 0;
    }
    int64_t oldest = dsf_now_ns() - NF_LOG_RETENTION_NS;
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(root, "entries"), i, item)
    {
        const char *key = json_string_value(json_object_get(item, "key"));
        json_int_t at = json_integer_value(json_object_get(item, "at"));
        if (!key || at < oldest)
            continue;
        struct nf_log_entry *e = nf_log_get(lg, key, 1);
        if (!e || read_fps(json_object_get(item, "firing"), &e->firing, &e->nfiring) ||
            read_fps(json_object_get(item, "resolved"), &e->resolved, &e->nresolved)) {
            json_decref(root);
            snprintf(err, errlen, "%s: out of memory or bad entry %zu", path, i);
            return -1;
        }
        e->at_ns = at;
    }
    json_decref(root);
    return 0;
}

int nf_log_open(struct nf_log *lg, struct event_base *base, const char *dir, char *err,
                size_t errlen)
{
    memset(lg, 0, sizeof(*lg));
    lg->slots = calloc(NF_LOG_SLOTS, sizeof(*lg->slots));
    lg->dir = strdup(dir);
    if (base)
        lg->sync = evtimer_new(base, on_sync, lg);
    if (!lg->slots || !lg->dir || (base && !lg->sync)) {
        nf_log_close(lg);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, NF_LOG_FILE);
    if (load(lg, path, err, errlen)) {
        nf_log_close(lg);
        return -1;
    }
    return 0;
}

void nf_log_close(struct nf_log *lg)
{
    if (lg->dirty)
        save(lg);
    if (lg->sync)
        event_free(lg->sync);
    if (lg->slots) {
        for (size_t s = 0; s < NF_LOG_SLOTS; s++) {
            while (lg->slots[s]) {
                struct nf_log_entry *e = lg->slots[s];
                lg->slots[s] = e->next;
                free_entry(e);
            }
        }
    }
    free(lg->slots);
    free(lg->dir);
    memset(lg, 0, sizeof(*lg));
}
