/* The generic webhook: Alertmanager's version 4 body, so existing consumers work as they are. */
#include "alarm/notify/internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static void put_alert(struct dsf_buf *out, const struct nf_alert *a)
{
    buf_printf(out, "{\"status\":\"%s\",\"labels\":", nf_alert_resolved(a) ? "resolved" : "firing");
    nf_json_labels(out, &a->labels);
    buf_puts(out, ",\"annotations\":");
    nf_json_labels(out, &a->annotations);
    buf_puts(out, ",\"startsAt\":\"");
    nf_rfc3339(a->starts_ns, out);
    buf_puts(out, "\",\"endsAt\":\"");
    nf_rfc3339(a->ends_ns, out);
    buf_puts(out, "\",\"generatorURL\":");
    nf_json_str(out, a->generator_url);
    buf_printf(out, ",\"fingerprint\":\"%016" PRIx64 "\"}", a->fp);
}

/* Labels (or annotations) whose value is the same in every alert. */
static void put_common(struct dsf_buf *out, const struct nf_message *m, int annotations)
{
    buf_putc(out, '{');
    if (m->nalerts) {
        const struct nf_labels *first =
            annotations ? &m->alerts[0]->annotations : &m->alerts[0]->labels;
        int n = 0;
        for (size_t i = 0; i < first->n; i++) {
            const struct alarm_label *l = &first->kv[i];
            size_t j;
            for (j = 1; j < m->nalerts; j++) {
                const struct nf_labels *other =
                    annotations ? &m->alerts[j]->annotations : &m->alerts[j]->labels;
                const char *v = nf_labels_get(other, l->key);
                if (!v || strcmp(v, l->val) != 0)
                    break;
            }
            if (j < m->nalerts)
                continue;
            if (n++)
                buf_putc(out, ',');
            nf_json_str(out, l->key);
            buf_putc(out, ':');
            nf_json_str(out, l->val);
        }
    }
    buf_putc(out, '}');
}

void nf_webhook_render(const struct nf_message *m, struct dsf_buf *out)
{
    buf_puts(out, "{\"receiver\":");
    nf_json_str(out, m->receiver);
    buf_printf(out, ",\"status\":\"%s\",\"alerts\":[", nf_count_firing(m) ? "firing" : "resolved");
    for (size_t i = 0; i < m->nalerts; i++) {
        if (i)
            buf_putc(out, ',');
        put_alert(out, m->alerts[i]);
    }
    buf_puts(out, "],\"groupLabels\":");
    nf_json_labels(out, m->group_labels);
    buf_puts(out, ",\"commonLabels\":");
    put_common(out, m, 0);
    buf_puts(out, ",\"commonAnnotations\":");
    put_common(out, m, 1);
    buf_puts(out, ",\"externalURL\":");
    nf_json_str(out, m->external_url);
    buf_puts(out, ",\"version\":\"4\",\"groupKey\":");
    nf_json_str(out, m->group_key);
    buf_printf(out, ",\"truncatedAlerts\":%zu}", m->truncated);
}
