/* The controller's state, shared by its files (control.h names them). */
#ifndef DSF_CONTROL_IMPL_H
#define DSF_CONTROL_IMPL_H

#include "common/metrics.h"
#include "control/control.h"
#include "control/output.h"

struct audit;
struct dsf_bus;
struct dsf_bus_message;
struct dsf_daemon;
struct ondemand;
struct dsf_http_client;
struct event;
struct event_base;
struct fed_store;

struct handled_key {
    struct dsf_hlink link;
    char key[];
};

struct control_stats {
    uint64_t events[4];     /* bus, alertmanager, reconcile, manual */
    uint64_t rejected[4];   /* the same inputs: could not be parsed */
    uint64_t duplicates;    /* occurrences acted on already */
    uint64_t unmatched;     /* events no policy matches */
    uint64_t verdicts[4];   /* run, dry_run, approval, blocked */
    uint64_t blocked[10];   /* by enum guard_block */
    uint64_t calls[11];     /* federation and webhook calls by enum policy_action */
    uint64_t call_failures; /* calls that failed */
    uint64_t healed, exhausted, cancelled;
    uint64_t record_failures; /* audit appends that failed */
    uint64_t status_rejected; /* agent status messages that were no status */
    uint64_t webhook_too_large;
    uint64_t queries[4];             /* monitoring queries by result (control/query.c) */
    uint64_t console_logins[2];      /* web console logins: ok, refused (control/console.c) */
    struct dsf_histogram decision_s; /* alarm event received -> federation call begun */
    /* proxied alarm API requests (control/alarm_proxy.c): ok, partial, failed, refused */
    uint64_t proxy[4];
    uint64_t proxy_engine_errors; /* an engine's part of one that failed */
};

#define CTL_COLLECTORS_MAX 256

struct control {
    struct control_config cfg;
    struct dsf_cfg_section sections[24];
    size_t ndriver_sections, ndriver_sections_at;
    struct dsf_daemon *daemon;
    struct event_base *base;
    struct audit *audit;
    struct policy_set policies;
    struct dsf_metrics metrics;
    struct control_stats stats;
    struct guards *guards;
    struct fleet *fleet;
    struct executor *exec;
    struct dsf_bus *bus;
    struct dsf_bus *pub; /* records out on their own connection: receiving stays prompt */
    int bus_up;
    int reconciled; /* the engines' active alarms were read (at the first connect) */
    struct ctl_output_config out_cfg;
    struct ctl_output *out;
    struct dsf_http_client *http;
    struct ondemand *ondemand;
    char **engine_auth; /* per alarm engine: its Authorization header, or NULL */
    struct event *tick;
    /* actions: by id, and a list newest first */
    struct dsf_htab actions;
    struct ctl_action *action_list;
    size_t nactions;
    uint64_t next_action;
    struct dsf_htab handled;
    struct {
        char id[64];
        int64_t last_ms;
        int online;
    } collectors[CTL_COLLECTORS_MAX];
    size_t ncollectors;
    int replaying;
    int paused_replayed;
    struct console_sessions *console; /* the web console's sessions (control/console.c) */
};

uint64_t ctl_hash(const char *s);
struct evhttp_request;
struct qp_request;
/* On-demand collection (control/ondemand.c): a checked request of the two on-demand forms,
 * answered once the agents did or the timeout passed. */
void ctl_ondemand_serve(struct control *c, struct evhttp_request *req, const struct qp_request *r);
/* A malformed on-demand request (400) counted. */
void ctl_ondemand_refused(struct control *c);
/* An answer on dsf/a/+/+/+/reply/control/#. */
void ctl_ondemand_reply(struct control *c, const struct dsf_bus_message *m);
int ctl_ondemand_start(struct control *c);
/* Pending requests dropped (their HTTP requests went with the server). */
void ctl_ondemand_free(struct control *c);
/* An MCI of the model as GET /api/v1/mci lists it: ns, mci, status (Tumblebug's string), vms. */
struct fed_mci;
json_t *ctl_mci_summary(const char *ns, const char *id, const struct fed_mci *m);
/* fn's object for every MCI of the model, as an array. */
typedef json_t *(*ctl_mci_fn)(struct control *c, const char *ns, const char *id,
                              const struct fed_mci *m);
json_t *ctl_mci_each(struct control *c, ctl_mci_fn fn);
/* Answers with o (taken) as compact JSON. */
void ctl_reply_json(struct evhttp_request *req, int code, json_t *o);
/* The web console (control/console.c) and its overview (control/overview.c): routes. */
struct dsf_http_server;
int ctl_console_register(struct control *c, struct dsf_http_server *h);
void ctl_console_free(struct control *c);
int ctl_overview_register(struct control *c, struct dsf_http_server *h);
void control_add_metrics(struct control *c);
/* Re-evaluates the storm breaker now (after every health change): a storm's decisions must
 * meet an open breaker, not wait for the next second. */
void ctl_breaker_tick(struct control *c);
int64_t ctl_wall_ms(void);

/* control/alarm_proxy.c: the alarm engines' API through the controller. */
struct dsf_http_server;
int ctl_alarm_proxy_register(struct control *c, struct dsf_http_server *h);
/* damselfly_control_alarm_proxy_* in the controller's /metrics. */
void ctl_alarm_proxy_add_metrics(struct control *c);
/* alarm.token_files fits alarm.engines: 0, or -1 with err naming the key. */
int ctl_alarm_proxy_validate(const struct control_config *cfg, const char *origin, char *err,
                             size_t errlen);
/* Reads the engines' tokens (c->engine_auth). 0, or -1 with err naming the file. */
int ctl_alarm_proxy_open(struct control *c, char *err, size_t errlen);
void ctl_alarm_proxy_close(struct control *c);

#endif
