#define DSF_MODULE "alarm"
#include "alarm/alarm.h"
#include "alarm/notify.h"
#include "common/bus.h"
#include "common/daemon.h"
#include "common/file.h"
#include "common/log.h"
#include "common/loop.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
    "DESCRIPTION\n"
    "  Evaluates alarm rules on the metric stream as each sample arrives (MQTT buckets or the\n"
    "  Kafka group dsf-alarm, read like the collector reads them) and on the agents' status\n"
    "  topics. Each (rule, group) goes inactive -> pending -> firing -> resolved, or nodata\n"
    "  when its samples stop; every change is published on dsf/alarm/{ns}/{mci}/{rule}, written\n"
    "  to InfluxDB as dsf_alarm, handed to the notifier and kept in state.dir across restarts.\n"
    "  Rules are JSON files in rules.dir (see docs/alarm.md); SIGHUP or POST /api/v1/reload\n"
    "  re-reads them; --check also checks every rule and exits 2 if one is refused.\n"
    "  The HTTP API's GETs are open; its writes (PUT and DELETE of rules, POST /api/v1/reload,\n"
    "  POST and DELETE of silences) need 'Authorization: Bearer TOKEN' with the token made at\n"
    "  the first start in state.dir/http.token (mode 0600; http.token_file to move it,\n"
    "  http.auth=none to turn it off). Caps: rules.max, rules.max_bytes, notify.max_silences,\n"
    "  notify.max_silence_duration.\n\n"
    "EXAMPLES\n"
    "  damselfly-alarm --set rules.dir=/etc/damselfly/alarm.d --set output.url=http://influx:8086\n"
    "  damselfly-alarm --set input=kafka --set kafka.brokers=k1:9092\n"
    "  curl -s 127.0.0.1:9102/api/v1/alarms\n"
    "  curl -s -XPOST -H \"Authorization: Bearer $(cat /var/lib/damselfly/alarm/http.token)\" \\\n"
    "      127.0.0.1:9102/api/v1/reload\n";

static struct alarm ctx;

static int store_drained(void *arg)
{
    struct alarm *a = arg;
    return !a->store || dsf_event_store_idle(a->store);
}

/* Stop evaluating, give the store the events still pending (at most 2 s), then exit. */
static void stop(void *arg)
{
    struct alarm *a = arg;
    log_info("stopping");
    alarm_input_stop(a);
    dsf_bus_free(a->bus);
    a->bus = NULL;
    if (a->store)
        dsf_event_store_flush(a->store);
    dsf_daemon_exit_when_idle(a->daemon, store_drained, a, 2000, 20);
}

static void reload(void *arg)
{
    struct alarm *a = arg;
    log_info("SIGHUP: reloading the rules and notify.config; the other keys need a restart");
    alarm_load_rules(a);
#ifdef DSF_HAVE_NOTIFIER
    char err[512];
    if (a->notifier && notifier_reload(a->notifier, err, sizeof(err)))
        log_error("notify.config: %s (the old routing stays)", err);
#endif
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct alarm *a = arg;
    engine_tick(a->engine, dsf_now_ns(), dsf_mono_ms());
}

static void on_resend(evutil_socket_t fd, short what, void *arg)
{
    alarm_resend(arg, dsf_mono_ms());
}

static double series_count(void *arg)
{
    return (double)engine_series_count(arg);
}

static const double lag_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                    0.25,  0.5,    1,     2.5,  5,     10,   30};

static void register_metrics(struct alarm *a)
{
    struct dsf_metrics *m = &a->metrics;
    struct alarm_stats *s = &a->stats;
    const struct engine_stats *e = engine_stats(a->engine);
    const struct {
        const char *name, *help, *labels;
        const uint64_t *v;
    } counters[] = {
        {"damselfly_alarm_messages_total", "Messages received.", NULL, &s->messages},
        {"damselfly_alarm_points_total", "Valid lines received.", NULL, &e->lines},
        {"damselfly_alarm_samples_total", "Samples a rule selected.", NULL, &e->samples},
        {"damselfly_alarm_evaluations_total", "Rule evaluations.", NULL, &e->evaluations},
        {"damselfly_alarm_transitions_total", "State changes (events).", NULL, &e->transitions},
        {"damselfly_alarm_dropped_total", "Input not evaluated.", "reason=\"bad_line\"",
         &s->lines_rejected},
        {"damselfly_alarm_dropped_total", "Input not evaluated.", "reason=\"bad_topic\"",
         &s->topics_rejected},
        {"damselfly_alarm_dropped_total", "Input not evaluated.", "reason=\"wrong_bucket\"",
         &s->wrong_bucket},
        {"damselfly_alarm_dropped_total", "Input not evaluated.", "reason=\"bad_status\"",
         &s->status_rejected},
        {"damselfly_alarm_dropped_total", "Input not evaluated.", "reason=\"non_numeric\"",
         &e->non_numeric},
        {"damselfly_alarm_dropped_total", "Input not evaluated.", "reason=\"max_series\"",
         &e->series_drops},
        {"damselfly_alarm_dropped_total", "Input not evaluated.", "reason=\"window_full\"",
         &e->window_drops},
        {"damselfly_alarm_dropped_total", "Input not evaluated.", "reason=\"unowned\"",
         &s->unowned},
        {"damselfly_alarm_series_moved_total",
         "Series forgotten because their bucket was assigned to another engine.", NULL,
         &s->series_moved},
        {"damselfly_alarm_status_messages_total", "Agent status messages received.", NULL,
         &s->status_messages},
        {"damselfly_alarm_series_forgotten_total",
         "Series dropped because their VM was removed (its status cleared).", NULL,
         &e->series_forgotten},
        {"damselfly_alarm_rules_rejected_total", "Rules refused at load (bad key or value).", NULL,
         &s->rules_rejected},
        {"damselfly_alarm_reloads_total", "Rule directory loads.", NULL, &s->reloads},
        {"damselfly_alarm_reload_failures_total", "Rule directory loads that failed.", NULL,
         &s->reload_failures},
        {"damselfly_alarm_events_total", "Events published.", "result=\"published\"",
         &s->events_published},
        {"damselfly_alarm_events_total", "Events published.", "result=\"failed\"",
         &s->events_publish_failed},
        {"damselfly_alarm_store_points_total", "dsf_alarm points written.", "result=\"ok\"",
         &s->store.points},
        {"damselfly_alarm_store_points_total", "dsf_alarm points written.", "result=\"refused\"",
         &s->store.failed_points},
        {"damselfly_alarm_store_points_total", "dsf_alarm points written.", "result=\"dropped\"",
         &s->store.dropped_points},
        {"damselfly_alarm_notifications_total", "Alerts handed to the notifier.", NULL,
         &s->notifications},
        {"damselfly_alarm_state_saves_total", "State file writes.", "result=\"ok\"",
         &s->state_saves},
        {"damselfly_alarm_state_saves_total", "State file writes.", "result=\"failed\"",
         &s->state_save_failures},
        {"damselfly_alarm_api_refused_total", "API writes refused by a cap.",
         "reason=\"rules_max\"", &s->api_rules_max},
        {"damselfly_alarm_api_refused_total", "API writes refused by a cap.",
         "reason=\"rules_max_bytes\"", &s->api_rule_too_large},
    };
    for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
        metrics_add_u64(m, counters[i].name, DSF_COUNTER, counters[i].help, counters[i].labels,
                        counters[i].v);
    dsf_histogram_init(&a->detect_lag, lag_bounds, sizeof(lag_bounds) / sizeof(lag_bounds[0]));
    metrics_add_histogram(m, "damselfly_alarm_detection_lag_seconds",
                          "Time from the sample's timestamp to the firing event it caused.", NULL,
                          &a->detect_lag);
    metrics_add_u64_by(m, "damselfly_alarm_assign_refused_total", DSF_COUNTER,
                       "Assignments not applied, by reason: stale, malformed, range, ahead "
                       "(as the collector's).",
                       "reason", dsf_follow_refused_names, DSF_FOLLOW_REASONS, a->follow.refused);
    metrics_add_u64(m, "damselfly_alarm_rules", DSF_GAUGE, "Rules loaded.", NULL, &s->rules_loaded);
    metrics_add_fn(m, "damselfly_alarm_series", DSF_GAUGE, "(rule, group) series held.", NULL,
                   series_count, a->engine);
}

static struct event *periodic(struct alarm *a, int64_t ms, event_callback_fn fn)
{
    struct event *ev = event_new(a->base, -1, EV_PERSIST, fn, a);
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000 * 1000)};
    if (ev)
        event_add(ev, &tv);
    return ev;
}

static int start_notifier(struct alarm *a)
{
#ifdef DSF_HAVE_NOTIFIER
    char err[1024];
    if (*a->cfg.notify.config &&
        !(a->notifier =
              notifier_new(a->base, a->cfg.notify.config, a->cfg.state_dir, err, sizeof(err)))) {
        log_error("notify.config: %s", err);
        return -1;
    }
    if (a->notifier)
        notifier_set_silence_limits(a->notifier, (size_t)a->cfg.notify.max_silences,
                                    a->cfg.notify.max_silence_ms);
#else
    if (*a->cfg.notify.config) {
        log_error("notify.config: this build has no notifier");
        return -1;
    }
#endif
    return 0;
}

static int start(void *arg, struct dsf_daemon *d)
{
    struct alarm *a = arg;
    char err[1024];
    static const struct engine_ops ops = {alarm_on_transition};
    a->daemon = d;
    a->base = dsf_daemon_base(d);
    a->http = dsf_daemon_http(d);
    dsf_daemon_default_id(&a->cfg.id, "alarm");
    if (dsf_mkdir_p(a->cfg.state_dir, 0750, err, sizeof(err))) {
        log_error("state.dir: %s", err);
        return 2;
    }
    if (!(a->engine = engine_new(&ops, a, (uint64_t)a->cfg.max_series)))
        return 1;
    register_metrics(a);
    if (start_notifier(a))
        return 2;
    if (*a->cfg.output.url && !(a->store = dsf_event_store_new(
                                    a->base, &a->cfg.output, &a->stats.store, err, sizeof(err)))) {
        log_error("output: %s", err);
        return 2;
    }
    if (alarm_load_rules(a))
        return 2;
    alarm_state_restore(a);
    if (alarm_api_start(a, err, sizeof(err))) {
        log_error("http: %s", err);
        return 1;
    }
    if (alarm_input_start(a, err, sizeof(err))) {
        log_error("input: %s", err);
        return 2;
    }
    a->tick = periodic(a, a->cfg.tick_ms, on_tick);
    a->resend =
        periodic(a, a->cfg.notify.resend_ms < 10000 ? a->cfg.notify.resend_ms : 10000, on_resend);
    log_info("started: id=%s input=%s rules=%zu", a->cfg.id, a->cfg.input,
             engine_rule_count(a->engine));
    return 0;
}

static void fini(void *arg)
{
    struct alarm *a = arg;
    alarm_state_close(a);
    alarm_input_stop(a);
    dsf_bus_free(a->bus);
    dsf_bus_free(a->pub);
#ifdef DSF_HAVE_NOTIFIER
    if (a->notifier)
        notifier_free(a->notifier, 1);
#endif
    dsf_event_store_free(a->store);
    engine_free(a->engine);
    if (a->tick)
        event_free(a->tick);
    if (a->resend)
        event_free(a->resend);
    if (a->save_timer)
        event_free(a->save_timer);
    for (size_t i = 0; i < a->nrule_errors; i++)
        free(a->rule_errors[i]);
    free(a->rule_errors);
    history_free(&a->history);
    ingest_free(&a->ingest);
    dsf_follow_free(&a->follow);
    buf_free(&a->scratch);
    metrics_free(&a->metrics);
    dsf_histogram_free(&a->detect_lag);
}

/* --check loads what start loads: the rules (each refusal logged with its file and key) and
 * the notifier's routing file. */
static int check(void *arg, char *err, size_t errlen)
{
    struct alarm *a = arg;
    if (!(a->engine = engine_new(NULL, NULL, 1))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = alarm_load_rules(a);
    size_t loaded = engine_rule_count(a->engine), refused = a->nrule_errors;
    engine_free(a->engine);
    a->engine = NULL;
    for (size_t i = 0; i < a->nrule_errors; i++)
        free(a->rule_errors[i]);
    free(a->rule_errors);
    a->rule_errors = NULL;
    a->nrule_errors = 0;
    if (rc) {
        snprintf(err, errlen, "rules.dir %s cannot be read", a->cfg.rules_dir);
        return -1;
    }
    printf("%s: %zu rules OK, %zu refused\n", a->cfg.rules_dir, loaded, refused);
    if (refused) {
        snprintf(err, errlen, "rules.dir %s: %zu rules refused", a->cfg.rules_dir, refused);
        return -1;
    }
#ifdef DSF_HAVE_NOTIFIER
    char why[900];
    if (*a->cfg.notify.config && notifier_check(a->cfg.notify.config, why, sizeof(why))) {
        snprintf(err, errlen, "notify.config: %s", why);
        return -1;
    }
#endif
    return 0;
}

static struct dsf_metrics *metrics(void *arg)
{
    return &((struct alarm *)arg)->metrics;
}

static void internal_target(void *arg, struct dsf_internal_target *t)
{
    const struct alarm_config *cfg = &((struct alarm *)arg)->cfg;
    *t = (struct dsf_internal_target){cfg->id, cfg->output.url, cfg->output.db,
                                      cfg->output.username, cfg->output.password};
}

int main(int argc, char **argv)
{
    struct alarm *a = &ctx;
    alarm_config_sections(a);
    const struct dsf_daemon_def def = {
        .prog = "damselfly-alarm",
        .name = "alarm",
        .summary = "Damselfly's alarm engine: rules evaluated on the metric stream as samples "
                   "arrive, deadman and agent-offline alarms, events and notifications.",
        .usage = usage,
        .http_listen = "127.0.0.1:9102",
        .state_dir_key = "state.dir",
        .sections = a->sections,
        .validate = alarm_config_validate,
        .check = check,
        .start = start,
        .stop = stop,
        .reload = reload,
        .fini = fini,
        .metrics = metrics,
        .internal = &dsf_internal_hooks,
        .internal_target = internal_target,
        .render_metrics = alarm_render_metrics,
        .health = alarm_health,
        .ctx = a,
    };
    return dsf_daemon_main(&def, argc, argv);
}
