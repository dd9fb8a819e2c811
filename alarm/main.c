#define DSF_MODULE "alarm"
#include "alarm/alarm.h"
#include "alarm/notify.h"
#include "common/bus.h"
#include "common/http.h"
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
    "  re-reads them; --check also checks every rule and exits 2 if one is refused.\n\n"
    "EXAMPLES\n"
    "  damselfly-alarm --set rules.dir=/etc/damselfly/alarm.d --set output.url=http://influx:8086\n"
    "  damselfly-alarm --set input=kafka --set kafka.brokers=k1:9092\n"
    "  curl -s 127.0.0.1:9102/api/v1/alarms\n";

static struct alarm ctx;
static struct event *drain_timer;
static int64_t drain_deadline;

static void check_drained(evutil_socket_t fd, short what, void *arg)
{
    struct alarm *a = arg;
    if (!a->store || store_idle(a->store) || dsf_mono_ms() > drain_deadline)
        event_base_loopbreak(a->base);
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
        store_flush(a->store);
    drain_deadline = dsf_mono_ms() + 2000;
    if (!drain_timer)
        drain_timer = event_new(a->base, -1, EV_PERSIST, check_drained, a);
    struct timeval tv = {0, 20000};
    event_add(drain_timer, &tv);
}

static void hup(void *arg)
{
    struct alarm *a = arg;
    log_info("SIGHUP: reloading the rules");
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

static double lag_seconds(void *arg)
{
    const struct alarm_stats *s = arg;
    return (double)dsf_read(&s->detect_lag_us_sum) / 1e6;
}

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
        {"damselfly_alarm_dropped_total", "Input not evaluated.", "reason=\"bad_status\"",
         &s->status_rejected},
        {"damselfly_alarm_dropped_total", "Input not evaluated.", "reason=\"non_numeric\"",
         &e->non_numeric},
        {"damselfly_alarm_dropped_total", "Input not evaluated.", "reason=\"max_series\"",
         &e->series_drops},
        {"damselfly_alarm_dropped_total", "Input not evaluated.", "reason=\"window_full\"",
         &e->window_drops},
        {"damselfly_alarm_status_messages_total", "Agent status messages received.", NULL,
         &s->status_messages},
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
         &s->store_points},
        {"damselfly_alarm_store_points_total", "dsf_alarm points written.", "result=\"refused\"",
         &s->store_failed_points},
        {"damselfly_alarm_store_points_total", "dsf_alarm points written.", "result=\"dropped\"",
         &s->store_dropped_points},
        {"damselfly_alarm_notifications_total", "Alerts handed to the notifier.", NULL,
         &s->notifications},
        {"damselfly_alarm_state_saves_total", "State file writes.", "result=\"ok\"",
         &s->state_saves},
        {"damselfly_alarm_state_saves_total", "State file writes.", "result=\"failed\"",
         &s->state_save_failures},
    };
    for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
        metrics_add_u64(m, counters[i].name, DSF_COUNTER, counters[i].help, counters[i].labels,
                        counters[i].v);
    metrics_add_fn(m, "damselfly_alarm_detection_lag_seconds_sum", DSF_COUNTER,
                   "Sum over firing events of the time from the sample's timestamp to the event.",
                   NULL, lag_seconds, s);
    metrics_add_u64(m, "damselfly_alarm_detection_lag_seconds_count", DSF_COUNTER,
                    "Firing events caused by a sample.", NULL, &s->detect_lag_count);
    metrics_add_u64(m, "damselfly_alarm_rules", DSF_GAUGE, "Rules loaded.", NULL, &s->rules_loaded);
    metrics_add_fn(m, "damselfly_alarm_series", DSF_GAUGE, "(rule, group) series held.", NULL,
                   series_count, a->engine);
}

static int make_dir(const char *dir)
{
    if (mkdir(dir, 0750) == 0 || errno == EEXIST)
        return 0;
    log_error("state.dir %s: %s", dir, strerror(errno));
    return -1;
}

static struct event *periodic(struct alarm *a, int64_t ms, event_callback_fn fn)
{
    struct event *ev = event_new(a->base, -1, EV_PERSIST, fn, a);
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000 * 1000)};
    if (ev)
        event_add(ev, &tv);
    return ev;
}

static int start(struct alarm *a)
{
    char err[1024];
    static const struct engine_ops ops = {alarm_on_transition};
    if (make_dir(a->cfg.state_dir))
        return 2;
    if (!(a->engine = engine_new(&ops, a, (uint64_t)a->cfg.max_series)))
        return 1;
    register_metrics(a);
#ifdef DSF_HAVE_NOTIFIER
    if (*a->cfg.notify.config &&
        !(a->notifier =
              notifier_new(a->base, a->cfg.notify.config, a->cfg.state_dir, err, sizeof(err)))) {
        log_error("notify.config: %s", err);
        return 2;
    }
#else
    if (*a->cfg.notify.config) {
        log_error("notify.config: this build has no notifier");
        return 2;
    }
#endif
    if (*a->cfg.output.url && !(a->store = store_new(a, err, sizeof(err)))) {
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
    event_base_dispatch(a->base);
    return 0;
}

static void shutdown_all(struct alarm *a)
{
    alarm_state_close(a);
    alarm_input_stop(a);
    dsf_bus_free(a->bus);
    dsf_bus_free(a->pub);
    dsf_http_free(a->http);
#ifdef DSF_HAVE_NOTIFIER
    if (a->notifier)
        notifier_free(a->notifier, 1);
#endif
    store_free(a->store);
    engine_free(a->engine);
    if (a->tick)
        event_free(a->tick);
    if (a->resend)
        event_free(a->resend);
    if (a->save_timer)
        event_free(a->save_timer);
    if (drain_timer)
        event_free(drain_timer);
    for (size_t i = 0; i < a->nrule_errors; i++)
        free(a->rule_errors[i]);
    free(a->rule_errors);
    history_free(&a->history);
    ingest_free(&a->ingest);
    buf_free(&a->scratch);
    metrics_free(&a->metrics);
    event_base_free(a->base);
    dsf_cfg_free(a->sections);
}

static int asked_to_check(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--check") == 0)
            return 1;
    return 0;
}

/* --check also reads the rules: each refusal is logged with its file and key. */
static int check_rules(struct alarm *a)
{
    if (!(a->engine = engine_new(NULL, NULL, 1)))
        return -1;
    int rc = alarm_load_rules(a) || a->nrule_errors ? -1 : 0;
    printf("%s: %zu rules OK, %zu refused\n", a->cfg.rules_dir, engine_rule_count(a->engine),
           a->nrule_errors);
    engine_free(a->engine);
    a->engine = NULL;
    for (size_t i = 0; i < a->nrule_errors; i++)
        free(a->rule_errors[i]);
    free(a->rule_errors);
    a->rule_errors = NULL;
    a->nrule_errors = 0;
    return rc;
}

int main(int argc, char **argv)
{
    struct alarm *a = &ctx;
    a->sections[0] = (struct dsf_cfg_section){"", alarm_config_keys, &a->cfg};
    const struct dsf_cli cli = {
        .prog = "damselfly-alarm",
        .summary = "Damselfly's alarm engine: rules evaluated on the metric stream as samples "
                   "arrive, deadman and agent-offline alarms, events and notifications.",
        .usage = usage,
        .sections = a->sections,
        .validate = alarm_config_validate,
    };
    int rc = dsf_cli_parse(&cli, argc, argv);
    if (rc == 1 && asked_to_check(argc, argv))
        rc = check_rules(a) ? 2 : 1;
    if (rc) {
        dsf_cfg_free(a->sections);
        return rc == 1 ? 0 : rc;
    }
    enum dsf_log_level level;
    if (dsf_log_parse_level(a->cfg.log_level, &level) == 0)
        dsf_log_set_default_level(level);
    if (!*a->cfg.id) {
        char host[256] = "alarm";
        gethostname(host, sizeof(host) - 1);
        free(a->cfg.id);
        a->cfg.id = strdup(host);
    }
    a->base = dsf_loop_new();
    if (!a->base || dsf_loop_on_signals(a->base, stop, hup, a)) {
        log_error("cannot create the event loop");
        return 1;
    }
    rc = start(a);
    shutdown_all(a);
    return rc;
}
