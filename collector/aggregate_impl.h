/* Aggregation's parts: the per-line intake (aggregate.c), a series' memory
 * (aggregate_series.c), emission and lifetime (aggregate_emit.c), rules (aggregate_rules.c),
 * number output (aggregate_format.c). */
#ifndef DSF_COLLECTOR_AGGREGATE_IMPL_H
#define DSF_COLLECTOR_AGGREGATE_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "collector/aggregate.h"
#include "common/buf.h"
#include "common/htab.h"
#include "common/lp.h"

enum fn { FN_AUTO, FN_MEAN, FN_MIN, FN_MAX, FN_LAST, FN_SUM, FN_COUNT };

struct rule_field {
    char *key; /* escaped as in line protocol */
    uint32_t n;
    uint8_t fn;
};

struct rule {
    char *measurement; /* escaped; "*" matches any measurement without its own rule */
    uint32_t n;
    int64_t window_ns;
    uint8_t deflt; /* FN_AUTO: floats mean, everything else last (integers are counters) */
    struct rule_field *fields;
    size_t nfields;
};

/* "MEASUREMENT [window=DURATION] [default=FN] [FIELD=FN ...]": 0, or -1 with err. */
int agg_rule_parse(const char *text, struct rule *r, char *err, size_t errlen);
void agg_rule_free(struct rule *r);
/* The function a field of the given value type gets under rule r. */
uint8_t agg_field_fn(const struct rule *r, const char *key, uint32_t n, uint8_t type);

/* Line-protocol values, without printf: emitting formats a few numbers per window. */
void agg_put_i64(struct dsf_buf *out, int64_t v);
void agg_put_value(struct dsf_buf *out, uint8_t type, union lp_value v);

/* ---- The aggregate's state, shared by the intake (aggregate.c), a series' memory
 * (aggregate_series.c) and emission (aggregate_emit.c). */

struct collector;
struct event;
struct route; /* an agent's line-to-series map: aggregate.c */
struct writer_mark;
struct writer_mark_ops;

/* Open windows per series: the current one, the previous during its grace, and room for
 * out-of-order samples; more than that emits the oldest early. */
#define SLOTS 4

/* A field's state in a window: only what its function needs, so that a series' windows stay
 * small (32 bytes a field) and a sample touches few cache lines. */
struct acc {
    union lp_value v;    /* mean: the float sum; sum, min, max, last: the typed result */
    int64_t last_ts;     /* last: the sample v came from */
    struct dsf_buf *str; /* last of a string field, escaped as it came; NULL until one comes */
    uint32_t count;
    uint8_t type; /* enum dsf_vtype of the first value; later values of another type conflict */
};

/* The claims a window holds, and an emitted window until stored. A 10 s window of 2 s
 * samples holds 5: inline, no allocation, in the cache lines the window already uses. */
#define INLINE_CLAIMS 6
struct claim_list {
    struct claim **heap; /* NULL while the inline room suffices */
    uint32_t n, cap;
    struct claim *inl[INLINE_CLAIMS];
};

struct window {
    int64_t start;
    int64_t touched_ms; /* monotonic time of the last sample folded in */
    uint32_t samples;
    int open;
    struct claim_list claims;
};

struct fieldspec {
    uint32_t off, n; /* the key in the series' names */
    uint8_t fn;
};

struct series {
    /* What a sample reads first, in the first cache lines: lookup, then its window. */
    struct dsf_hlink link; /* first: the table's entries are series */
    uint32_t keylen;
    int cur;         /* the slot the last sample went to */
    uint32_t bucket; /* its agent's (MQTT), UINT32_MAX when not known */
    const struct rule *rule;
    int64_t max_ts;       /* newest sample time */
    int64_t emitted_upto; /* start of the newest window emitted; older samples are late */
    int64_t due;          /* no open window can be passed before max_ts reaches this */
    int64_t seen_ms;
    struct acc *acc[SLOTS]; /* each window's accumulators, one per field */
    struct window *win;     /* SLOTS of them */
    struct fieldspec *fields;
    uint32_t nfields, capfields;
    char *names; /* field keys, escaped, one after the other */
    uint32_t nameslen, namescap;
    struct held *inflight;
    char *end;  /* of the one allocation (see agg_series_new) */
    char key[]; /* measurement and sorted tags: the emitted point's head */
};

struct claim {
    struct writer_mark *marks[2];
    size_t n;
    int refs, failed;
};

struct held {
    struct held *next, **pprev; /* the series' windows in flight */
    struct claim_list claims;
};

struct aggregate {
    struct collector *c;
    aggregate_sink sink;
    void *sink_ctx;
    struct rule *rules;
    size_t nrules;
    const struct rule *any;
    int64_t grace_ns, grace_ms;
    struct dsf_htab series, routes; /* entries begin with their link */
    struct event *sweep;
    /* Per bucket, since it was last gained: windows starting before wall_ns are held until
     * the monotonic until_ms (NULL until a bucket is gained). */
    struct gain {
        int64_t wall_ns, until_ms;
    } * gain;
    uint32_t nbuckets;
    int64_t handover_ms;
    struct dsf_buf key, out;
    /* The message being taken. */
    struct dsf_buf ident[3]; /* its identity tag values, escaped */
    struct writer_mark *marks[2];
    size_t nmarks;
    struct claim *claim;
    uint32_t bucket; /* its agent's, UINT32_MAX when not known */
    int duplicate;   /* a copy of a message already folded: its lines are not folded again */
    int64_t now_ms;
    struct route *route; /* its agent's */
    uint32_t line;       /* lines taken */
};

/* Series unseen for this long (or ten windows, if longer) are forgotten. */
#define SERIES_KEEP_MS 60000

static inline struct claim **agg_list_items(struct claim_list *l)
{
    return l->heap ? l->heap : l->inl;
}

static inline int agg_in_block(const struct series *s, const void *p)
{
    return (const char *)p >= (const char *)s && (const char *)p < s->end;
}

/* aggregate.c */
void agg_routes_sweep(struct aggregate *a, int64_t now, int all);

/* aggregate_series.c */
struct series *agg_series_new(const struct rule *r, const char *key, size_t keylen,
                              const struct lp_line *l);
void agg_series_free(struct series *s);
/* The new field's index, or -1 without memory. */
int agg_add_field(struct series *s, const struct lp_kv *kv);

/* aggregate_emit.c */
extern const struct writer_mark_ops agg_claim_ops;
void agg_claim_release(struct claim *cl, int failed);
void agg_list_release(struct claim_list *l, int failed);
void agg_held_finish(struct held *h, int failed);
/* The window becomes one point at its start; its claims wait for the store with it. */
void agg_emit(struct aggregate *a, struct series *s, struct window *w);
/* Windows before start whose end plus the grace the series has passed. */
void agg_emit_passed(struct aggregate *a, struct series *s, int64_t start);
/* The window waits for messages of its bucket's previous owner (aggregate_bucket_gained). */
int agg_held_back(const struct aggregate *a, const struct series *s, const struct window *w,
                  int64_t now_ms);

#endif
