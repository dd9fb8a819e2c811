/* Alertmanager's POST /api/v2/alerts body: the postable alerts Prometheus sends. */
#include "alarm/notify/internal.h"

void nf_am_render(struct nf_alert *const *alerts, size_t n, struct dsf_buf *out)
{
    buf_putc(out, '[');
    for (size_t i = 0; i < n; i++) {
        const struct nf_alert *a = alerts[i];
        buf_puts(out, i ? ",{\"labels\":" : "{\"labels\":");
        nf_json_labels(out, &a->labels);
        buf_puts(out, ",\"annotations\":");
        nf_json_labels(out, &a->annotations);
        buf_puts(out, ",\"startsAt\":\"");
        nf_rfc3339(a->starts_ns, out);
        buf_putc(out, '"');
        /* Left out while firing: Alertmanager then resolves it by itself only if we stop
         * re-sending (after its resolve_timeout). */
        if (nf_alert_resolved(a)) {
            buf_puts(out, ",\"endsAt\":\"");
            nf_rfc3339(a->ends_ns, out);
            buf_putc(out, '"');
        }
        if (a->generator_url) {
            buf_puts(out, ",\"generatorURL\":");
            nf_json_str(out, a->generator_url);
        }
        buf_putc(out, '}');
    }
    buf_putc(out, ']');
}
