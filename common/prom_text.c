/* The Prometheus exposition text format, version 0.0.4, read the way Prometheus' own text
 * parser reads it: one pass over each line, spans into the input, nothing allocated. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/ingest.h"
#include "common/prom.h"

struct cursor {
    const char *p, *end;
};

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static void skip_blanks(struct cursor *c)
{
    while (c->p < c->end && is_blank(*c->p))
        c->p++;
}

static int is_alpha_(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* for a metric name, [a-zA-Z_][a-zA-Z0-9_]* for a label name. */
static struct lp_span scan_name(struct cursor *c, int colon_ok)
{
    struct lp_span sp = {c->p, 0};
    const char *p = c->p;
    if (p < c->end && (is_alpha_(*p) || (colon_ok && *p == ':')))
        for (p++; p < c->end && (is_alpha_(*p) || is_digit(*p) || (colon_ok && *p == ':')); p++)
            ;
    sp.n = (uint32_t)(p - c->p);
    c->p = p;
    return sp;
}

static struct lp_span scan_token(struct cursor *c)
{
    struct lp_span sp = {c->p, 0};
    while (c->p < c->end && !is_blank(*c->p))
        c->p++;
    sp.n = (uint32_t)(c->p - sp.p);
    return sp;
}

static int span_is(struct lp_span sp, const char *s)
{
    return sp.n == strlen(s) && memcmp(sp.p, s, sp.n) == 0;
}

static int span_is_nocase(struct lp_span sp, const char *s)
{
    if (sp.n != strlen(s))
        return 0;
    for (uint32_t i = 0; i < sp.n; i++)
        if ((sp.p[i] | 0x20) != s[i])
            return 0;
    return 1;
}

/* A label value between quotes: only \\, \" and \n are escapes, as in Prometheus. */
static int parse_label_value(struct cursor *c, struct prom_label *l, const char **reason)
{
    if (c->p >= c->end || *c->p != '"') {
        *reason = "label value without quotes";
        return -1;
    }
    const char *start = ++c->p;
    l->escaped = 0;
    for (; c->p < c->end && *c->p != '"'; c->p++) {
        if (*c->p != '\\')
            continue;
        if (c->p + 1 >= c->end || (c->p[1] != '\\' && c->p[1] != '"' && c->p[1] != 'n')) {
            *reason = "invalid escape in label value";
            return -1;
        }
        l->escaped = 1;
        c->p++;
    }
    if (c->p >= c->end) {
        *reason = "unterminated label value";
        return -1;
    }
    l->value = (struct lp_span){start, (uint32_t)(c->p - start)};
    c->p++;
    return 0;
}

static int is_duplicate(const struct prom_sample *s, struct lp_span name)
{
    for (uint32_t i = 0; i < s->nlabels; i++)
        if (s->labels[i].name.n == name.n && memcmp(s->labels[i].name.p, name.p, name.n) == 0)
            return 1;
    return 0;
}

/* {name="value",...} with blanks around each part, {} and a trailing comma allowed. */
static int parse_labels(struct cursor *c, struct prom_sample *s, const char **reason)
{
    c->p++; /* the '{' */
    for (;;) {
        skip_blanks(c);
        if (c->p < c->end && *c->p == '}')
            break;
        struct lp_span name = scan_name(c, 0);
        if (name.n == 0) {
            *reason = "invalid label name";
            return -1;
        }
        if (span_is(name, "__name__")) {
            *reason = "reserved label name __name__";
            return -1;
        }
        if (is_duplicate(s, name)) {
            *reason = "duplicate label name";
            return -1;
        }
        if (s->nlabels >= PROM_MAX_LABELS) {
            *reason = "too many labels";
            return -1;
        }
        struct prom_label *l = &s->labels[s->nlabels++];
        l->name = name;
        skip_blanks(c);
        if (c->p >= c->end || *c->p != '=') {
            *reason = "label without '='";
            return -1;
        }
        c->p++;
        skip_blanks(c);
        if (parse_label_value(c, l, reason))
            return -1;
        skip_blanks(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (c->p >= c->end || *c->p != '}') {
            *reason = "label set not closed";
            return -1;
        }
        break;
    }
    c->p++; /* the '}' */
    return 0;
}

/* Go's ParseFloat grammar: decimal, hexadecimal with a mandatory p exponent, Inf and Infinity
 * (signed, any case), NaN (unsigned, any case). Underscores, which Go allows only beside a
 * base prefix, are refused. */
static int well_formed_number(struct lp_span sp)
{
    const char *s = sp.p, *end = sp.p + sp.n;
    if (span_is_nocase(sp, "nan"))
        return 1;
    if (s < end && (*s == '+' || *s == '-'))
        s++;
    struct lp_span rest = {s, (uint32_t)(end - s)};
    if (span_is_nocase(rest, "inf") || span_is_nocase(rest, "infinity"))
        return 1;
    int hex = end - s > 2 && s[0] == '0' && (s[1] | 0x20) == 'x';
    size_t digits = 0;
    if (hex)
        s += 2;
    for (int frac = 0; s < end; s++) {
        if (is_digit(*s) || (hex && (*s | 0x20) >= 'a' && (*s | 0x20) <= 'f'))
            digits++;
        else if (*s == '.' && !frac)
            frac = 1;
        else
            break;
    }
    if (!digits)
        return 0;
    if (s < end && (*s | 0x20) == (hex ? 'p' : 'e')) {
        s++;
        if (s < end && (*s == '+' || *s == '-'))
            s++;
        if (s >= end || !is_digit(*s))
            return 0;
        while (s < end && is_digit(*s))
            s++;
    } else if (hex) {
        return 0;
    }
    return s == end;
}

static int parse_value(struct lp_span sp, double *out)
{
    char tmp[128];
    if (sp.n == 0 || sp.n >= sizeof(tmp) || !well_formed_number(sp))
        return -1;
    memcpy(tmp, sp.p, sp.n);
    tmp[sp.n] = '\0';
    errno = 0;
    double v = strtod(tmp, NULL);
    if (errno == ERANGE && (v > 1 || v < -1))
        return -1; /* beyond the largest double: ParseFloat's range error */
    *out = v;
    return 0;
}

/* strconv.ParseInt(s, 10, 64): an optional sign and decimal digits, in range. */
static int parse_timestamp(struct lp_span sp, int64_t *out)
{
    const char *s = sp.p, *end = sp.p + sp.n;
    int neg = s < end && *s == '-';
    if (s < end && (*s == '-' || *s == '+'))
        s++;
    if (s >= end)
        return -1;
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, v = 0;
    for (; s < end; s++) {
        if (!is_digit(*s))
            return -1;
        unsigned d = (unsigned)(*s - '0');
        if (v > (limit - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* # HELP name text and # TYPE name type are checked; any other comment is free text. */
static int check_comment(struct cursor *c, const char **reason)
{
    c->p++; /* the '#' */
    skip_blanks(c);
    struct lp_span keyword = scan_token(c);
    int help = span_is(keyword, "HELP"), type = span_is(keyword, "TYPE");
    if (!help && !type)
        return 0;
    skip_blanks(c);
    struct lp_span name = scan_name(c, 1);
    if (name.n == 0 || (c->p < c->end && !is_blank(*c->p))) {
        *reason = "invalid metric name in comment";
        return -1;
    }
    skip_blanks(c);
    if (help) {
        for (; c->p < c->end; c->p++)
            if (*c->p == '\\' && (c->p + 1 >= c->end || (c->p[1] != '\\' && c->p[1] != 'n'))) {
                *reason = "invalid escape in HELP";
                return -1;
            } else if (*c->p == '\\') {
                c->p++;
            }
        return 0;
    }
    struct lp_span kind = scan_token(c);
    skip_blanks(c);
    static const char *const kinds[] = {"counter", "gauge", "histogram", "summary", "untyped"};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (span_is(kind, kinds[i]) && c->p == c->end)
            return 0;
    *reason = "invalid TYPE";
    return -1;
}

/* 1 with a sample, 0 for a line without one, -1 with a reason. */
static int parse_line(const char *text, size_t n, struct prom_sample *s, const char **reason)
{
    struct cursor c = {text, text + n};
    skip_blanks(&c);
    if (c.p == c.end)
        return 0;
    if (*c.p == '#')
        return check_comment(&c, reason);
    s->name = scan_name(&c, 1);
    s->nlabels = 0;
    s->has_ts = 0;
    if (s->name.n == 0 || (c.p < c.end && !is_blank(*c.p) && *c.p != '{')) {
        *reason = "invalid metric name";
        return -1;
    }
    skip_blanks(&c);
    if (c.p < c.end && *c.p == '{' && parse_labels(&c, s, reason))
        return -1;
    skip_blanks(&c);
    struct lp_span value = scan_token(&c);
    if (parse_value(value, &s->value)) {
        *reason = value.n ? "invalid value" : "missing value";
        return -1;
    }
    skip_blanks(&c);
    if (c.p < c.end) {
        if (parse_timestamp(scan_token(&c), &s->ts_ms)) {
            *reason = "invalid timestamp";
            return -1;
        }
        s->has_ts = 1;
        skip_blanks(&c);
        if (c.p < c.end) {
            *reason = "text after the timestamp";
            return -1;
        }
    }
    return 1;
}

size_t prom_text_parse(const char *text, size_t len, const struct prom_ops *ops, void *ctx)
{
    struct prom_sample sample;
    size_t passed = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        size_t n;
        const char *line = text_line_next(&p, end, &n);
        const char *reason = NULL;
        int rc = n > INGEST_MAX_LINE ? (reason = "line too long", -1)
                                     : parse_line(line, n, &sample, &reason);
        if (rc > 0) {
            ops->sample(ctx, &sample);
            passed++;
        } else if (rc < 0) {
            ops->reject(ctx, line, n, reason);
        }
    }
    return passed;
}
