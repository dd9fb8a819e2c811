/* libFuzzer target: line-protocol round trip. The input drives a point (names, tag and
 * field values of every type) through the encoder; the parser must read back exactly what
 * was encoded. The raw input is also parsed as line protocol, which must never crash. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lp.h"

struct reader {
    const uint8_t *p;
    size_t n;
};

static uint8_t take_byte(struct reader *r)
{
    if (!r->n)
        return 0;
    r->n--;
    return *r->p++;
}

/* A non-empty string without NUL (which C strings cannot carry). */
static void take_string(struct reader *r, char *out, size_t cap)
{
    size_t len = 1 + take_byte(r) % (cap - 1);
    size_t w = 0;
    for (size_t i = 0; i < len && r->n; i++) {
        uint8_t c = take_byte(r);
        if (c && c != '\n' && c != '\r' && c != '\t')
            out[w++] = (char)c;
    }
    if (w == 0)
        out[w++] = 'x';
    out[w] = '\0';
}

static void check_span(struct lp_span sp, int is_string, const char *want)
{
    char got[128];
    lp_unescape(sp, is_string, got, sizeof(got));
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "round trip: wanted '%s', got '%s'\n", want, got);
        abort();
    }
}

static struct lp_line line, checked;

static int same_span(struct lp_span a, struct lp_span b)
{
    return a.p == b.p && a.n == b.n;
}

/* lp_check_line must accept and split exactly what lp_parse_line does. */
static void check_agrees(const char *s, size_t n)
{
    const char *reason, *checked_reason;
    int rc = lp_parse_line(s, n, &line, &reason);
    if (lp_check_line(s, n, &checked, &checked_reason) != rc) {
        fprintf(stderr, "lp_check_line and lp_parse_line disagree on '%.*s'\n", (int)n, s);
        abort();
    }
    if (rc)
        return;
    int same = same_span(line.measurement, checked.measurement) && line.ntags == checked.ntags &&
               line.nfields == checked.nfields && line.has_ts == checked.has_ts &&
               (!line.has_ts || line.ts == checked.ts);
    for (uint32_t i = 0; same && i < line.ntags; i++)
        same = same_span(line.tags[i].key, checked.tags[i].key) &&
               same_span(line.tags[i].val, checked.tags[i].val);
    for (uint32_t i = 0; same && i < line.nfields; i++)
        same = same_span(line.fields[i].key, checked.fields[i].key) &&
               same_span(line.fields[i].val, checked.fields[i].val) &&
               line.fields[i].type == checked.fields[i].type;
    if (!same) {
        fprintf(stderr, "lp_check_line split '%.*s' differently\n", (int)n, s);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *reason;
    check_agrees((const char *)data, size);

    struct reader r = {data, size};
    char name[64], tk[64], tv[64], fk[64], fs[64];
    take_string(&r, name, sizeof(name));
    take_string(&r, tk, sizeof(tk));
    take_string(&r, tv, sizeof(tv));
    take_string(&r, fk, sizeof(fk));
    take_string(&r, fs, sizeof(fs));
    if (name[0] == '#')
        name[0] = 'm'; /* a leading '#' makes a comment line */
    uint64_t bits = 0;
    double fv = 0;
    for (int i = 0; i < 8; i++)
        bits = (bits << 8) | take_byte(&r);
    int64_t iv = (int64_t)bits;
    memcpy(&fv, &bits, sizeof(fv));

    struct dsf_batch b = {0};
    struct dsf_buf out = {0};
    batch_begin(&b, name, iv);
    batch_tag(&b, tk, tv);
    batch_field_s(&b, fk, fs);
    batch_field_i(&b, "i", iv);
    batch_field_u(&b, "u", (uint64_t)iv);
    batch_field_f(&b, "f", fv);
    batch_field_b(&b, "b", (int)(iv & 1));
    batch_end(&b);
    lp_render_batch(&out, &b, NULL);
    if (lp_parse_line(out.data, out.len - 1, &line, &reason)) {
        fprintf(stderr, "encoder output refused (%s): %s", reason, buf_cstr(&out));
        abort();
    }
    check_span(line.measurement, 0, name);
    check_span(line.tags[0].key, 0, tk);
    check_span(line.tags[0].val, 0, tv);
    check_span(line.fields[0].key, 0, fk);
    check_span(line.fields[0].val, 1, fs);
    int finite = fv == fv && fv - fv == 0;
    if (line.nfields != (finite ? 5u : 4u) || line.fields[1].num.i != iv ||
        line.fields[2].num.u != (uint64_t)iv || line.ts != iv ||
        (finite && line.fields[3].num.f != fv) ||
        line.fields[finite ? 4 : 3].num.b != (int)(iv & 1))
        abort();
    batch_free(&b);
    buf_free(&out);
    return 0;
}
