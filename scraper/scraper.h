/*
 * damselfly-scraper (docs/scraper.md): pulls Prometheus exposition endpoints (exporters) and
 * the agents' line-protocol snapshots (pull mode) and publishes what it pulls on each VM's
 * own metrics topic, with the VM's retained status, as the VM's agent would. One struct
 * scraper owns everything; everything runs on the loop thread.
 *
 *   config.c        the key table
 *   targets.c       the target set: sources merged by identity, one timer per target
 *   targets_file.c  the file_sd JSON file
 *   targets_fed.c   the federation model's pull and exporter VMs
 *   fetch.c         one HTTP GET per scrape through libcurl on the loop
 *   credentials.c   the bearer token or basic auth exporter targets are asked with
 *   convert.c       a scraped body to line protocol (exposition text or checked lines)
 *   publish.c       the bus: metrics in capped messages, the statuses on the VMs' behalf
 *   metrics.c       /metrics and /healthz
 */
#ifndef DSF_SCRAPER_H
#define DSF_SCRAPER_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/bus_config.h"
#include "common/config.h"
#include "common/http.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/topic.h"

struct dsf_bus;
struct dsf_daemon;
struct dsf_curl_loop;
struct event;
struct event_base;
struct lp_line;
struct curl_slist;

struct scraper_config {
    char *id;
    char *output; /* "mqtt" or "kafka" */
    char *targets_file, *federation_dir, *agent_token_file, *tls_ca;
    char *exporter_token_file, *exporter_username, *exporter_password_file;
    int tls_insecure;
    int64_t interval_ms, timeout_ms, refresh_ms, max_failures;
    uint64_t max_body_bytes, max_message_bytes;
    struct dsf_mqtt_config mqtt;
    struct dsf_kafka_config kafka;
};

enum scrape_mode { SCRAPE_EXPORTER, SCRAPE_PULL };
enum scrape_source { SOURCE_FILE = 1, SOURCE_FED = 2 };
enum target_state { TARGET_PENDING, TARGET_UP, TARGET_DOWN, TARGET_STATES };

enum scrape_result {
    SCRAPE_OK,
    SCRAPE_TIMEOUT,
    SCRAPE_HTTP_ERROR,
    SCRAPE_REFUSED,
    SCRAPE_TOO_LARGE,
    SCRAPE_TLS, /* no TLS session: the certificate not trusted, or the handshake failed */
    SCRAPE_ERROR,
    SCRAPE_RESULTS
};

enum sample_reject {
    REJECT_PARSE,    /* the exposition parser refused the line */
    REJECT_RENDER,   /* NaN, infinities, a name line protocol cannot carry */
    REJECT_LP,       /* a pulled line that is not line protocol */
    REJECT_TOO_LONG, /* a line longer than a whole message */
    REJECT_LABELS,   /* more labels than a sample may carry once the target's are added */
    REJECT_REASONS
};

#define TARGET_LABELS_MAX 16

struct scrape_target {
    struct scrape_target *next;
    struct dsf_identity id;
    char key[200]; /* "ns/mci/vm": the bus key and the bucket hash input */
    char *url;
    enum scrape_mode mode;
    unsigned sources, seen; /* enum scrape_source bits: who lists it, who listed it this pass */
    char *label_names[TARGET_LABELS_MAX], *label_values[TARGET_LABELS_MAX];
    size_t nlabels;
    char metrics_topic[300], status_topic[300];
    char boot[17]; /* this target's run, as an agent's boot: the status's "boot" */
    enum target_state state;
    int64_t failures;           /* consecutive */
    struct event *timer;        /* the next scrape */
    void *easy;                 /* the transfer in flight (CURL *), or NULL */
    struct curl_slist *headers; /* its Accept and Authorization headers, or NULL */
    struct dsf_buf body;        /* the body being received */
    int body_too_large;
    int64_t started_ns, started_ms;
    struct scraper *owner;
};

struct scraper_stats {
    uint64_t scrapes[SCRAPE_RESULTS];
    uint64_t samples_in, rejected[REJECT_REASONS];
    uint64_t lines_published, messages_published, messages_delivered;
    uint64_t publish_failed_lines, publish_failed_messages;
    uint64_t status_changes, targets_refused, sources_failed;
};

struct scraper {
    struct scraper_config cfg;
    struct dsf_cfg_section sections[12];
    struct dsf_daemon *daemon;
    struct event_base *base;
    struct dsf_bus *bus;
    struct dsf_curl_loop *curl;
    struct event *file_timer, *fed_timer;
    struct scrape_target *targets;
    char token_header[300];         /* "Authorization: Bearer ..." for pull targets, or "" */
    char exporter_auth_header[300]; /* the same for exporter targets, or "" */
    char exporter_password[DSF_HTTP_TOKEN_MAX + 1]; /* basic auth's, with exporter_username */
    char self_topic[300], self_online[300], self_offline[300];
    /* The targets file as last applied: a change of any of these rereads it. */
    int64_t file_mtime_ns, file_size, file_ino;
    int file_seen;
    uint32_t buckets;
    int kafka; /* output=kafka: metrics only, no statuses (as Kafka agents) */
    uint64_t next_token;
    struct dsf_buf message; /* the message being filled */
    size_t message_lines;
    struct lp_line *line; /* lp_check_line's scratch: large, so not on the stack */
    struct dsf_histogram duration;
    struct dsf_log_limit fail_warn, reject_warn, publish_warn, token_warn;
    struct scraper_stats stats;
    struct dsf_metrics metrics;
};

extern const struct dsf_cfg_key scraper_config_keys[];
extern const struct dsf_cfg_key scraper_mqtt_keys[];
int scraper_config_validate(const struct dsf_cfg_section *secs, const char *origin, char *err,
                            size_t errlen);

/* targets.c: a source lists its targets between begin and end; what it no longer lists is
 * dropped at end (with its status cleared when no other source lists it). */
struct target_spec {
    const char *ns, *mci, *vm, *url;
    enum scrape_mode mode;
    const char *const *label_names, *const *label_values;
    size_t nlabels;
};
void targets_begin(struct scraper *s, enum scrape_source src);
/* 0, or -1 with why (a bad identity, one listed twice, out of memory). */
int targets_add(struct scraper *s, enum scrape_source src, const struct target_spec *t, char *why,
                size_t cap);
void targets_end(struct scraper *s, enum scrape_source src);
void targets_free(struct scraper *s);
size_t targets_count(const struct scraper *s, enum target_state st);
void target_scraped(struct scrape_target *t, enum scrape_result r, const char *detail);
/* The label values of result (damselfly_scraper_scrapes_total{result}). */
extern const char *const scrape_result_names[SCRAPE_RESULTS];

/* targets_file.c / targets_fed.c */
void targets_file_check(struct scraper *s);
void targets_fed_refresh(struct scraper *s);
/* Reads scrape.agent_token_file again (the federation may write it after the start). */
void scraper_token_refresh(struct scraper *s);

/* credentials.c: load fails the start (-1 with err); reload (SIGHUP) keeps the old secrets
 * when a file cannot be read; apply adds them to an exporter's transfer (-1: no memory). */
int credentials_load(struct scraper *s, char *err, size_t errlen);
void credentials_reload(struct scraper *s);
int credentials_apply(const struct scraper *s, void *easy, struct curl_slist **headers);

/* fetch.c */
int fetch_init(struct scraper *s, char *err, size_t errlen);
int fetch_start(struct scrape_target *t);
void fetch_cancel(struct scrape_target *t);
void fetch_free(struct scraper *s);

/* convert.c: the body of a good scrape to the target's messages; returns the lines taken. */
size_t convert_body(struct scrape_target *t, const char *body, size_t len);

/* publish.c */
int publish_start(struct scraper *s, char *err, size_t errlen);
void publish_line(struct scrape_target *t, const char *line, size_t len);
void publish_flush(struct scrape_target *t);
/* The target's retained status as its state says (online, offline; cleared when removed). */
void publish_status(struct scrape_target *t, int cleared);
void publish_stop(struct scraper *s);

/* metrics.c */
void scraper_add_metrics(struct scraper *s);

#endif
