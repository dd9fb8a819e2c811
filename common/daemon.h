/*
 * The skeleton every Damselfly daemon runs in. A daemon declares its configuration sections
 * and its start, stop, reload and teardown; the skeleton does the rest the same way for all:
 * the command line (-c, --set, DAMSELFLY_*, --check, --print-routes, --help, --version with
 * the commit), the log level and format (log.level, log.format=json), the event loop and
 * signals (SIGTERM and SIGINT stop, SIGHUP reloads), the HTTP server (http.*: TLS and
 * authentication, a write token by default for routes that change things) with /metrics (the
 * daemon's families, process_* and damselfly_build_info) and /healthz, and an orderly
 * teardown.
 */
#ifndef DSF_DAEMON_H
#define DSF_DAEMON_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/config.h"
#include "common/internal.h"

struct event_base;
struct dsf_daemon;
struct dsf_http_server;
struct dsf_metrics;

/* The HTTP endpoint's keys (http.*), the same in every daemon. */
struct dsf_http_config {
    char *listen, *token, *username, *password, *tls_cert, *tls_key;
    char *auth;       /* "token" or "none" */
    char *token_file; /* the write token's file; "": {state dir}/http.token */
};

struct dsf_daemon_def {
    const char *prog;        /* "damselfly-collector" */
    const char *name;        /* "collector": the daemon label of damselfly_build_info */
    const char *summary;     /* one line for --help */
    const char *usage;       /* DESCRIPTION and EXAMPLES paragraphs for --help */
    const char *http_listen; /* default of http.listen; "" for off */
    /* The key of the daemon's state directory ("state.dir"), where the write token's file
     * goes by default; NULL: none (then a daemon with write routes needs http.token or
     * http.token_file). */
    const char *state_dir_key;
    /* The write token guards reads too (not /healthz): a daemon whose reads show the fleet. */
    int token_for_reads;
    /* The daemon's own sections (its keys and the shared groups it takes), ending with a
     * NULL keys pointer. The skeleton adds log.* and http.*. */
    const struct dsf_cfg_section *sections;
    int (*validate)(const struct dsf_cfg_section *secs, const char *origin, char *err,
                    size_t errlen);
    /* --check: loads everything start would load (rules, routing files), binding and
     * connecting nothing. 0, or -1 with err. NULL: the configuration check is all. */
    int (*check)(void *ctx, char *err, size_t errlen);
    /* Reads the configuration, binds, connects and adds its HTTP routes. 0, or the exit
     * status (1 runtime failure, 2 configuration) after logging why. */
    int (*start)(void *ctx, struct dsf_daemon *d);
    /* SIGTERM/SIGINT: begins an orderly stop and calls dsf_daemon_exit when done (a second
     * signal exits at once). NULL: exit at once. */
    void (*stop)(void *ctx);
    /* SIGHUP: reloads what can be reloaded and logs what cannot. NULL: logs that a restart
     * is needed to apply configuration changes. */
    void (*reload)(void *ctx);
    /* After the loop, also after a failed start: frees everything start allocated. */
    void (*fini)(void *ctx);
    struct dsf_metrics *(*metrics)(void *ctx);              /* its self-metrics, or NULL */
    void (*render_metrics)(void *ctx, struct dsf_buf *out); /* other families, or NULL */
    /* dsf_internal (common/internal.h): &dsf_internal_hooks, and where the counters go by
     * default and this instance's id, asked once after start. NULL: the daemon writes no
     * dsf_internal and has no internal.* keys. */
    const struct dsf_internal_hooks *internal;
    void (*internal_target)(void *ctx, struct dsf_internal_target *t);
    /* Fields of the /healthz JSON object after "status":"ok", each starting with a comma. */
    void (*health)(void *ctx, struct dsf_buf *out);
    void *ctx;
};

/* Runs the daemon; returns the process exit status. */
int dsf_daemon_main(const struct dsf_daemon_def *def, int argc, char **argv);

struct event_base *dsf_daemon_base(const struct dsf_daemon *d);
/* The HTTP server for the daemon's own routes; NULL when http.listen is empty. */
struct dsf_http_server *dsf_daemon_http(const struct dsf_daemon *d);
const struct dsf_http_config *dsf_daemon_http_config(const struct dsf_daemon *d);
/* Ends the loop: the orderly stop is done. */
void dsf_daemon_exit(struct dsf_daemon *d);
/* Ends the loop once idle(arg) says nothing is left to hand over, checked every poll_ms, or
 * after at most limit_ms: the end of a stop that drains what the daemon holds. */
void dsf_daemon_exit_when_idle(struct dsf_daemon *d, int (*idle)(void *arg), void *arg,
                               int64_t limit_ms, int64_t poll_ms);

/* An empty id key (*id == "") becomes the host name, or fallback without one. */
void dsf_daemon_default_id(char **id, const char *fallback);

/* The build_info and process_* families (for an exporter that renders its own page). */
void dsf_daemon_render_self(const char *name, struct dsf_buf *out);

#endif
