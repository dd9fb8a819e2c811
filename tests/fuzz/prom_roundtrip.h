/* The property both Prometheus fuzz targets assert on every sample they are given: its line
 * is accepted by the line-protocol parser and reads back the same name, tags and value. */
#ifndef DSF_FUZZ_PROM_ROUNDTRIP_H
#define DSF_FUZZ_PROM_ROUNDTRIP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ingest.h"
#include "common/prom.h"

static const int64_t roundtrip_now_ns = 1700000000123456789LL;

/* A label's text as the sample means it: the text format's escapes undone. */
static size_t meant_text(const struct prom_label *l, int value, char *out)
{
    struct lp_span sp = value ? l->value : l->name;
    size_t w = 0;
    for (uint32_t i = 0; i < sp.n; i++) {
        char c = sp.p[i];
        if (value && l->escaped && c == '\\' && i + 1 < sp.n) {
            c = sp.p[++i];
            if (c == 'n')
                c = '\n';
        }
        out[w++] = c;
    }
    return w;
}

static void roundtrip_expect(struct lp_span got, int is_tag, const char *want, size_t want_n)
{
    static char text[INGEST_MAX_LINE + 1];
    size_t n = is_tag ? lp_unescape(got, 0, text, sizeof(text)) : got.n;
    if (!is_tag)
        memcpy(text, got.p, got.n);
    if (n != want_n || memcmp(text, want, n) != 0) {
        fprintf(stderr, "round trip: wanted '%.*s', got '%.*s'\n", (int)want_n, want, (int)n, text);
        abort();
    }
}

static void roundtrip_check(const struct prom_sample *s)
{
    static struct dsf_buf out;
    static struct lp_line line;
    static char want[INGEST_MAX_LINE + 1];
    const char *reason;
    buf_reset(&out);
    if (prom_render_line(&out, s, roundtrip_now_ns, &reason))
        return;
    if (out.len == 0 || out.data[out.len - 1] != '\n' ||
        lp_parse_line(out.data, out.len - 1, &line, &reason)) {
        fprintf(stderr, "rendered line refused (%s): %.*s", reason, (int)out.len, out.data);
        abort();
    }
    roundtrip_expect(line.measurement, 0, s->name.p, s->name.n);
    uint32_t tag = 0;
    for (uint32_t i = 0; i < s->nlabels; i++) {
        if (s->labels[i].value.n == 0)
            continue;
        if (tag >= line.ntags)
            abort();
        roundtrip_expect(line.tags[tag].key, 1, want, meant_text(&s->labels[i], 0, want));
        roundtrip_expect(line.tags[tag].val, 1, want, meant_text(&s->labels[i], 1, want));
        tag++;
    }
    int64_t ts = s->has_ts ? s->ts_ms * 1000000 : roundtrip_now_ns;
    if (tag != line.ntags || line.nfields != 1 || line.fields[0].key.n != 5 ||
        memcmp(line.fields[0].key.p, "value", 5) != 0 || line.fields[0].num.f != s->value ||
        !line.has_ts || line.ts != ts) {
        fprintf(stderr, "round trip changed the sample: %.*s", (int)out.len, out.data);
        abort();
    }
}

#endif
