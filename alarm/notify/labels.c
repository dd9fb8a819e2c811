#include "alarm/notify/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int by_key(const void *a, const void *b)
{
    return strcmp(((const struct alarm_label *)a)->key, ((const struct alarm_label *)b)->key);
}

/* Sorted again: fingerprints and printed group keys must not depend on the caller's order. */
int nf_labels_copy(struct nf_labels *dst, const struct alarm_labels *src)
{
    dst->n = 0;
    dst->kv = NULL;
    if (!src || src->n == 0)
        return 0;
    struct alarm_label *kv = calloc(src->n, sizeof(*kv));
    if (!kv)
        return -1;
    dst->kv = kv;
    for (size_t i = 0; i < src->n; i++) {
        kv[i].key = strdup(src->kv[i].key ? src->kv[i].key : "");
        kv[i].val = strdup(src->kv[i].val ? src->kv[i].val : "");
        dst->n = i + 1;
        if (!kv[i].key || !kv[i].val)
            return -1;
    }
    qsort(kv, dst->n, sizeof(*kv), by_key);
    return 0;
}

void nf_labels_free(struct nf_labels *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free((char *)l->kv[i].key);
        free((char *)l->kv[i].val);
    }
    free(l->kv);
    l->kv = NULL;
    l->n = 0;
}

const char *nf_labels_get(const struct nf_labels *l, const char *key)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->kv[i].key, key) == 0)
            return l->kv[i].val;
    return NULL;
}

uint64_t nf_fingerprint(const struct nf_labels *l)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < l->n; i++) {
        const char *parts[2] = {l->kv[i].key, l->kv[i].val};
        for (int p = 0; p < 2; p++) {
            for (const unsigned char *c = (const unsigned char *)parts[p]; *c; c++) {
                h ^= *c;
                h *= 1099511628211ULL;
            }
            h ^= 0xff;
            h *= 1099511628211ULL;
        }
    }
    return h;
}

static void put_escaped(struct dsf_buf *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            buf_putc(out, '\\');
        if (*s == '\n') {
            buf_puts(out, "\\n");
            continue;
        }
        buf_putc(out, *s);
    }
}

void nf_labels_print(const struct nf_labels *l, struct dsf_buf *out)
{
    buf_putc(out, '{');
    for (size_t i = 0; i < l->n; i++) {
        buf_printf(out, "%s%s=\"", i ? "," : "", l->kv[i].key);
        put_escaped(out, l->kv[i].val);
        buf_putc(out, '"');
    }
    buf_putc(out, '}');
}

void nf_rfc3339(int64_t ns, struct dsf_buf *out)
{
    if (ns == 0) {
        buf_puts(out, "0001-01-01T00:00:00Z");
        return;
    }
    time_t s = (time_t)(ns / 1000000000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char b[64];
    strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%S", &tm);
    buf_printf(out, "%s.%03dZ", b, (int)((ns / 1000000) % 1000));
}

void nf_json_labels(struct dsf_buf *out, const struct nf_labels *l)
{
    buf_putc(out, '{');
    for (size_t i = 0; i < l->n; i++) {
        if (i)
            buf_putc(out, ',');
        nf_json_str(out, l->kv[i].key);
        buf_putc(out, ':');
        nf_json_str(out, l->kv[i].val);
    }
    buf_putc(out, '}');
}

struct nf_alert *nf_alert_copy(const struct alarm_alert *a)
{
    struct nf_alert *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->starts_ns = a->starts_at_ns;
    c->ends_ns = a->ends_at_ns;
    c->one_off = a->one_off && a->ends_at_ns != 0;
    if (nf_labels_copy(&c->labels, &a->labels) ||
        nf_labels_copy(&c->annotations, &a->annotations) ||
        (a->generator_url && !(c->generator_url = strdup(a->generator_url)))) {
        nf_alert_free(c);
        return NULL;
    }
    c->fp = nf_fingerprint(&c->labels);
    return c;
}

void nf_alert_free(struct nf_alert *a)
{
    if (!a)
        return;
    nf_labels_free(&a->labels);
    nf_labels_free(&a->annotations);
    free(a->generator_url);
    free(a);
}
