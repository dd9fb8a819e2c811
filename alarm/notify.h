/*
 * The notifier: what the alarm engine hands its alerts to. It routes them by labels to
 * receivers, groups and deduplicates them the way Alertmanager does (group_by, group_wait,
 * group_interval, repeat_interval), applies silences, and delivers to Slack, email (SMTP),
 * webhooks (Alertmanager's v4 body) and real Alertmanagers (POST /api/v2/alerts), with
 * retries, rate limits and counters. Its notification log lives in the state directory, so a
 * restarted engine does not notify a firing group again before repeat_interval.
 *
 * The engine calls notifier_push() on every state change of an alert (and again periodically
 * while it fires, as Prometheus resends); the notifier copies what it keeps.
 */
#ifndef DSF_ALARM_NOTIFY_H
#define DSF_ALARM_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct dsf_http_server;
struct dsf_buf;

struct alarm_label {
    const char *key, *val;
};

struct alarm_labels {
    size_t n;
    const struct alarm_label *kv; /* sorted by key, keys unique */
};

struct alarm_alert {
    struct alarm_labels labels;      /* alertname, severity, ns, mci, vm, the rule's own labels */
    struct alarm_labels annotations; /* rendered: summary, description, value, threshold, ... */
    int64_t starts_at_ns;            /* when it began firing */
    int64_t ends_at_ns;              /* 0 while firing; set when resolved */
    const char *generator_url;       /* may be NULL */
    /* A notification of something that already happened (ends_at set when pushed): told once,
     * to every integration, though no firing notification came before it (a resolved alert
     * is otherwise only told to those told it fired). Its labels should make it unique. */
    int one_off;
};

struct notifier;

/* Reads the routing file (JSON, schemas/alarm-notify.schema.json: route tree, receivers,
 * inhibit-free subset of Alertmanager's configuration). NULL with a message naming the file and
 * the key in err. state_dir holds the notification log and silences. */
struct notifier *notifier_new(struct event_base *base, const char *config_path,
                              const char *state_dir, char *err, size_t errlen);

/* Reads and checks the routing file only (for --check). 0, or -1 with err. */
int notifier_check(const char *config_path, char *err, size_t errlen);

void notifier_push(struct notifier *n, const struct alarm_alert *a);

/* Adds /api/v1/silences (GET list, POST create, DELETE /api/v1/silences/{id}) to the server. */
int notifier_register_api(struct notifier *n, struct dsf_http_server *http);

/* The silences' caps (the alarm engine's notify.max_silences and max_silence_duration; 0 ms:
 * no limit on the duration). */
void notifier_set_silence_limits(struct notifier *n, size_t max, int64_t max_duration_ms);

/* Prometheus text of the notifier's counters (sent, failed, retried, rate limited, silenced,
 * per receiver). */
void notifier_render_metrics(const struct notifier *n, struct dsf_buf *out);

/* Re-reads the routing file; on error keeps the old one and returns -1 with err filled. */
int notifier_reload(struct notifier *n, char *err, size_t errlen);

/* Sends what is due (flushes groups whose wait has not elapsed only when flush is set) and
 * frees everything. */
void notifier_free(struct notifier *n, int flush);

#endif
