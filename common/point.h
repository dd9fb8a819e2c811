/*
 * A batch of metric points: what inputs produce each cycle and what every renderer
 * (line protocol, JSON, Prometheus text) reads. Strings live in one arena; all arrays
 * are reused, so a steady-state cycle allocates nothing.
 */
#ifndef DSF_POINT_H
#define DSF_POINT_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

enum dsf_vtype { DSF_V_FLOAT, DSF_V_INT, DSF_V_UINT, DSF_V_BOOL, DSF_V_STR };

struct dsf_field {
    uint32_t key; /* arena offset */
    enum dsf_vtype type;
    union {
        double f;
        int64_t i;
        uint64_t u;
        int b;
        uint32_t s; /* arena offset */
    } v;
};

struct dsf_tag {
    uint32_t key, val; /* arena offsets */
};

struct dsf_point {
    uint32_t name; /* arena offset */
    uint32_t tag0, ntags, field0, nfields;
    int64_t ts_ns;
};

struct dsf_batch {
    struct dsf_point *points;
    size_t npoints, cap_points;
    struct dsf_tag *tags;
    size_t ntags, cap_tags;
    struct dsf_field *fields;
    size_t nfields, cap_fields;
    struct dsf_buf strings;
    int open; /* a point is being built */
    uint64_t dropped_oom;
};

void batch_reset(struct dsf_batch *b);
void batch_free(struct dsf_batch *b);
void batch_begin(struct dsf_batch *b, const char *name, int64_t ts_ns);
void batch_tag(struct dsf_batch *b, const char *key, const char *val);
void batch_field_f(struct dsf_batch *b, const char *key, double v);
void batch_field_i(struct dsf_batch *b, const char *key, int64_t v);
void batch_field_u(struct dsf_batch *b, const char *key, uint64_t v);
void batch_field_b(struct dsf_batch *b, const char *key, int v);
void batch_field_s(struct dsf_batch *b, const char *key, const char *v);
/* Closes the point; one without fields is discarded (line protocol needs a field). */
void batch_end(struct dsf_batch *b);

static inline const char *batch_str(const struct dsf_batch *b, uint32_t off)
{
    return b->strings.data + off;
}

/* Tags added to every point when rendered: the identity (ns, mci, vm, csp, region, host). */
struct dsf_tagset {
    const char *keys[16];
    const char *vals[16];
    size_t count;
};
void tagset_add(struct dsf_tagset *t, const char *key, const char *val);

#endif
