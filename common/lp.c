#include "common/lp.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* strchr() would also match the terminating NUL; input may contain NUL bytes. */
static int is_in(const char *set, char c)
{
    return c != '\0' && strchr(set, c) != NULL;
}

/* ---------------- encoder ---------------- */

static void put_escaped(struct dsf_buf *out, const char *s, const char *specials)
{
    for (const char *p = s; *p; p++) {
        char c = *p;
        if (c == '\n' || c == '\r' || c == '\t')
            c = ' '; /* line protocol cannot carry these outside quoted strings */
        if (is_in(specials, c)) {
            buf_putc(out, '\\');
        } else if (c == '\\') {
            /* A backslash is literal unless it would read as an escape: before a special,
             * another backslash, or at the end of the token. */
            char next = p[1];
            if (next == '\0' || is_in(",= \\", next))
                buf_putc(out, '\\');
        }
        buf_putc(out, c);
    }
}

void lp_put_measurement(struct dsf_buf *out, const char *s)
{
    put_escaped(out, s, ", ");
}

void lp_put_key(struct dsf_buf *out, const char *s)
{
    put_escaped(out, s, ",= ");
}

void lp_put_string_value(struct dsf_buf *out, const char *s)
{
    buf_putc(out, '"');
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\')
            buf_putc(out, '\\');
        buf_putc(out, *p);
    }
    buf_putc(out, '"');
}

void lp_put_float(struct dsf_buf *out, double v)
{
    char tmp[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    buf_puts(out, tmp);
}

static void put_field_value(struct dsf_buf *out, const struct dsf_batch *b,
                            const struct dsf_field *f)
{
    switch (f->type) {
    case DSF_V_FLOAT:
        lp_put_float(out, f->v.f);
        break;
    case DSF_V_INT:
        buf_printf(out, "%" PRId64 "i", f->v.i);
        break;
    case DSF_V_UINT:
        buf_printf(out, "%" PRIu64 "u", f->v.u);
        break;
    case DSF_V_BOOL:
        buf_puts(out, f->v.b ? "true" : "false");
        break;
    case DSF_V_STR:
        lp_put_string_value(out, batch_str(b, f->v.s));
        break;
    }
}

void lp_render_point(struct dsf_buf *out, const struct dsf_batch *b, const struct dsf_point *p,
                     const struct dsf_tagset *global)
{
    lp_put_measurement(out, batch_str(b, p->name));
    for (uint32_t i = 0; i < p->ntags; i++) {
        const struct dsf_tag *t = &b->tags[p->tag0 + i];
        buf_putc(out, ',');
        lp_put_key(out, batch_str(b, t->key));
        buf_putc(out, '=');
        lp_put_key(out, batch_str(b, t->val));
    }
    for (size_t i = 0; global && i < global->count; i++) {
        buf_putc(out, ',');
        lp_put_key(out, global->keys[i]);
        buf_putc(out, '=');
        lp_put_key(out, global->vals[i]);
    }
    for (uint32_t i = 0; i < p->nfields; i++) {
        const struct dsf_field *f = &b->fields[p->field0 + i];
        buf_putc(out, i ? ',' : ' ');
        lp_put_key(out, batch_str(b, f->key));
        buf_putc(out, '=');
        put_field_value(out, b, f);
    }
    buf_printf(out, " %" PRId64 "\n", p->ts_ns);
}

void lp_render_batch(struct dsf_buf *out, const struct dsf_batch *b,
                     const struct dsf_tagset *global)
{
    for (size_t i = 0; i < b->npoints; i++)
        lp_render_point(out, b, &b->points[i], global);
}

/* ---------------- parser ---------------- */

struct cursor {
    const char *p, *end;
};

/* Scans an unquoted token up to an unescaped stop character. */
static struct lp_span scan_token(struct cursor *c, const char *stops)
{
    struct lp_span sp = {c->p, 0};
    while (c->p < c->end && !is_in(stops, *c->p)) {
        if (*c->p == '\\' && c->p + 1 < c->end)
            c->p++;
        c->p++;
    }
    sp.n = (uint32_t)(c->p - sp.p);
    return sp;
}

static int parse_int(const char *s, size_t n, int64_t *out)
{
    char tmp[32];
    if (n == 0 || n >= sizeof(tmp))
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    const char *digits = tmp[0] == '-' ? tmp + 1 : tmp;
    if (!*digits)
        return -1;
    for (const char *d = digits; *d; d++)
        if (*d < '0' || *d > '9')
            return -1;
    errno = 0;
    long long v = strtoll(tmp, NULL, 10);
    if (errno)
        return -1;
    *out = v;
    return 0;
}

static int parse_uint(const char *s, size_t n, uint64_t *out)
{
    char tmp[32];
    if (n == 0 || n >= sizeof(tmp))
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    for (const char *d = tmp; *d; d++)
        if (*d < '0' || *d > '9')
            return -1;
    errno = 0;
    unsigned long long v = strtoull(tmp, NULL, 10);
    if (errno)
        return -1;
    *out = v;
    return 0;
}

/* InfluxDB floats: [-+]?digits[.digits]?([eE][-+]?digits)? (also ".5"); no inf/nan. */
static int parse_float(const char *s, size_t n, double *out)
{
    char tmp[400];
    if (n == 0 || n >= sizeof(tmp))
        return -1;
    size_t i = 0, digits = 0;
    if (s[i] == '-' || s[i] == '+')
        i++;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++, digits++;
    }
    if (!digits)
        return -1;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '-' || s[i] == '+'))
            i++;
        size_t exp_digits = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++, exp_digits++;
        if (!exp_digits)
            return -1;
    }
    if (i != n)
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    errno = 0;
    double v = strtod(tmp, NULL);
    if (errno == ERANGE && (v > 1 || v < -1))
        return -1; /* out of range: InfluxDB rejects it too */
    *out = v;
    return 0;
}

static int parse_bool(const char *s, size_t n, int *out)
{
    static const char *const t[] = {"t", "T", "true", "True", "TRUE"};
    static const char *const f[] = {"f", "F", "false", "False", "FALSE"};
    for (size_t i = 0; i < 5; i++) {
        if (strlen(t[i]) == n && memcmp(s, t[i], n) == 0) {
            *out = 1;
            return 0;
        }
        if (strlen(f[i]) == n && memcmp(s, f[i], n) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

static int parse_field_value(struct cursor *c, struct lp_kv *kv, const char **reason)
{
    if (c->p < c->end && *c->p == '"') {
        c->p++;
        kv->val.p = c->p;
        while (c->p < c->end && *c->p != '"') {
            if (*c->p == '\\' && c->p + 1 < c->end)
                c->p++;
            c->p++;
        }
        if (c->p >= c->end) {
            *reason = "unterminated string field value";
            return -1;
        }
        kv->val.n = (uint32_t)(c->p - kv->val.p);
        c->p++;
        kv->type = DSF_V_STR;
        return 0;
    }
    kv->val = scan_token(c, ", ");
    const char *s = kv->val.p;
    size_t n = kv->val.n;
    if (n == 0) {
        *reason = "missing field value";
        return -1;
    }
    if (s[n - 1] == 'i' && parse_int(s, n - 1, &kv->num.i) == 0) {
        kv->type = DSF_V_INT;
        return 0;
    }
    if (s[n - 1] == 'u' && parse_uint(s, n - 1, &kv->num.u) == 0) {
        kv->type = DSF_V_UINT;
        return 0;
    }
    if (parse_bool(s, n, &kv->num.b) == 0) {
        kv->type = DSF_V_BOOL;
        return 0;
    }
    if (parse_float(s, n, &kv->num.f) == 0) {
        kv->type = DSF_V_FLOAT;
        return 0;
    }
    *reason = "invalid field value";
    return -1;
}

static int parse_tags(struct cursor *c, struct lp_line *out, const char **reason)
{
    while (c->p < c->end && *c->p == ',') {
        c->p++;
        if (out->ntags >= LP_MAX_TAGS) {
            *reason = "too many tags";
            return -1;
        }
        struct lp_kv *kv = &out->tags[out->ntags++];
        kv->key = scan_token(c, ",= ");
        if (kv->key.n == 0 || c->p >= c->end || *c->p != '=') {
            *reason = kv->key.n ? "tag without '='" : "empty tag key";
            return -1;
        }
        c->p++;
        kv->val = scan_token(c, ",= ");
        kv->type = DSF_V_STR;
        if (kv->val.n == 0) {
            *reason = "empty tag value";
            return -1;
        }
        if (c->p < c->end && *c->p == '=') {
            *reason = "unescaped '=' in tag value";
            return -1;
        }
    }
    return 0;
}

static int parse_fields(struct cursor *c, struct lp_line *out, const char **reason)
{
    do {
        if (out->nfields >= LP_MAX_FIELDS) {
            *reason = "too many fields";
            return -1;
        }
        struct lp_kv *kv = &out->fields[out->nfields++];
        kv->key = scan_token(c, ",= ");
        if (kv->key.n == 0 || c->p >= c->end || *c->p != '=') {
            *reason = kv->key.n ? "field without '='" : "empty field key";
            return -1;
        }
        c->p++;
        if (parse_field_value(c, kv, reason))
            return -1;
    } while (c->p < c->end && *c->p == ',' && ++c->p);
    return 0;
}

int lp_parse_line(const char *s, size_t n, struct lp_line *out, const char **reason)
{
    struct cursor c = {s, s + n};
    while (c.end > c.p && (c.end[-1] == '\r' || c.end[-1] == ' '))
        c.end--; /* trailing white space is allowed */
    out->ntags = out->nfields = 0;
    out->has_ts = 0;
    if (c.p < c.end && *c.p == '#') {
        *reason = "comment line";
        return -1;
    }
    out->measurement = scan_token(&c, ", ");
    if (out->measurement.n == 0) {
        *reason = "missing measurement";
        return -1;
    }
    if (parse_tags(&c, out, reason))
        return -1;
    if (c.p >= c.end || *c.p != ' ') {
        *reason = "missing fields";
        return -1;
    }
    c.p++;
    if (parse_fields(&c, out, reason))
        return -1;
    if (c.p == c.end)
        return 0;
    if (*c.p != ' ') {
        *reason = "unexpected character after fields";
        return -1;
    }
    c.p++;
    if (parse_int(c.p, (size_t)(c.end - c.p), &out->ts)) {
        *reason = "invalid timestamp";
        return -1;
    }
    out->has_ts = 1;
    return 0;
}

size_t lp_unescape(struct lp_span sp, int is_string, char *out, size_t cap)
{
    const char *specials = is_string ? "\"\\" : ",= \\";
    size_t w = 0;
    for (uint32_t i = 0; i < sp.n && w + 1 < cap; i++) {
        char ch = sp.p[i];
        if (ch == '\\' && i + 1 < sp.n && is_in(specials, sp.p[i + 1]))
            ch = sp.p[++i];
        out[w++] = ch;
    }
    if (cap)
        out[w] = '\0';
    return w;
}
