#include "common/ingest.h"
#include "common/utf8.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static const char *check_utf8(const struct lp_line *l)
{
    if (!utf8_valid(l->measurement.p, l->measurement.n))
        return "invalid UTF-8 in the measurement";
    for (uint32_t i = 0; i < l->ntags; i++)
        if (!utf8_valid(l->tags[i].key.p, l->tags[i].key.n) ||
            !utf8_valid(l->tags[i].val.p, l->tags[i].val.n))
            return "invalid UTF-8 in a tag";
    for (uint32_t i = 0; i < l->nfields; i++)
        if (!utf8_valid(l->fields[i].key.p, l->fields[i].key.n) ||
            (l->fields[i].type == DSF_V_STR && !utf8_valid(l->fields[i].val.p, l->fields[i].val.n)))
            return "invalid UTF-8 in a field";
    return NULL;
}

/* Most lines are ASCII: one pass a word at a time spares checking every span. */
static int is_ascii(const char *s, size_t n)
{
    uint64_t acc = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        acc |= w;
    }
    for (; i < n; i++)
        acc |= (unsigned char)s[i];
    return (acc & 0x8080808080808080ULL) == 0;
}

/* Which identity tag a key is: 0 ns, 1 mci, 2 vm, -1 none. */
static int identity_key(struct lp_span k)
{
    if (k.n == 2 && k.p[0] == 'n' && k.p[1] == 's')
        return 0;
    if (k.n == 3 && memcmp(k.p, "mci", 3) == 0)
        return 1;
    if (k.n == 2 && k.p[0] == 'v' && k.p[1] == 'm')
        return 2;
    return -1;
}

static int same_value(struct lp_span v, const char *want, size_t n)
{
    if (v.n == n && !memchr(v.p, '\\', v.n))
        return memcmp(v.p, want, n) == 0; /* nothing escaped: the text is the value */
    char val[128];
    lp_unescape(v, 0, val, sizeof(val));
    return strcmp(val, want) == 0;
}

/* Identity tags must agree with the topic; those missing are added. Returns NULL or a
 * reason; *missing gets a bit per tag to add (1 ns, 2 mci, 4 vm). */
static const char *check_identity(const struct lp_line *l, const struct dsf_identity *id,
                                  int *missing)
{
    const char *want[3] = {id->ns, id->mci, id->vm};
    *missing |= INGEST_MISSING_IDENTITY;
    size_t wantn[3] = {0, 0, 0};
    for (uint32_t i = 0; i < l->ntags; i++) {
        int k = identity_key(l->tags[i].key);
        if (k < 0)
            continue;
        if (!wantn[k])
            wantn[k] = strlen(want[k]); /* once per line and key */
        if (!same_value(l->tags[i].val, want[k], wantn[k]))
            return k == 0   ? "tag ns disagrees with the topic"
                   : k == 1 ? "tag mci disagrees with the topic"
                            : "tag vm disagrees with the topic";
        *missing &= ~(1 << k);
    }
    return NULL;
}

/* The line's text without its timestamp: the digits (and sign) after the last space. */
static size_t without_timestamp(const char *text, size_t len)
{
    size_t n = len;
    while (n && ((text[n - 1] >= '0' && text[n - 1] <= '9') || text[n - 1] == '-'))
        n--;
    return n && text[n - 1] == ' ' ? n - 1 : len;
}

static void render_time(struct dsf_buf *out, const char *text, size_t len, const struct lp_line *l,
                        int missing)
{
    if (missing & INGEST_RESCALED)
        len = without_timestamp(text, len);
    buf_put(out, text, len);
    buf_printf(out, " %lld\n", (long long)l->ts);
}

void ingest_render_line(struct dsf_buf *out, const char *text, size_t len, const struct lp_line *l,
                        const struct dsf_identity *id, int missing)
{
    if (!(missing & INGEST_MISSING_IDENTITY)) {
        if (missing & (INGEST_STAMPED | INGEST_RESCALED)) {
            render_time(out, text, len, l, missing);
            return;
        }
        buf_put(out, text, len);
        buf_putc(out, '\n');
        return;
    }
    const char *tags_end = l->ntags ? l->tags[l->ntags - 1].val.p + l->tags[l->ntags - 1].val.n
                                    : l->measurement.p + l->measurement.n;
    buf_put(out, text, (size_t)(tags_end - text));
    const char *keys[3] = {"ns", "mci", "vm"};
    const char *vals[3] = {id->ns, id->mci, id->vm};
    for (int k = 0; k < 3; k++) {
        if (!(missing & (1 << k)))
            continue;
        buf_putc(out, ',');
        buf_puts(out, keys[k]);
        buf_putc(out, '=');
        lp_put_key(out, vals[k]);
    }
    if (missing & (INGEST_STAMPED | INGEST_RESCALED))
        render_time(out, tags_end, len - (size_t)(tags_end - text), l, missing);
    else {
        buf_put(out, tags_end, len - (size_t)(tags_end - text));
        buf_putc(out, '\n');
    }
}

struct feed {
    struct ingest *in;
    const struct dsf_identity *id;
    const struct ingest_ops *ops;
    void *ctx;
};

/* The HTTP writes' receipt time and precision; 0, or -1 when the time overflows. */
static int retime(const struct ingest *in, struct lp_line *line, int *missing)
{
    if (!line->has_ts) {
        line->ts = in->stamp_ns;
        line->has_ts = 1;
        *missing |= INGEST_STAMPED;
        return 0;
    }
    if (in->ts_unit_ns <= 1)
        return 0;
    *missing |= INGEST_RESCALED;
    return __builtin_mul_overflow(line->ts, in->ts_unit_ns, &line->ts) ? -1 : 0;
}

static void take_line(struct feed *f, const char *text, size_t len)
{
    while (len && (text[len - 1] == '\r' || text[len - 1] == ' '))
        len--;
    if (!len || text[0] == '#')
        return;
    struct lp_line *line = &f->in->line;
    const char *reason = NULL;
    int missing = 0;
    if (len > INGEST_MAX_LINE)
        reason = "line longer than 64 KiB";
    else if ((f->in->check_only ? lp_check_line : lp_parse_line)(text, len, line, &reason))
        ;
    else if (!line->has_ts && !f->in->stamp_ns)
        reason = "no timestamp (samples keep their own time; nothing is stamped on arrival)";
    else if (retime(f->in, line, &missing))
        reason = "timestamp out of range at this precision";
    else if (!(reason = is_ascii(text, len) ? NULL : check_utf8(line)) && f->id)
        reason = check_identity(line, f->id, &missing);
    if (reason)
        f->ops->reject(f->ctx, text, len, reason);
    else
        f->ops->line(f->ctx, text, len, line, missing);
}

static void take_lp(struct feed *f, const char *p, size_t n)
{
    const char *end = p + n;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        take_line(f, p, len);
        p += len + 1;
    }
}

static void add_json_value(struct dsf_batch *b, const char *key, json_t *v)
{
    if (json_is_integer(v))
        batch_field_i(b, key, json_integer_value(v));
    else if (json_is_real(v))
        batch_field_f(b, key, json_real_value(v));
    else if (json_is_boolean(v))
        batch_field_b(b, key, json_is_true(v));
    else if (json_is_string(v))
        batch_field_s(b, key, json_string_value(v));
}

/* JSON points (schemas/metric.schema.json) become line protocol and take the same path. */
static void take_json(struct feed *f, const char *p, size_t n)
{
    json_error_t jerr;
    json_t *root = json_loadb(p, n, 0, &jerr);
    if (!json_is_array(root)) {
        char reason[200];
        snprintf(reason, sizeof(reason), "not a JSON array of points: %s", jerr.text);
        f->ops->reject(f->ctx, p, n, reason);
        json_decref(root);
        return;
    }
    struct dsf_batch *b = &f->in->json_batch;
    struct dsf_buf *one = &f->in->json_line;
    size_t i;
    json_t *pt;
    json_array_foreach(root, i, pt)
    {
        json_t *name = json_object_get(pt, "name"), *ts = json_object_get(pt, "timestamp");
        batch_reset(b);
        buf_reset(one);
        if (json_is_string(name) && json_is_integer(ts)) {
            batch_begin(b, json_string_value(name), json_integer_value(ts));
            const char *k;
            json_t *v;
            json_object_foreach(json_object_get(pt, "tags"), k, v) if (json_is_string(v))
                batch_tag(b, k, json_string_value(v));
            json_object_foreach(json_object_get(pt, "fields"), k, v) add_json_value(b, k, v);
            batch_end(b);
        }
        if (b->npoints)
            lp_render_point(one, b, &b->points[0], NULL);
        else
            buf_puts(one, "invalid JSON point: needs name, timestamp and fields\n");
        take_line(f, one->data, one->len - 1);
    }
    json_decref(root);
}

void ingest_message(struct ingest *in, const char *fmt, const char *payload, size_t len,
                    const struct dsf_identity *id, const struct ingest_ops *ops, void *ctx)
{
    struct feed f = {in, id, ops, ctx};
    if (fmt && strcmp(fmt, "json") == 0)
        take_json(&f, payload, len);
    else
        take_lp(&f, payload, len);
}

void ingest_free(struct ingest *in)
{
    batch_free(&in->json_batch);
    buf_free(&in->json_line);
}
