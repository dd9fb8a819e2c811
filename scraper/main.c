/*
 * damselfly-scraper (docs/scraper.md): the daemon's definition for the skeleton
 * (common/daemon.h), its start, its timers and its teardown.
 */
#define DSF_MODULE "scraper"
#include "common/bus.h"
#include "common/daemon.h"
#include "common/http.h"
#include "common/lp.h"
#include "scraper/scraper.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "DESCRIPTION\n"
    "  Agentless and pull-mode monitoring. Scrapes Prometheus exposition endpoints\n"
    "  (node_exporter, windows_exporter, any exporter) and the agents' snapshot API\n"
    "  (/api/v1/snapshot?format=lp, for agents with push off) every scrape.interval, and\n"
    "  publishes what it pulls as each VM's agent would: its lines on the VM's metrics topic\n"
    "  dsf/m/{bucket}/{ns}/{mci}/{vm} (format lp; exporter samples as InfluxDB's Prometheus\n"
    "  converter maps them, agents' lines as they came, with their own timestamps), and the\n"
    "  VM's retained status on dsf/a/{ns}/{mci}/{vm}/status: online at its first good scrape,\n"
    "  offline after scrape.max_failures failed ones, cleared when the target is removed.\n"
    "  Collectors, alarm rules (agent_offline, deadman) and healing policies then work\n"
    "  unchanged for VMs that push nothing. Targets come from scrape.targets_file\n"
    "  (Prometheus file_sd JSON, labels ns, mci and vm required), from the federation's VMs\n"
    "  labelled for pull or exporter monitoring (scrape.federation_dir), or both; SIGHUP\n"
    "  rereads both at once. Its own status (with a Last Will) is on\n"
    "  dsf/scraper/{id}/status.\n"
    "\n"
    "EXAMPLES\n"
    "  damselfly-scraper --set mqtt.url=tcp://127.0.0.1:1883 \\\n"
    "      --set scrape.targets_file=/etc/damselfly/scrape-targets.json\n"
    "  damselfly-scraper --set scrape.federation_dir=/var/lib/damselfly/federation \\\n"
    "      --set scrape.agent_token_file=/etc/damselfly/agent-api.token --check\n";

static void on_file_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    targets_file_check(arg);
}

static void on_fed_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    targets_fed_refresh(arg);
}

static int add_timer(struct scraper *s, struct event **ev, event_callback_fn fn, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000 * 1000)};
    *ev = event_new(s->base, -1, EV_PERSIST, fn, s);
    return *ev && event_add(*ev, &tv) == 0 ? 0 : -1;
}

/* A pull target without the token is answered 401 (result http_error): logged, not fatal,
 * since the federation writes the file when it creates the first pull VM. */
void scraper_token_refresh(struct scraper *s)
{
    char token[DSF_HTTP_TOKEN_MAX + 1], why[400];
    if (!*s->cfg.agent_token_file)
        return;
    if (dsf_http_token_read(s->cfg.agent_token_file, token, why, sizeof(why)) < 0) {
        uint64_t held_back;
        if (dsf_log_due(&s->token_warn, &held_back))
            log_warn("scrape.agent_token_file: %s: pull targets are asked without a token", why);
        s->token_header[0] = '\0';
        return;
    }
    snprintf(s->token_header, sizeof(s->token_header), "Authorization: Bearer %s", token);
}

static int start(void *ctx, struct dsf_daemon *d)
{
    static const double duration_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                             0.5,   1,    2.5,   5,    10};
    struct scraper *s = ctx;
    char err[1024];
    s->daemon = d;
    s->base = dsf_daemon_base(d);
    s->buckets = (uint32_t)s->cfg.mqtt.buckets_total;
    dsf_daemon_default_id(&s->cfg.id, "scraper");
    s->line = malloc(sizeof(*s->line));
    if (!s->line || dsf_histogram_init(&s->duration, duration_bounds,
                                       sizeof(duration_bounds) / sizeof(*duration_bounds)) < 0) {
        log_error("out of memory");
        return 1;
    }
    scraper_add_metrics(s);
    if (credentials_load(s, err, sizeof(err)) < 0 || fetch_init(s, err, sizeof(err)) < 0 ||
        publish_start(s, err, sizeof(err)) < 0) {
        log_error("%s", err);
        return 1;
    }
    if (add_timer(s, &s->file_timer, on_file_timer, 1000) < 0 ||
        add_timer(s, &s->fed_timer, on_fed_timer, s->cfg.refresh_ms) < 0) {
        log_error("cannot start the timers");
        return 1;
    }
    targets_file_check(s);
    scraper_token_refresh(s);
    targets_fed_refresh(s);
    log_info("scraper %s: every %lld ms, timeout %lld ms, offline after %lld failures; "
             "targets file '%s', federation '%s'",
             s->cfg.id, (long long)s->cfg.interval_ms, (long long)s->cfg.timeout_ms,
             (long long)s->cfg.max_failures, s->cfg.targets_file, s->cfg.federation_dir);
    return 0;
}

static void reload(void *ctx)
{
    struct scraper *s = ctx;
    log_info("SIGHUP: reading the targets and the secrets again (other keys need a restart)");
    s->file_seen = 0;
    targets_file_check(s);
    scraper_token_refresh(s);
    credentials_reload(s);
    targets_fed_refresh(s);
}

static void fini(void *ctx)
{
    struct scraper *s = ctx;
    targets_free(s);
    fetch_free(s);
    publish_stop(s);
    if (s->file_timer)
        event_free(s->file_timer);
    if (s->fed_timer)
        event_free(s->fed_timer);
    free(s->line);
    dsf_histogram_free(&s->duration);
    metrics_free(&s->metrics);
}

static void health(void *ctx, struct dsf_buf *out)
{
    struct scraper *s = ctx;
    buf_printf(out, ",\"bus\":%s,\"targets\":{\"pending\":%zu,\"up\":%zu,\"down\":%zu}",
               s->bus && dsf_bus_connected(s->bus) ? "true" : "false",
               targets_count(s, TARGET_PENDING), targets_count(s, TARGET_UP),
               targets_count(s, TARGET_DOWN));
}

static struct dsf_metrics *metrics(void *arg)
{
    return &((struct scraper *)arg)->metrics;
}

/* The scraper writes no points of its own: internal.url says where its counters go. */
static void internal_target(void *arg, struct dsf_internal_target *t)
{
    t->id = ((struct scraper *)arg)->cfg.id;
}

static void build_sections(struct scraper *s)
{
    struct dsf_cfg_section *sec = s->sections;
    size_t n = 0;
    sec[n++] = (struct dsf_cfg_section){"", scraper_config_keys, &s->cfg, NULL};
    n += dsf_mqtt_sections(sec + n, &s->cfg.mqtt);
    sec[n++] = (struct dsf_cfg_section){"mqtt", scraper_mqtt_keys, &s->cfg.mqtt, NULL};
    n += dsf_kafka_sections(sec + n, &s->cfg.kafka);
    sec[n++] = (struct dsf_cfg_section){"kafka", dsf_kafka_producer_keys, &s->cfg.kafka, NULL};
    sec[n] = (struct dsf_cfg_section){NULL, NULL, NULL, NULL};
}

int main(int argc, char **argv)
{
    static struct scraper scraper;
    struct scraper *s = &scraper;
    build_sections(s);
    const struct dsf_daemon_def def = {
        .prog = "damselfly-scraper",
        .name = "scraper",
        .summary = "Damselfly's scraper: agentless and pull-mode monitoring, published on each "
                   "VM's own topics as its agent would.",
        .usage = usage,
        .http_listen = "127.0.0.1:9106",
        .sections = s->sections,
        .validate = scraper_config_validate,
        .start = start,
        .reload = reload,
        .fini = fini,
        .metrics = metrics,
        .internal = &dsf_internal_hooks,
        .internal_target = internal_target,
        .health = health,
        .ctx = s,
    };
    return dsf_daemon_main(&def, argc, argv);
}
