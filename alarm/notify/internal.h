/*
 * What the notifier's files share: the parsed routing file (route tree, receivers and their
 * integrations), label sets, the notification log, silences and deliveries.
 */
#ifndef DSF_ALARM_NOTIFY_INTERNAL_H
#define DSF_ALARM_NOTIFY_INTERNAL_H

#include "alarm/notify.h"
#include "common/buf.h"
#include "common/file.h"
#include "common/metric_json.h"

#include <regex.h>
#include <stddef.h>
#include <stdint.h>

#define NF_ERRLEN 512

struct event;
struct nf_job;

/* ---- labels (labels.c) ---- */

/* An owned, sorted label set. */
struct nf_labels {
    size_t n;
    struct alarm_label *kv;
};

int nf_labels_copy(struct nf_labels *dst, const struct alarm_labels *src);
void nf_labels_free(struct nf_labels *l);
const char *nf_labels_get(const struct nf_labels *l, const char *key);
/* Alertmanager's fingerprint: FNV-1a 64 over sorted names and values, 0xff separated. */
uint64_t nf_fingerprint(const struct nf_labels *l);
/* {a="1",b="2"}, as Alertmanager prints group keys. */
void nf_labels_print(const struct nf_labels *l, struct dsf_buf *out);
/* RFC 3339 UTC with milliseconds; 0 is Go's zero time, Alertmanager's "unknown end". */
void nf_rfc3339(int64_t ns, struct dsf_buf *out);
/* A JSON string; invalid UTF-8 becomes U+FFFD (common/metric_json.h). NULL writes "". */
static inline void nf_json_str(struct dsf_buf *out, const char *s)
{
    json_put_string(out, s ? s : "");
}
void nf_json_labels(struct dsf_buf *out, const struct nf_labels *l);

/* ---- matchers (matcher.c) ---- */

enum nf_match_op { NF_EQ, NF_NE, NF_RE, NF_NRE };

struct nf_matcher {
    char *name, *value;
    enum nf_match_op op;
    regex_t re; /* for =~ and !~, anchored at both ends like Alertmanager's */
};

/* Parses `name=value`, `name!="v"`, `name=~"re"`, `name!~re`. 0, or -1 with err. */
int nf_matcher_parse(struct nf_matcher *m, const char *text, char *err, size_t errlen);
int nf_matcher_init(struct nf_matcher *m, const char *name, enum nf_match_op op, const char *value,
                    char *err, size_t errlen);
void nf_matcher_free(struct nf_matcher *m);
int nf_matcher_matches(const struct nf_matcher *m, const struct nf_labels *l);
int nf_matchers_match(const struct nf_matcher *m, size_t n, const struct nf_labels *l);
void nf_matcher_print(const struct nf_matcher *m, struct dsf_buf *out);

/* ---- routing file (config.c) ---- */

enum nf_kind { NF_SLACK, NF_EMAIL, NF_WEBHOOK, NF_ALERTMANAGER };

struct nf_slack_opts {
    char *url, *channel, *username, *icon_emoji;
    int send_resolved;
    int64_t timeout_ms;
};

struct nf_email_opts {
    char *to, *from, *smarthost, *hello, *auth_username, *auth_password, *ca_file;
    int require_tls, send_resolved;
    int64_t timeout_ms;
};

struct nf_webhook_opts {
    char *url, *bearer_token;
    int send_resolved;
    int64_t max_alerts, timeout_ms;
};

struct nf_am_opts {
    char *url;
    int64_t timeout_ms;
};

struct nf_receiver;

struct nf_integration {
    enum nf_kind kind;
    size_t index; /* position among the receiver's integrations, names its log entries */
    struct nf_receiver *recv;
    union {
        struct nf_slack_opts slack;
        struct nf_email_opts email;
        struct nf_webhook_opts webhook;
        struct nf_am_opts am;
    } o;
};

struct nf_counters {
    uint64_t sent, failed, retried, rate_limited, silenced;
};

struct nf_receiver {
    char *name;
    struct nf_integration *ints;
    size_t nints;
    int has_am; /* an alertmanager_configs entry: alerts are forwarded, not grouped */
    double rate_per_s;
    int64_t burst;
    int64_t retry_initial_ms, retry_max_ms, retry_attempts;
    /* token bucket */
    double tokens;
    int64_t tokens_at_ms;
    /* requests at once; the others wait in order */
    int64_t max_in_flight;
    size_t in_flight;
    struct nf_job *wait_head, **wait_tail;
    struct nf_counters *c; /* lives in the notifier: survives reloads */
};

struct nf_route {
    char *receiver_name;
    struct nf_receiver *receiver;
    struct nf_matcher *m;
    size_t nm;
    char **group_by;
    size_t ngroup_by;
    int group_all; /* group_by ["..."] */
    int cont;
    int64_t group_wait_ms, group_interval_ms, repeat_interval_ms;
    char *key; /* "{}/{severity=\"crit\"}": the route part of a group key */
    struct nf_route *routes;
    size_t nroutes;
};

struct nf_config {
    char *external_url;
    struct nf_route root;
    struct nf_receiver *receivers;
    size_t nreceivers;
    int refs; /* deliveries in flight keep a replaced configuration alive */
};

/* Parses a routing file's text; origin names it in errors. */
struct nf_config *nf_config_parse(const char *text, size_t len, const char *origin, char *err,
                                  size_t errlen);
struct nf_config *nf_config_load(const char *path, char *err, size_t errlen);
void nf_config_unref(struct nf_config *c);
struct nf_receiver *nf_config_receiver(struct nf_config *c, const char *name);
/* Calls fn for every route the labels reach (Alertmanager's matching with continue). */
void nf_route_match(struct nf_route *root, const struct nf_labels *l,
                    void (*fn)(void *arg, struct nf_route *r), void *arg);

/* ---- state files (file.c) ---- */

/* Queues dir/name's new content for the writer thread (temporary file, fsync, rename, fsync
 * of the directory): no fsync on the loop, where it would hold up every notification. A
 * failure is logged there. 0, or -1 out of memory. */
int nf_write_atomic(const char *dir, const char *name, const void *data, size_t len);
/* Writes what is queued and stops the thread (the notifier's last act). */
void nf_files_close(void);
/* The whole file NUL-terminated (caller frees), or NULL. */
static inline char *nf_read_file(const char *path, size_t *len)
{
    return dsf_read_file(path, len);
}

/* ---- notification log (nflog.c) ---- */

struct nf_log_entry {
    char *key; /* group key, receiver, integration index */
    uint64_t *firing, *resolved;
    size_t nfiring, nresolved;
    int64_t at_ns; /* last successful notification; 0 when none yet */
    int inflight;  /* a delivery for this key is running */
    struct nf_log_entry *next;
};

struct nf_log {
    char *dir;
    struct nf_log_entry **slots;
    size_t nslots, count;
    struct event *sync; /* writes the file NF_LOG_SYNC_MS after the first unsaved change */
    int dirty;
};

/* base may be NULL (tests, fuzzing): the log is then written on every change. */
int nf_log_open(struct nf_log *lg, struct event_base *base, const char *dir, char *err,
                size_t errlen);
/* Writes what is unsaved, then frees. */
void nf_log_close(struct nf_log *lg);
struct nf_log_entry *nf_log_get(struct nf_log *lg, const char *key, int create);
/* Records a successful notification; the file follows within NF_LOG_SYNC_MS. */
int nf_log_record(struct nf_log *lg, struct nf_log_entry *e, const uint64_t *firing, size_t nfiring,
                  const uint64_t *resolved, size_t nresolved, int64_t now_ns);

/* ---- silences (silence.c) ---- */

struct nf_silence {
    char id[37];
    struct nf_matcher *m;
    size_t nm;
    int64_t starts_ns, ends_ns, updated_ns;
    char *created_by, *comment;
};

/* The caps' defaults: the alarm engine's notify.max_silences and max_silence_duration. */
#define NF_SILENCES_MAX 1000
#define NF_SILENCE_MAX_NS (30LL * 86400 * 1000000000)

struct nf_silences {
    char *dir;
    struct nf_silence *v;
    size_t n, cap;
    size_t max;         /* silences kept at most, expired ones included */
    int64_t max_len_ns; /* longest endsAt - startsAt; 0: no limit */
    uint64_t refused_invalid, refused_max, refused_too_long;
};

int nf_silences_open(struct nf_silences *s, const char *dir, char *err, size_t errlen);
void nf_silences_close(struct nf_silences *s);
/* The active silence muting these labels at now, or NULL. */
const struct nf_silence *nf_silences_match(const struct nf_silences *s, const struct nf_labels *l,
                                           int64_t now_ns);
/* Parses Alertmanager's postable silence; returns its id in id (37 bytes): the body's "id"
 * when it has one (replacing the silence of that id, or creating it under it), else a new
 * one. 0, or with
 * err: NF_SILENCE_INVALID (also counted), NF_SILENCE_TOO_LONG or NF_SILENCE_MAX (both
 * counted and naming the limit), NF_SILENCE_OOM. */
enum {
    NF_SILENCE_INVALID = -1,
    NF_SILENCE_TOO_LONG = -2,
    NF_SILENCE_MAX = -3,
    NF_SILENCE_OOM = -4
};
int nf_silences_add_json(struct nf_silences *s, const char *body, size_t len, int64_t now_ns,
                         char *id, char *err, size_t errlen);
int nf_silences_expire(struct nf_silences *s, const char *id, int64_t now_ns);
void nf_silences_json(const struct nf_silences *s, int64_t now_ns, struct dsf_buf *out);

/* ---- alerts as the notifier keeps them (labels.c) ---- */

struct nf_alert {
    struct nf_labels labels, annotations;
    int64_t starts_ns, ends_ns, updated_ms;
    char *generator_url;
    uint64_t fp;
    int one_off; /* see struct alarm_alert */
};

struct nf_alert *nf_alert_copy(const struct alarm_alert *a);
void nf_alert_free(struct nf_alert *a);
static inline int nf_alert_resolved(const struct nf_alert *a)
{
    return a->ends_ns != 0;
}

/* ---- what a receiver renders (alarm/receivers/) ---- */

/* One notification: a group's alerts (already filtered for the integration). */
struct nf_message {
    const char *receiver;
    const char *group_key;
    const struct nf_labels *group_labels;
    struct nf_alert *const *alerts;
    size_t nalerts;
    size_t truncated; /* alerts left out (webhook max_alerts) */
    const char *external_url;
};

void nf_slack_render(const struct nf_slack_opts *o, const struct nf_message *m,
                     struct dsf_buf *out);
void nf_webhook_render(const struct nf_message *m, struct dsf_buf *out);
/* Postable alerts, Alertmanager's POST /api/v2/alerts body. */
void nf_am_render(struct nf_alert *const *alerts, size_t n, struct dsf_buf *out);
/* RFC 5322 message with CRLF line ends. */
void nf_email_render(const struct nf_email_opts *o, const struct nf_message *m, int64_t now_ns,
                     struct dsf_buf *out);
/* Shared text: "[FIRING:3] HighCPU (mci=\"m1\")" and one line per alert. */
void nf_title(const struct nf_message *m, struct dsf_buf *out);
void nf_alert_lines(const struct nf_message *m, const char *eol, struct dsf_buf *out);
size_t nf_count_firing(const struct nf_message *m);

/* ---- SMTP on the event loop (smtp.c): libcurl's multi interface, like common/http_client ---- */

struct nf_smtp;
/* ok, or a failure that is transient (network, 4xx reply) or not (TLS refused, 5xx, auth). */
typedef void (*nf_smtp_done)(void *arg, int ok, int transient, const char *error);
struct nf_smtp *nf_smtp_new(struct event_base *base);
/* The message is copied. 0, or -1 (done is not called). */
int nf_smtp_send(struct nf_smtp *s, const struct nf_email_opts *o, const char *msg, size_t len,
                 nf_smtp_done done, void *arg);
/* Cancels what runs: each done is called once with "cancelled". */
void nf_smtp_free(struct nf_smtp *s);

/* ---- the notifier's state (notify.c, dispatch.c, deliver.c, api.c) ---- */

struct dsf_http_client;

/* Counters per receiver name, kept across reloads. */
struct nf_stats {
    char *receiver;
    struct nf_counters c;
    struct nf_stats *next;
};

struct nf_group {
    char *key; /* Alertmanager's group key: route key ":" group labels */
    struct nf_route *route;
    struct nf_labels labels;
    struct nf_alert **alerts;
    size_t n, cap;
    struct event *timer;
    struct notifier *nf;
    struct nf_group *next;
};

struct nf_job;

/* Alerts waiting to be forwarded to one Alertmanager (sent together on the next loop turn). */
struct nf_am_batch {
    struct nf_integration *in;
    struct nf_alert **alerts;
    size_t n, cap;
    struct nf_am_batch *next;
};

#define NF_GROUP_SLOTS 1024

struct notifier {
    struct event_base *base;
    char *config_path, *state_dir;
    struct nf_config *cfg;
    struct nf_log log;
    struct nf_silences sil;
    struct dsf_http_client *http;
    struct nf_smtp *smtp;
    struct nf_group **groups;
    size_t ngroups;
    struct nf_job *jobs;
    struct nf_am_batch *am;
    struct event *am_timer;
    struct nf_stats *stats;
    uint64_t dropped; /* alerts lost to allocation failures */
    uint64_t reloads_failed;
    int closing;
};

struct nf_counters *nf_stats_for(struct notifier *n, const char *receiver);

/* dispatch.c */
void nf_dispatch_alert(struct notifier *n, const struct nf_alert *a, int count_silenced);
void nf_group_flush(struct nf_group *g, int64_t now_ns);
void nf_groups_free(struct notifier *n);
/* Moves every grouped alert out (for re-routing after a reload); caller frees them. */
struct nf_alert **nf_groups_take_alerts(struct notifier *n, size_t *count);
void nf_groups_remove_silenced(struct notifier *n, int64_t now_ns);
/* forward.c */
int nf_am_queue(struct notifier *n, struct nf_integration *in, const struct nf_alert *a);
void nf_am_flush(struct notifier *n);

/* deliver.c: one notification with its retries; on success the log entry is updated. */
struct nf_delivery {
    struct nf_integration *in;
    const char *log_key; /* NULL: nothing to record (Alertmanager forwarding) */
    const uint64_t *firing, *resolved;
    size_t nfiring, nresolved;
    struct dsf_buf *body; /* taken over */
};
int nf_deliver(struct notifier *n, struct nf_delivery *d);
void nf_jobs_free(struct notifier *n);
size_t nf_jobs_count(const struct notifier *n);

#endif
