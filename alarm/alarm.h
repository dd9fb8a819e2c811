/* damselfly-alarm: its configuration and the one context struct that owns everything. */
#ifndef DSF_ALARM_H
#define DSF_ALARM_H

#include <stddef.h>
#include <stdint.h>

#include "alarm/eval.h"
#include "common/assign_follow.h"
#include "common/buf.h"
#include "common/bus_config.h"
#include "common/config.h"
#include "common/event_store.h"
#include "common/ingest.h"
#include "common/metrics.h"

struct alarm_config {
    char *id;
    char *input; /* mqtt or kafka */
    struct dsf_mqtt_config mqtt;
    struct dsf_kafka_config kafka;
    char *rules_dir;
    int64_t rules_max;        /* rules held at most (files and API) */
    uint64_t rules_max_bytes; /* largest rule body the API takes */
    char *state_dir;
    struct {
        char *config;
        int64_t resend_ms;
        int64_t max_silences, max_silence_ms;
    } notify;
    struct dsf_event_store_config output; /* output.*: the dsf_alarm measurement */
    int64_t history_size;
    int64_t max_series;
    int64_t tick_ms;
    struct dsf_follow_config follow; /* pool, mqtt.follow_assign, heartbeat, assign.max_ahead */
};

extern const struct dsf_cfg_key alarm_config_keys[];
int alarm_config_validate(const struct dsf_cfg_section *secs, const char *origin, char *err,
                          size_t errlen);
struct alarm;
/* Fills a->sections: the engine's keys and the bus groups it takes. */
void alarm_config_sections(struct alarm *a);

/* Counters exported on /metrics; every drop has one. */
struct alarm_stats {
    uint64_t messages, lines_rejected, topics_rejected, wrong_bucket, status_messages,
        status_rejected;
    uint64_t rules_loaded, rules_rejected, reloads, reload_failures;
    uint64_t events, events_published, events_publish_failed;
    struct dsf_event_store_stats store; /* dsf_alarm points */
    uint64_t notifications, state_saves, state_save_failures;
    uint64_t api_rules_max, api_rule_too_large; /* API writes refused by a cap */
    uint64_t unowned;      /* metric messages on a bucket not owned (the overlap of a move) */
    uint64_t series_moved; /* series forgotten because their bucket went to another engine */
};

struct event_base;
struct event;
struct dsf_bus;
struct dsf_http_server;
struct notifier;
struct dsf_event_store;

/* One entry of the history: an event as published. */
struct history {
    char **items; /* JSON texts, a ring */
    size_t cap, head, n;
};

struct alarm {
    struct alarm_config cfg;
    struct dsf_cfg_section sections[11];
    struct dsf_daemon *daemon;
    struct event_base *base;
    struct dsf_bus *bus;
    struct dsf_bus *pub; /* MQTT: events go out on their own connection (see input.c) */
    struct engine *engine;
    struct dsf_http_server *http; /* the daemon's, for the API routes; NULL: no HTTP */
    struct notifier *notifier;
    struct dsf_event_store *store; /* NULL: output.url unset */
    struct dsf_metrics metrics;
    struct alarm_stats stats;
    struct dsf_histogram detect_lag; /* sample timestamp -> its firing event published */
    struct ingest ingest;
    struct history history;
    struct dsf_buf scratch;
    struct event *tick, *save_timer, *resend;
    int state_dirty, save_scheduled;
    int64_t last_save_ms;
    /* Following the balancer (MQTT): buckets owned, heartbeat on dsf/e/{id}/hb, status. */
    struct dsf_follow follow;
    uint64_t hb_samples; /* the engine's samples at the last heartbeat */
    char **rule_errors;  /* the last load's refusals, for the API */
    size_t nrule_errors;
};

/* rules_dir.c: loads every *.json of the rules directory into the engine (bad rules are
 * logged, counted and kept in a->rule_errors; the others load). 0, or -1 when the directory
 * cannot be read (the old rules stay). */
int alarm_load_rules(struct alarm *a);
/* Writes (text != NULL) or deletes the rule file NAME.json atomically. 0 or -1 with err. */
int alarm_write_rule_file(struct alarm *a, const char *name, const char *text, size_t len,
                          char *err, size_t errlen);

/* input.c */
int alarm_input_start(struct alarm *a, char *err, size_t errlen);
/* Commits the evaluated Kafka offsets (before the bus goes). */
void alarm_input_stop(struct alarm *a);

/* events.c: the engine's transition callback, and the notifier's resend. */
void alarm_on_transition(void *arg, const struct rule *r, struct series *s, enum alarm_state from,
                         int from_sev, int64_t ts_ns);
void alarm_resend(struct alarm *a, int64_t now_ms);
void alarm_render_series(struct dsf_buf *out, const struct rule *r, const struct series *s);
void history_free(struct history *h);

/* state.c: atomic save (temp file, fsync, rename) and restore of the alarms' states. */
void alarm_state_dirty(struct alarm *a);
int alarm_state_save(struct alarm *a);
/* Writes what is pending and stops the writer thread. */
void alarm_state_close(struct alarm *a);
int alarm_state_restore(struct alarm *a);
/* api.c */
int alarm_api_start(struct alarm *a, char *err, size_t errlen);
/* The daemon's /metrics and /healthz parts (common/daemon.h). */
void alarm_render_metrics(void *arg, struct dsf_buf *out);
void alarm_health(void *arg, struct dsf_buf *out);

#endif
