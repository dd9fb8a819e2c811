/* Text shared by the human-facing receivers (Slack, email). */
#include "alarm/notify/internal.h"

#include <string.h>

size_t nf_count_firing(const struct nf_message *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nalerts; i++)
        n += !nf_alert_resolved(m->alerts[i]);
    return n;
}

/* Control characters would break an email header or a Slack title. */
static void put_clean(struct dsf_buf *out, const char *s)
{
    for (; *s; s++)
        buf_putc(out, (unsigned char)*s < 0x20 ? ' ' : *s);
}

/* Alertmanager's default title: [FIRING:n] alertname (other group labels). */
void nf_title(const struct nf_message *m, struct dsf_buf *out)
{
    size_t firing = nf_count_firing(m);
    if (firing)
        buf_printf(out, "[FIRING:%zu] ", firing);
    else
        buf_printf(out, "[RESOLVED] ");
    const char *name = m->nalerts ? nf_labels_get(&m->alerts[0]->labels, "alertname") : NULL;
    const char *gname = nf_labels_get(m->group_labels, "alertname");
    put_clean(out, gname ? gname : name ? name : "alerts");
    int open = 0;
    for (size_t i = 0; i < m->group_labels->n; i++) {
        const struct alarm_label *l = &m->group_labels->kv[i];
        if (strcmp(l->key, "alertname") == 0)
            continue;
        buf_puts(out, open ? " " : " (");
        open = 1;
        put_clean(out, l->key);
        buf_putc(out, '=');
        put_clean(out, l->val);
    }
    if (open)
        buf_putc(out, ')');
}

/* One line per alert: status, vm (or every label), summary. */
void nf_alert_lines(const struct nf_message *m, const char *eol, struct dsf_buf *out)
{
    for (size_t i = 0; i < m->nalerts; i++) {
        const struct nf_alert *a = m->alerts[i];
        const char *summary = nf_labels_get(&a->annotations, "summary");
        const char *desc = nf_labels_get(&a->annotations, "description");
        buf_printf(out, "- [%s] ", nf_alert_resolved(a) ? "resolved" : "firing");
        for (size_t j = 0; j < a->labels.n; j++) {
            if (j)
                buf_putc(out, ' ');
            put_clean(out, a->labels.kv[j].key);
            buf_putc(out, '=');
            put_clean(out, a->labels.kv[j].val);
        }
        if (summary || desc) {
            buf_puts(out, ": ");
            put_clean(out, summary ? summary : desc);
        }
        buf_puts(out, eol);
    }
}
