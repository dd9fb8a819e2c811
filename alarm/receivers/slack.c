/* Slack incoming webhook: one attachment per notification, coloured by severity. */
#include "alarm/notify/internal.h"

#include <string.h>

static int rank(const char *severity)
{
    if (!severity)
        return 0;
    if (!strcmp(severity, "critical") || !strcmp(severity, "crit") || !strcmp(severity, "page"))
        return 2;
    if (!strcmp(severity, "warning") || !strcmp(severity, "warn") || !strcmp(severity, "nodata") ||
        !strcmp(severity, "offline"))
        return 1;
    return 0;
}

/* good when all resolved, danger when any firing alert is critical, warning otherwise. */
static const char *colour(const struct nf_message *m)
{
    int worst = -1;
    for (size_t i = 0; i < m->nalerts; i++) {
        const struct nf_alert *a = m->alerts[i];
        if (nf_alert_resolved(a))
            continue;
        int r = rank(nf_labels_get(&a->labels, "severity"));
        worst = r > worst ? r : worst;
    }
    return worst < 0 ? "good" : worst == 2 ? "danger" : "warning";
}

static void opt(struct dsf_buf *out, const char *key, const char *v)
{
    if (!v || !*v)
        return;
    buf_printf(out, "\"%s\":", key);
    nf_json_str(out, v);
    buf_putc(out, ',');
}

void nf_slack_render(const struct nf_slack_opts *o, const struct nf_message *m, struct dsf_buf *out)
{
    struct dsf_buf title = {0}, text = {0};
    nf_title(m, &title);
    nf_alert_lines(m, "\n", &text);
    buf_putc(out, '{');
    opt(out, "channel", o->channel);
    opt(out, "username", o->username);
    opt(out, "icon_emoji", o->icon_emoji);
    buf_puts(out, "\"attachments\":[{\"color\":");
    nf_json_str(out, colour(m));
    buf_puts(out, ",\"title\":");
    nf_json_str(out, buf_cstr(&title));
    if (m->external_url && *m->external_url) {
        buf_puts(out, ",\"title_link\":");
        nf_json_str(out, m->external_url);
    }
    buf_puts(out, ",\"text\":");
    nf_json_str(out, buf_cstr(&text));
    buf_puts(out, ",\"fallback\":");
    nf_json_str(out, buf_cstr(&title));
    buf_puts(out, ",\"footer\":\"damselfly\"}]}");
    buf_free(&title);
    buf_free(&text);
}
