#define DSF_MODULE "daemon"
#include "common/daemon.h"
#include "common/http.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/metrics.h"

#include <event2/event.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct dsf_log_config {
    char *level, *format;
};

struct dsf_daemon {
    const struct dsf_daemon_def *def;
    struct dsf_cfg_section *sections;
    struct dsf_log_config log;
    struct dsf_http_config http;
    struct dsf_internal_config internal;
    struct dsf_internal *internal_writer;
    const char *http_defaults[2];
    char http_listen_default[300];
    struct event_base *base;
    struct dsf_http_server *server;
    struct dsf_buf reply; /* /metrics and /healthz bodies, reused from one request to the next */
    int stopping;
    int print_routes;    /* --print-routes: print them after start, then exit */
    struct event *drain; /* dsf_daemon_exit_when_idle's check */
    int (*idle)(void *);
    void *idle_arg;
    int64_t drain_deadline_ms;
};

#define L(field) offsetof(struct dsf_log_config, field)
#define H(field) offsetof(struct dsf_http_config, field)

static const struct dsf_cfg_key log_keys[] = {
    {"level", DSF_CFG_STR, "info", L(level), "error, warn, info or debug", 0, 0},
    {"format", DSF_CFG_STR, "text", L(format),
     "text, or json: one object per line with time, level, module and msg", 0, 0},
    DSF_CFG_END,
};

/* The name the daemons had before log.level; kept so existing configurations still load. */
static const struct dsf_cfg_key log_level_alias[] = {
    {"log_level", DSF_CFG_STR, NULL, L(level), "older name of log.level", 0, 0},
    DSF_CFG_END,
};

static const struct dsf_cfg_key http_keys[] = {
    {"listen", DSF_CFG_LISTEN, "", H(listen),
     "HTTP address (/metrics, /healthz, the API); empty: off", 0, 0},
    {"token", DSF_CFG_STR, "", H(token),
     "require this bearer token on every request (but /healthz); empty: see http.auth", 0, 0},
    {"username", DSF_CFG_STR, "", H(username),
     "require basic auth with this user on every request (but /healthz)", 0, 0},
    {"password", DSF_CFG_STR, "", H(password), "basic auth password", 0, 0},
    {"auth", DSF_CFG_STR, "token", H(auth),
     "without http.token and http.username: token (GET and HEAD are open; POST, PUT, PATCH and "
     "DELETE need 'Authorization: Bearer' with the token of http.token_file) or none (no "
     "authentication at all; warned at start)",
     0, 0},
    {"token_file", DSF_CFG_STR, "", H(token_file),
     "the write token's file, created (mode 0600, a random token) at the first start and read "
     "at the next; empty: http.token in the state directory (state.dir) of a daemon that has "
     "one; only a daemon with routes that change things (the alarm engine's API) uses it",
     0, 0},
    {"tls_cert", DSF_CFG_FILE, "", H(tls_cert), "serve HTTPS with this certificate (PEM)", 0, 0},
    {"tls_key", DSF_CFG_FILE, "", H(tls_key), "private key for http.tls_cert (PEM)", 0, 0},
    DSF_CFG_END,
};

/* The daemon whose configuration dsf_cli is checking: its validate takes no context. */
static const struct dsf_daemon *validating;

static int build_sections(struct dsf_daemon *d)
{
    const struct dsf_daemon_def *def = d->def;
    size_t n = 0;
    while (def->sections[n].keys)
        n++;
    if (!(d->sections = calloc(n + 6, sizeof(*d->sections))))
        return -1;
    memcpy(d->sections, def->sections, n * sizeof(*d->sections));
    snprintf(d->http_listen_default, sizeof(d->http_listen_default), "listen=%s",
             def->http_listen ? def->http_listen : "");
    d->http_defaults[0] = d->http_listen_default;
    d->sections[n++] = (struct dsf_cfg_section){"log", log_keys, &d->log, NULL};
    d->sections[n++] = (struct dsf_cfg_section){"", log_level_alias, &d->log, NULL};
    d->sections[n++] = (struct dsf_cfg_section){"http", http_keys, &d->http, d->http_defaults};
    if (def->internal)
        d->sections[n++] =
            (struct dsf_cfg_section){"internal", def->internal->keys, &d->internal, NULL};
    return 0;
}

/* The skeleton's own keys, then the daemon's whole-config check. */
static int validate(const struct dsf_cfg_section *secs, const char *origin, char *err,
                    size_t errlen)
{
    const struct dsf_log_config *log = &validating->log;
    const struct dsf_http_config *http = &validating->http;
    enum dsf_log_level level;
    enum dsf_log_format format;
    if (dsf_log_parse_level(log->level, &level)) {
        snprintf(err, errlen, "%s: key 'log.level': expected error, warn, info or debug, got '%s'",
                 origin, log->level);
        return -1;
    }
    if (dsf_log_parse_format(log->format, &format)) {
        snprintf(err, errlen, "%s: key 'log.format': expected text or json, got '%s'", origin,
                 log->format);
        return -1;
    }
    if (*http->tls_cert && !*http->tls_key) {
        snprintf(err, errlen, "%s: key 'http.tls_key' is required with http.tls_cert", origin);
        return -1;
    }
    if (strcmp(http->auth, "token") != 0 && strcmp(http->auth, "none") != 0) {
        snprintf(err, errlen, "%s: key 'http.auth': expected token or none, got '%s'", origin,
                 http->auth);
        return -1;
    }
    if (strcmp(http->auth, "none") == 0 && (*http->token || *http->username)) {
        snprintf(err, errlen,
                 "%s: key 'http.auth': none contradicts http.%s, which turns authentication on",
                 origin, *http->token ? "token" : "username");
        return -1;
    }
    const struct dsf_daemon_def *def = validating->def;
    return def->validate ? def->validate(secs, origin, err, errlen) : 0;
}

static void on_stop(void *arg)
{
    struct dsf_daemon *d = arg;
    if (d->stopping++ || !d->def->stop) {
        log_info("%s", d->stopping > 1 ? "second stop signal: exiting now" : "stopping");
        event_base_loopbreak(d->base);
        return;
    }
    d->def->stop(d->def->ctx);
}

static void on_hup(void *arg)
{
    struct dsf_daemon *d = arg;
    if (d->def->reload)
        d->def->reload(d->def->ctx);
    else
        log_info("SIGHUP: %s reloads nothing; restart it to apply configuration changes",
                 d->def->prog);
}

/* The /metrics page, also what dsf_internal writes into the store. */
static void render_page(void *arg, struct dsf_buf *out)
{
    struct dsf_daemon *d = arg;
    const struct dsf_daemon_def *def = d->def;
    if (def->render_metrics)
        def->render_metrics(def->ctx, out);
    if (def->metrics)
        metrics_render(def->metrics(def->ctx), out);
    if (d->server)
        dsf_http_render_metrics(d->server, out);
    if (d->internal_writer)
        def->internal->render_metrics(d->internal_writer, out);
    dsf_daemon_render_self(def->name, out);
}

static void serve_metrics(struct evhttp_request *req, void *arg)
{
    struct dsf_daemon *d = arg;
    struct dsf_buf *out = &d->reply;
    if (!dsf_http_only_get(req))
        return;
    buf_reset(out);
    render_page(d, out);
    dsf_http_reply(req, out->oom ? 500 : 200, "text/plain; version=0.0.4; charset=utf-8", out->data,
                   out->len);
}

static void serve_health(struct evhttp_request *req, void *arg)
{
    struct dsf_daemon *d = arg;
    struct dsf_buf *out = &d->reply;
    buf_reset(out);
    buf_puts(out, "{\"status\":\"ok\"");
    if (d->def->health)
        d->def->health(d->def->ctx, out);
    buf_puts(out, "}\n");
    dsf_http_reply(req, 200, "application/json", out->data, out->len);
}

static int start_http(struct dsf_daemon *d)
{
    const struct dsf_http_config *h = &d->http;
    if (!*h->listen)
        return 0;
    struct dsf_http_options opt = {
        .listen = h->listen,
        .tls_cert = h->tls_cert,
        .tls_key = h->tls_key,
        .bearer_token = h->token,
        .basic_user = h->username,
        .basic_pw = h->password,
        .open_writes = strcmp(h->auth, "none") == 0,
    };
    char err[512];
    if (!(d->server = dsf_http_new(d->base, &opt, err, sizeof(err)))) {
        log_error("http.listen: %s", err);
        return -1;
    }
    dsf_http_route(d->server, "/metrics", serve_metrics, d, 0);
    dsf_http_route(d->server, "/healthz", serve_health, d, DSF_HTTP_PUBLIC);
    log_info("serving HTTP on %s%s", h->listen, *h->tls_cert ? " (TLS)" : "");
    if (opt.open_writes)
        log_warn("http.auth=none: anyone who reaches %s may use every route, also those that "
                 "change things",
                 h->listen);
    return 0;
}

/* Where the write token lives: http.token_file, else in the state directory. 0, or -1 when
 * the daemon has neither. */
static int token_path(const struct dsf_daemon *d, char *out, size_t cap)
{
    const char *dir =
        d->def->state_dir_key ? dsf_cfg_str(d->sections, d->def->state_dir_key) : NULL;
    if (*d->http.token_file)
        snprintf(out, cap, "%s", d->http.token_file);
    else if (dir && *dir)
        snprintf(out, cap, "%s/http.token", dir);
    else
        return -1;
    return 0;
}

/* Once the daemon's routes are in: those that change things need the token of the token
 * file, unless http.token or basic auth guards everything or http.auth is none. */
static int setup_write_token(struct dsf_daemon *d)
{
    const struct dsf_http_config *h = &d->http;
    if (!d->server || !dsf_http_has_write_routes(d->server) || *h->token || *h->username ||
        strcmp(h->auth, "none") == 0)
        return 0;
    char path[4096], token[DSF_HTTP_TOKEN_MAX + 1], err[DSF_CFG_ERRLEN + 4096];
    int created;
    if (token_path(d, path, sizeof(path))) {
        log_error("http: the API's writes need a token: set http.token_file or http.token");
        return 2;
    }
    if (dsf_http_token_file(path, token, &created, err, sizeof(err))) {
        log_error("http.token_file: %s", err);
        return 2;
    }
    if (dsf_http_set_write_token(d->server, token)) {
        log_error("http: out of memory");
        return 1;
    }
    if (d->def->token_for_reads)
        dsf_http_token_for_reads(d->server);
    struct stat st;
    if (stat(path, &st) == 0 && (st.st_mode & 077))
        log_warn("http.token_file %s may be read by others (mode %04o): chmod 600 it", path,
                 (unsigned)(st.st_mode & 07777));
    log_info("HTTP %s need 'Authorization: Bearer TOKEN' with the token in %s (%s)",
             d->def->token_for_reads ? "requests (but /healthz)"
                                     : "writes (POST, PUT, PATCH, DELETE)",
             path, created ? "created now" : "kept from an earlier start");
    return 0;
}

static void apply_log_config(const struct dsf_log_config *c)
{
    enum dsf_log_level level;
    enum dsf_log_format format;
    if (dsf_log_parse_level(c->level, &level) == 0)
        dsf_log_set_default_level(level);
    if (dsf_log_parse_format(c->format, &format) == 0)
        dsf_log_set_format(format);
}

static int start_internal(struct dsf_daemon *d)
{
    const struct dsf_daemon_def *def = d->def;
    if (!def->internal)
        return 0;
    struct dsf_internal_target t = {0};
    if (def->internal_target)
        def->internal_target(def->ctx, &t);
    char err[512];
    d->internal_writer = def->internal->create(d->base, &d->internal, def->name, &t, render_page, d,
                                               err, sizeof(err));
    if (!d->internal_writer && *err) {
        log_error("%s", err);
        return 1;
    }
    if (!d->internal_writer && d->internal.interval_ms)
        log_info("no InfluxDB output: dsf_internal is off (set internal.url to write it)");
    return 0;
}

/* --print-routes: what start registered, without the write token or the loop, so that
 * nothing is served and no token file is made. */
static int print_routes(struct dsf_daemon *d)
{
    if (!d->server) {
        fprintf(stderr, "%s: --print-routes: http.listen is empty: no HTTP server\n", d->def->prog);
        return 2;
    }
    dsf_http_print_routes(d->server, stdout);
    return fflush(stdout) == 0 ? 0 : 1;
}

static int run(struct dsf_daemon *d)
{
    const struct dsf_daemon_def *def = d->def;
    d->base = dsf_loop_new();
    if (!d->base || dsf_loop_on_signals(d->base, on_stop, on_hup, d)) {
        log_error("cannot create the event loop");
        return 1;
    }
    if (start_http(d))
        return 1;
    int rc = def->start(def->ctx, d);
    if (rc == 0 && d->print_routes)
        return print_routes(d);
    if (rc == 0)
        rc = setup_write_token(d);
    if (rc == 0)
        rc = start_internal(d);
    if (rc == 0) {
        log_info("%s %s started", def->prog, dsf_version_string());
        event_base_dispatch(d->base);
    }
    return rc;
}

int dsf_daemon_main(const struct dsf_daemon_def *def, int argc, char **argv)
{
    struct dsf_daemon d = {.def = def};
    if (build_sections(&d)) {
        fprintf(stderr, "%s: out of memory\n", def->prog);
        return 1;
    }
    validating = &d;
    const struct dsf_cli cli = {
        .prog = def->prog,
        .summary = def->summary,
        .usage = def->usage,
        .sections = d.sections,
        .validate = validate,
        .check = def->check,
        .check_arg = def->ctx,
        .print_routes = &d.print_routes,
    };
    int rc = dsf_cli_parse(&cli, argc, argv);
    if (rc == 0) {
        apply_log_config(&d.log);
        rc = run(&d);
        dsf_http_free(d.server); /* no request reaches a daemon being torn down */
        if (d.internal_writer)   /* before fini: it renders the daemon's metrics */
            def->internal->destroy(d.internal_writer);
        if (def->fini)
            def->fini(def->ctx);
        if (d.drain)
            event_free(d.drain);
        if (d.base)
            event_base_free(d.base);
    } else if (rc == 1) {
        rc = 0; /* --help, --version, --check passed */
    }
    buf_free(&d.reply);
    dsf_cfg_free(d.sections);
    free(d.sections);
    return rc;
}

struct event_base *dsf_daemon_base(const struct dsf_daemon *d)
{
    return d->base;
}

struct dsf_http_server *dsf_daemon_http(const struct dsf_daemon *d)
{
    return d->server;
}

const struct dsf_http_config *dsf_daemon_http_config(const struct dsf_daemon *d)
{
    return &d->http;
}

void dsf_daemon_exit(struct dsf_daemon *d)
{
    event_base_loopbreak(d->base);
}

static void check_drained(evutil_socket_t fd, short what, void *arg)
{
    struct dsf_daemon *d = arg;
    if (d->idle(d->idle_arg) || dsf_mono_ms() > d->drain_deadline_ms)
        dsf_daemon_exit(d);
}

void dsf_daemon_exit_when_idle(struct dsf_daemon *d, int (*idle)(void *arg), void *arg,
                               int64_t limit_ms, int64_t poll_ms)
{
    d->idle = idle;
    d->idle_arg = arg;
    d->drain_deadline_ms = dsf_mono_ms() + limit_ms;
    if (!d->drain && !(d->drain = event_new(d->base, -1, EV_PERSIST, check_drained, d))) {
        dsf_daemon_exit(d);
        return;
    }
    struct timeval tv = {(time_t)(poll_ms / 1000), (suseconds_t)(poll_ms % 1000 * 1000)};
    event_add(d->drain, &tv);
}

void dsf_daemon_default_id(char **id, const char *fallback)
{
    if (**id)
        return;
    char host[256];
    if (gethostname(host, sizeof(host) - 1) != 0 || !*host)
        snprintf(host, sizeof(host), "%s", fallback);
    host[sizeof(host) - 1] = '\0';
    char *copy = strdup(host);
    if (copy) {
        free(*id);
        *id = copy;
    }
}
