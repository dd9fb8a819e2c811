/*
 * A good scrape's body to line protocol. Exposition text (exporters) goes through the shared
 * parser and mapping (common/prom.h); a label that would take the place of the identity tags
 * or of a target's own label is renamed exported_<name>, as Prometheus does with
 * honor_labels=false, since the collector checks the identity tags against the topic.
 * An agent's snapshot (pull) is already line protocol: each line is checked and passed on as
 * it came, with the agent's timestamps and names.
 */
#define DSF_MODULE "convert"
#include "common/lp.h"
#include "common/prom.h"
#include "scraper/scraper.h"

#include <stdio.h>
#include <string.h>

#define RENAMED_MAX 128

struct exporter_ctx {
    struct scrape_target *t;
    struct dsf_buf line;
    char renamed[PROM_MAX_LABELS][RENAMED_MAX];
    size_t taken;
};

static void reject(struct scraper *s, enum sample_reject why, const char *key, const char *text,
                   size_t len, const char *reason)
{
    s->stats.rejected[why]++;
    uint64_t held_back;
    if (dsf_log_due(&s->reject_warn, &held_back))
        log_warn("%s: rejected '%.*s': %s; %llu more rejected since the last warning", key,
                 (int)(len > 120 ? 120 : len), text, reason, (unsigned long long)held_back);
}

static int span_is(struct lp_span sp, const char *s)
{
    return sp.n == strlen(s) && memcmp(sp.p, s, sp.n) == 0;
}

/* The scraper's own labels: the identity and the target's labels of the targets file. */
static int taken_name(const struct scrape_target *t, struct lp_span name)
{
    if (span_is(name, "ns") || span_is(name, "mci") || span_is(name, "vm"))
        return 1;
    for (size_t i = 0; i < t->nlabels; i++)
        if (span_is(name, t->label_names[i]))
            return 1;
    return 0;
}

static void on_sample(void *arg, const struct prom_sample *in)
{
    struct exporter_ctx *x = arg;
    struct scrape_target *t = x->t;
    struct scraper *s = t->owner;
    struct prom_sample out = *in;
    const char *reason = NULL;
    s->stats.samples_in++;
    for (uint32_t i = 0; i < out.nlabels; i++) {
        struct lp_span *name = &out.labels[i].name;
        if (!taken_name(t, *name))
            continue;
        int n = snprintf(x->renamed[i], RENAMED_MAX, "exported_%.*s", (int)name->n, name->p);
        if (n >= RENAMED_MAX) {
            reject(s, REJECT_LABELS, t->key, in->name.p, in->name.n, "label name too long");
            return;
        }
        *name = (struct lp_span){x->renamed[i], (uint32_t)n};
    }
    if (out.nlabels + t->nlabels > PROM_MAX_LABELS) {
        reject(s, REJECT_LABELS, t->key, in->name.p, in->name.n,
               "more labels than a sample may carry with the target's");
        return;
    }
    for (size_t i = 0; i < t->nlabels; i++) {
        struct prom_label *l = &out.labels[out.nlabels++];
        l->name = (struct lp_span){t->label_names[i], (uint32_t)strlen(t->label_names[i])};
        l->value = (struct lp_span){t->label_values[i], (uint32_t)strlen(t->label_values[i])};
        l->escaped = 0;
    }
    buf_reset(&x->line);
    if (prom_render_line(&x->line, &out, t->started_ns, &reason) < 0) {
        reject(s, REJECT_RENDER, t->key, in->name.p, in->name.n, reason);
        return;
    }
    /* Without its newline: publish_line adds it. */
    publish_line(t, x->line.data, x->line.len - 1);
    x->taken++;
}

static void on_reject(void *arg, const char *text, size_t len, const char *reason)
{
    struct exporter_ctx *x = arg;
    x->t->owner->stats.samples_in++;
    reject(x->t->owner, REJECT_PARSE, x->t->key, text, len, reason);
}

static size_t convert_exposition(struct scrape_target *t, const char *body, size_t len)
{
    static struct exporter_ctx x; /* the loop thread's alone; too large for the stack */
    const struct prom_ops ops = {on_sample, on_reject};
    x.t = t;
    x.taken = 0;
    prom_text_parse(body, len, &ops, &x);
    buf_free(&x.line);
    return x.taken;
}

static size_t convert_lines(struct scrape_target *t, const char *body, size_t len)
{
    struct scraper *s = t->owner;
    size_t taken = 0;
    const char *p = body, *end = body + len;
    while (p < end) {
        size_t n;
        const char *line = text_line_next(&p, end, &n), *reason;
        if (n && *line != '#') {
            s->stats.samples_in++;
            if (lp_check_line(line, n, s->line, &reason) < 0) {
                reject(s, REJECT_LP, t->key, line, n, reason);
            } else {
                publish_line(t, line, n);
                taken++;
            }
        }
    }
    return taken;
}

size_t convert_body(struct scrape_target *t, const char *body, size_t len)
{
    size_t taken =
        t->mode == SCRAPE_PULL ? convert_lines(t, body, len) : convert_exposition(t, body, len);
    publish_flush(t);
    return taken;
}
