/*
 * InfluxDB line protocol: an encoder with correct escaping and an allocation-free
 * parser over the whole grammar (escapes, quoted strings, i/u/float/bool, timestamps).
 */
#ifndef DSF_LP_H
#define DSF_LP_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/point.h"

/* ---- encoder ---- */
void lp_put_measurement(struct dsf_buf *out, const char *s);
void lp_put_key(struct dsf_buf *out, const char *s);          /* tag key, tag value or field key */
void lp_put_string_value(struct dsf_buf *out, const char *s); /* with the quotes */
void lp_put_float(struct dsf_buf *out, double v); /* shortest text that reads back exactly */
void lp_render_point(struct dsf_buf *out, const struct dsf_batch *b, const struct dsf_point *p,
                     const struct dsf_tagset *global);
void lp_render_batch(struct dsf_buf *out, const struct dsf_batch *b,
                     const struct dsf_tagset *global);

/* ---- parser ---- */
#define LP_MAX_TAGS 64
#define LP_MAX_FIELDS 255

struct lp_span {
    const char *p;
    uint32_t n;
};

struct lp_kv {
    struct lp_span key;
    struct lp_span
        val; /* tags: escaped text; fields: the raw value token (strings without quotes) */
    enum dsf_vtype type;
    union lp_value {
        double f;
        int64_t i;
        uint64_t u;
        int b;
    } num;
};

struct lp_line {
    struct lp_span measurement;
    uint32_t ntags, nfields;
    struct lp_kv tags[LP_MAX_TAGS];
    struct lp_kv fields[LP_MAX_FIELDS];
    int has_ts;
    int64_t ts;
};

/* Parses one line (without its newline). Returns 0, or -1 with a static reason. */
int lp_parse_line(const char *s, size_t n, struct lp_line *out, const char **reason);
/* A field's value as a double (a boolean as 0 or 1): 1, or 0 for a string. */
int lp_number(const struct lp_kv *kv, double *v);
/* The same checks without converting float values (their num.f is 0): for a consumer that
 * forwards the text, the conversion would be most of the cost of a field. */
int lp_check_line(const char *s, size_t n, struct lp_line *out, const char **reason);
/* Copies a span without its escapes; is_string for quoted field values. Returns the length
 * written (truncated to cap - 1) and NUL-terminates. */
size_t lp_unescape(struct lp_span sp, int is_string, char *out, size_t cap);

#endif
