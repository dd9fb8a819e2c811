/* One Prometheus sample as one line of line protocol, as InfluxDB's own Prometheus converter
 * maps it: measurement = metric name, tags = the labels that have a value, one float field
 * "value", the time in ns. InfluxDB drops NaN and infinite samples (it has no such floats);
 * so does this, with a reason for the caller's counters. */
#include <math.h>
#include <string.h>

#include "common/ingest.h"
#include "common/prom.h"
#include "common/utf8.h"

static int is_metric_name(struct lp_span sp)
{
    for (uint32_t i = 0; i < sp.n; i++) {
        char c = sp.p[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                 (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return 0;
    }
    return sp.n > 0;
}

/* The text as a tag key or value: the text format's escapes undone when escaped, then line
 * protocol's own. Every backslash is escaped, so the parser reads each one back as it was. */
static int put_tag_text(struct dsf_buf *out, struct lp_span sp, int escaped, const char **reason)
{
    if (!utf8_valid(sp.p, sp.n)) {
        *reason = "label not UTF-8";
        return -1;
    }
    for (uint32_t i = 0; i < sp.n; i++) {
        char c = sp.p[i];
        if (escaped && c == '\\' && i + 1 < sp.n) {
            c = sp.p[++i];
            if (c == 'n')
                c = '\n';
        }
        if (c == '\n' || c == '\r' || c == '\0') {
            *reason = "line break or NUL in a label";
            return -1;
        }
        if (c == ',' || c == '=' || c == ' ' || c == '\\')
            buf_putc(out, '\\');
        buf_putc(out, c);
    }
    return 0;
}

static int put_tags(struct dsf_buf *out, const struct prom_sample *s, const char **reason)
{
    for (uint32_t i = 0; i < s->nlabels; i++) {
        const struct prom_label *l = &s->labels[i];
        if (l->value.n == 0)
            continue; /* an empty label is an absent label in Prometheus */
        if (l->name.n == 0) {
            *reason = "empty label name";
            return -1;
        }
        buf_putc(out, ',');
        if (put_tag_text(out, l->name, 0, reason))
            return -1;
        buf_putc(out, '=');
        if (put_tag_text(out, l->value, l->escaped, reason))
            return -1;
    }
    return 0;
}

static const char *unrepresentable(double v)
{
    if (isnan(v))
        return "NaN value";
    if (isinf(v))
        return v > 0 ? "+Inf value" : "-Inf value";
    return NULL;
}

int prom_render_line(struct dsf_buf *out, const struct prom_sample *s, int64_t now_ns,
                     const char **reason)
{
    size_t start = out->len;
    int64_t ts_ns = now_ns;
    if ((*reason = unrepresentable(s->value)) != NULL)
        return -1;
    if (!is_metric_name(s->name)) {
        *reason = "invalid metric name";
        return -1;
    }
    if (s->has_ts && __builtin_mul_overflow(s->ts_ms, (int64_t)1000000, &ts_ns)) {
        *reason = "timestamp out of range";
        return -1;
    }
    buf_put(out, s->name.p, s->name.n);
    if (put_tags(out, s, reason))
        goto undo;
    buf_puts(out, " value=");
    lp_put_float(out, s->value);
    buf_printf(out, " %lld\n", (long long)ts_ns);
    if (out->len - start - 1 > INGEST_MAX_LINE) {
        *reason = "line too long";
        goto undo;
    }
    return 0;
undo:
    out->len = start;
    return -1;
}
