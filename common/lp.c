#include "common/lp.h"

#include <errno.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
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

/* Byte classes, so that scanning is one table lookup per byte rather than a strchr. */
enum { C_COMMA = 1, C_EQ = 2, C_SPACE = 4, C_BSLASH = 8 };
static const uint8_t byte_class[256] = {
    [','] = C_COMMA, ['='] = C_EQ, [' '] = C_SPACE, ['\\'] = C_BSLASH};

struct cursor {
    const char *p, *end;
};

#if defined(__SSE2__)
/* Skips 16 bytes at a time while none is a stop or a backslash; stops at the first that is. */
static inline __attribute__((always_inline)) const char *skip_plain(const char *p, const char *end,
                                                                    unsigned stops)
{
    const __m128i comma = _mm_set1_epi8(','), eq = _mm_set1_epi8('='), space = _mm_set1_epi8(' '),
                  bslash = _mm_set1_epi8('\\');
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)p);
        __m128i hit = _mm_cmpeq_epi8(v, bslash);
        if (stops & C_COMMA)
            hit = _mm_or_si128(hit, _mm_cmpeq_epi8(v, comma));
        if (stops & C_EQ)
            hit = _mm_or_si128(hit, _mm_cmpeq_epi8(v, eq));
        if (stops & C_SPACE)
            hit = _mm_or_si128(hit, _mm_cmpeq_epi8(v, space));
        unsigned mask = (unsigned)_mm_movemask_epi8(hit);
        if (mask)
            return p + __builtin_ctz(mask);
        p += 16;
    }
    return p;
}
#endif

/* Scans an unquoted token up to an unescaped stop character (a C_* mask). */
static inline __attribute__((always_inline)) struct lp_span scan_token(struct cursor *c,
                                                                       unsigned stops)
{
    const char *p = c->p, *end = c->end;
    struct lp_span sp = {p, 0};
#if defined(__SSE2__)
    for (;;) {
        p = skip_plain(p, end, stops);
        if (end - p < 16 || *p != '\\')
            break;
        p += 2; /* an escape: the byte after the backslash is part of the token */
    }
#endif
    for (; p < end; p++) {
        unsigned k = byte_class[(unsigned char)*p];
        if (k & stops)
            break;
        if (k == C_BSLASH && p + 1 < end)
            p++;
    }
    c->p = p;
    sp.n = (uint32_t)(p - sp.p);
    return sp;
}

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* Eight ASCII digits at once (a timestamp has 19): 0, or -1 if one is not a digit. */
static inline int eight_digits(const char *s, uint64_t *out)
{
    uint64_t v;
    memcpy(&v, s, 8);
    const uint64_t high = UINT64_C(0xF0F0F0F0F0F0F0F0);
    if (((v & high) | (((v + UINT64_C(0x0606060606060606)) & high) >> 4)) !=
        UINT64_C(0x3333333333333333))
        return -1;
    v -= UINT64_C(0x3030303030303030);                        /* the first digit is byte 0 */
    v = (v * 10 + (v >> 8)) & UINT64_C(0x00FF00FF00FF00FF);   /* pairs */
    v = (v * 100 + (v >> 16)) & UINT64_C(0x0000FFFF0000FFFF); /* fours */
    *out = (v * 10000 + (v >> 32)) & UINT64_C(0xFFFFFFFF);    /* eight */
    return 0;
}
#endif

/* Digits only, into v; -1 on anything else or overflow. */
static int parse_digits(const char *s, size_t n, uint64_t *v)
{
    uint64_t acc = 0;
    size_t i = 0;
    if (n == 0)
        return -1;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    for (uint64_t eight; i + 8 <= n && i + 8 <= 16; i += 8) { /* 16 digits cannot overflow */
        if (eight_digits(s + i, &eight))
            return -1;
        acc = acc * 100000000 + eight;
    }
#endif
    for (; i < n && i < 19; i++) { /* 19 digits cannot overflow */
        unsigned d = (unsigned)(unsigned char)s[i] - '0';
        if (d > 9)
            return -1;
        acc = acc * 10 + d;
    }
    for (; i < n; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';
        if (d > 9 || __builtin_mul_overflow(acc, 10, &acc) || __builtin_add_overflow(acc, d, &acc))
            return -1;
    }
    *v = acc;
    return 0;
}

static int parse_int(const char *s, size_t n, int64_t *out)
{
    uint64_t v;
    if (n == 0 || n >= 32)
        return -1;
    int neg = s[0] == '-';
    if (parse_digits(s + neg, n - (size_t)neg, &v))
        return -1;
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1)
            return -1;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > INT64_MAX)
            return -1;
        *out = (int64_t)v;
    }
    return 0;
}

static int parse_uint(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || n >= 32)
        return -1;
    return parse_digits(s, n, out);
}

/* The grammar check and strtod, for every float the fast paths do not take. */
static int parse_float_slow(const char *s, size_t n, double *out)
{
    char tmp[400];
    if (n >= sizeof(tmp))
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

/* The common float, [-]digits[.digits] of at most 19 digits, read where it stands: w holds
 * the digits, e10 the power of ten. Returns the length read (0 when there is no digit). */
static size_t scan_plain_float(const char *s, const char *end, uint64_t *w, int64_t *e10,
                               size_t *ndigits)
{
    const char *p = s + (s < end && *s == '-');
    uint64_t acc = 0;
    size_t digits = 0;
    int64_t scale = 0;
    for (; p < end && (unsigned)(*p - '0') <= 9 && digits < 19; p++, digits++)
        acc = acc * 10 + (uint64_t)(*p - '0');
    if (p < end && *p == '.')
        for (p++; p < end && (unsigned)(*p - '0') <= 9 && digits < 19; p++, digits++, scale--)
            acc = acc * 10 + (uint64_t)(*p - '0');
    *w = acc;
    *e10 = scale;
    *ndigits = digits;
    return (size_t)(p - s);
}

static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* w * 10^e10 exactly as strtod rounds it, when w is below 2^53 and |e10| at most 22: both are
 * exact doubles and IEEE rounds the one multiplication or division once. */
static int exact_float(uint64_t w, int64_t e10, int neg, double *out)
{
    if (w > (UINT64_C(1) << 53) || e10 < -22 || e10 > 22)
        return -1;
    double v = (double)w;
    v = e10 < 0 ? v / pow10_exact[-e10] : v * pow10_exact[e10];
    *out = neg ? -v : v;
    return 0;
}

/* InfluxDB floats: [-+]?digits[.digits]?([eE][-+]?digits)? (also ".5"); no inf/nan.
 * Without convert a plain float is only checked: at most 19 digits are always in range. */
static int parse_float(const char *s, size_t n, int convert, double *out)
{
    if (n == 0)
        return -1;
    uint64_t w;
    int64_t e10;
    size_t nd;
    if (s[0] != '+' && scan_plain_float(s, s + n, &w, &e10, &nd) == n && nd) {
        if (!convert) {
            *out = 0;
            return 0;
        }
        return exact_float(w, e10, s[0] == '-', out) == 0 ? 0 : parse_float_slow(s, n, out);
    }
    return parse_float_slow(s, n, out);
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

static int type_value(struct lp_kv *kv, int convert, const char **reason);

static int parse_field_value(struct cursor *c, struct lp_kv *kv, int convert, const char **reason)
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
    /* Most values are plain floats: read them in place, without scanning them twice. */
    uint64_t w;
    int64_t e10;
    size_t nd, len = scan_plain_float(c->p, c->end, &w, &e10, &nd);
    const char *after = c->p + len;
    kv->num.f = 0;
    if (nd && (after == c->end || *after == ',' || *after == ' ') &&
        (!convert || exact_float(w, e10, *c->p == '-', &kv->num.f) == 0)) {
        kv->val = (struct lp_span){c->p, (uint32_t)len};
        kv->type = DSF_V_FLOAT;
        c->p = after;
        return 0;
    }
    kv->val = scan_token(c, C_COMMA | C_SPACE);
    return type_value(kv, convert, reason);
}

/* Types an unquoted field value token (kv->val). */
static int type_value(struct lp_kv *kv, int convert, const char **reason)
{
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
    /* A bool starts with a letter, a float never does: try the likely one only. */
    int letter = (s[0] | 0x20) >= 'a' && (s[0] | 0x20) <= 'z';
    if (letter && parse_bool(s, n, &kv->num.b) == 0) {
        kv->type = DSF_V_BOOL;
        return 0;
    }
    if (!letter && parse_float(s, n, convert, &kv->num.f) == 0) {
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
        kv->key = scan_token(c, C_COMMA | C_EQ | C_SPACE);
        if (kv->key.n == 0 || c->p >= c->end || *c->p != '=') {
            *reason = kv->key.n ? "tag without '='" : "empty tag key";
            return -1;
        }
        c->p++;
        kv->val = scan_token(c, C_COMMA | C_EQ | C_SPACE);
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

static int parse_fields(struct cursor *c, struct lp_line *out, int convert, const char **reason)
{
    do {
        if (out->nfields >= LP_MAX_FIELDS) {
            *reason = "too many fields";
            return -1;
        }
        struct lp_kv *kv = &out->fields[out->nfields++];
        kv->key = scan_token(c, C_COMMA | C_EQ | C_SPACE);
        if (kv->key.n == 0 || c->p >= c->end || *c->p != '=') {
            *reason = kv->key.n ? "field without '='" : "empty field key";
            return -1;
        }
        c->p++;
        if (parse_field_value(c, kv, convert, reason))
            return -1;
    } while (c->p < c->end && *c->p == ',' && ++c->p);
    return 0;
}

/* ---- the fast path ----
 * Lines without a backslash or a quote (nearly all) are cut at their ',', '=' and ' ', found
 * for the whole line at once into a bit mask. Anything unusual, errors included, is left to
 * the full parser, which also words the reason. */
#define SIMPLE_MAX 512

struct seps {
    uint64_t bits[SIMPLE_MAX / 64];
    size_t n, words;
};

/* 0, or -1 when the line is too long or has a backslash or a quote. */
static int find_seps(const char *s, size_t n, struct seps *m)
{
    if (n > SIMPLE_MAX)
        return -1;
    m->n = n;
    m->words = (n + 63) / 64;
    memset(m->bits, 0, m->words * sizeof(m->bits[0]));
    size_t i = 0;
#if defined(__SSE2__)
    const __m128i comma = _mm_set1_epi8(','), eq = _mm_set1_epi8('='), space = _mm_set1_epi8(' '),
                  bslash = _mm_set1_epi8('\\'), quote = _mm_set1_epi8('"');
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
        if (_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, bslash), _mm_cmpeq_epi8(v, quote))))
            return -1;
        __m128i sep = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, comma), _mm_cmpeq_epi8(v, eq)),
                                   _mm_cmpeq_epi8(v, space));
        m->bits[i / 64] |= (uint64_t)(unsigned)_mm_movemask_epi8(sep) << (i % 64);
    }
#endif
    for (; i < n; i++) {
        unsigned k = byte_class[(unsigned char)s[i]];
        if (k == C_BSLASH || s[i] == '"')
            return -1;
        if (k)
            m->bits[i / 64] |= UINT64_C(1) << (i % 64);
    }
    return 0;
}

/* The separators in order, each taken once. */
struct sep_iter {
    const struct seps *m;
    size_t word;
    uint64_t bits;
};

/* The next separator's offset, or n when there is none. */
static inline __attribute__((always_inline)) size_t next_sep(struct sep_iter *it)
{
    while (!it->bits) {
        if (++it->word >= it->m->words)
            return it->m->n;
        it->bits = it->m->bits[it->word];
    }
    size_t at = it->word * 64 + (size_t)__builtin_ctzll(it->bits);
    it->bits &= it->bits - 1;
    return at;
}

/* key=value after the separator at *at: the next two separators are its '=' and the end of its
 * value (',', ' ' or the line's end, n). 0 with *at on the value's end, or -1. */
static inline __attribute__((always_inline)) int simple_pair(const char *s, struct sep_iter *it,
                                                             size_t *at, struct lp_kv *kv)
{
    size_t key = *at + 1, eq = next_sep(it), n = it->m->n;
    if (eq == key || eq >= n || s[eq] != '=')
        return -1;
    size_t end = next_sep(it);
    if (end == eq + 1 || (end < n && s[end] == '='))
        return -1;
    kv->key = (struct lp_span){s + key, (uint32_t)(eq - key)};
    kv->val = (struct lp_span){s + eq + 1, (uint32_t)(end - eq - 1)};
    *at = end;
    return 0;
}

static int parse_simple(const char *s, size_t n, struct lp_line *out, int convert)
{
    struct seps m;
    const char *reason;
    if (find_seps(s, n, &m))
        return -1;
    struct sep_iter it = {&m, 0, m.words ? m.bits[0] : 0};
    size_t p = next_sep(&it);
    if (p == 0 || p >= n)
        return -1;
    out->measurement = (struct lp_span){s, (uint32_t)p};
    while (s[p] == ',') {
        if (out->ntags >= LP_MAX_TAGS)
            return -1;
        struct lp_kv *kv = &out->tags[out->ntags++];
        if (simple_pair(s, &it, &p, kv) || p >= n)
            return -1;
        kv->type = DSF_V_STR;
    }
    if (s[p] != ' ')
        return -1;
    for (;;) {
        if (out->nfields >= LP_MAX_FIELDS)
            return -1;
        struct lp_kv *kv = &out->fields[out->nfields++];
        if (simple_pair(s, &it, &p, kv) || type_value(kv, convert, &reason))
            return -1;
        if (p >= n)
            return 0;
        if (s[p] == ' ')
            break;
    }
    p++;
    if (next_sep(&it) != n || parse_int(s + p, n - p, &out->ts))
        return -1;
    out->has_ts = 1;
    return 0;
}

static int parse_line(const char *s, size_t n, struct lp_line *out, int convert,
                      const char **reason)
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
    if (parse_simple(s, (size_t)(c.end - c.p), out, convert) == 0)
        return 0;
    out->ntags = out->nfields = 0;
    out->has_ts = 0;
    out->measurement = scan_token(&c, C_COMMA | C_SPACE);
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
    if (parse_fields(&c, out, convert, reason))
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

int lp_number(const struct lp_kv *kv, double *v)
{
    switch (kv->type) {
    case DSF_V_FLOAT:
        *v = kv->num.f;
        return 1;
    case DSF_V_INT:
        *v = (double)kv->num.i;
        return 1;
    case DSF_V_UINT:
        *v = (double)kv->num.u;
        return 1;
    case DSF_V_BOOL:
        *v = kv->num.b;
        return 1;
    case DSF_V_STR:
        return 0;
    }
    return 0;
}

int lp_parse_line(const char *s, size_t n, struct lp_line *out, const char **reason)
{
    return parse_line(s, n, out, 1, reason);
}

int lp_check_line(const char *s, size_t n, struct lp_line *out, const char **reason)
{
    return parse_line(s, n, out, 0, reason);
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
