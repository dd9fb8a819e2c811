/* Aggregation's parts: rules (aggregate_rules.c), number output (aggregate_format.c). */
#ifndef DSF_COLLECTOR_AGGREGATE_IMPL_H
#define DSF_COLLECTOR_AGGREGATE_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
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

#endif
