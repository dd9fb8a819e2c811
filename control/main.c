/*
 * damselfly-control: turns alarms into guarded, verified healing through the federation
 * layer, with an audit trail (docs/control.md). This file is the daemon's definition for the
 * skeleton (common/daemon.h) and its start and stop.
 */
#define DSF_MODULE "control"
#include "common/bus.h"
#include "common/daemon.h"
#include "common/file.h"
#include "common/http_client.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/metrics.h"
#include "control/audit.h"
#include "control/control_impl.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "DESCRIPTION\n"
    "  Turns alarm events (dsf/alarm/#, Kafka dsf.alarms, Alertmanager webhooks on POST\n"
    "  /api/v1/alertmanager) into healing actions through the federation layer: policies\n"
    "  (policies.dir, one JSON file each, schemas/policy.schema.json) map an alarm to a chain\n"
    "  of steps (reboot, migrate, scale_out, k8s_drain, notify, ...), each verified before the\n"
    "  chain stops, else the next. Guards keep healing from making an outage worse: cooldown,\n"
    "  concurrency, a fraction of each MCI, an hourly rate and a storm breaker that stops all\n"
    "  action while much of the fleet goes dark at once or the controller itself is blind.\n"
    "  Every decision and step goes, before it runs, into a hash-chained audit log\n"
    "  (state.dir/audit.jsonl), which is also the journal a restart resumes from. The API\n"
    "  (every route but /healthz needs the bearer token of state.dir/http.token) lists and\n"
    "  changes policies, lists, starts, approves and cancels actions, pauses, and shows the\n"
    "  guards and the MCIs. --check loads and checks the policies without acting.\n"
    "\n"
    "COMMANDS\n"
    "  damselfly-control audit verify FILE   check an audit log's hash chain\n"
    "\n"
    "EXAMPLES\n"
    "  damselfly-control --set policies.dir=deploy/policies --check\n"
    "  damselfly-control --set policies.dir=/etc/damselfly/policies \\\n"
    "      --set federation.dir=/var/lib/damselfly/federation \\\n"
    "      --set alarm.engines=http://127.0.0.1:9102 --set mqtt.url=tcp://127.0.0.1:1883\n"
    "  curl -H \"Authorization: Bearer $(cat /var/lib/damselfly/control/http.token)\" \\\n"
    "      127.0.0.1:9103/api/v1/actions\n"
    "  damselfly-control audit verify /var/lib/damselfly/control/audit.jsonl\n";

int ctl_record(struct control *c, json_t *rec)
{
    char err[600];
    json_t *written = c->audit ? audit_append_record(c->audit, rec, err, sizeof(err)) : NULL;
    json_decref(rec);
    if (!written) {
        dsf_count(&c->stats.record_failures, 1);
        log_error("audit log: %s", c->audit ? err : "not open");
        return -1;
    }
    if (c->out)
        ctl_output_record(c->out, written);
    ctl_action_keep_record(c, written);
    json_decref(written);
    return 0;
}

/* The audit log of state.dir, replayed into the controller's state, refused when its chain
 * was tampered with; its first record of this run says the controller started. */
static int open_audit(struct control *c)
{
    char path[4096], err[600];
    if (dsf_mkdir_p(c->cfg.state_dir, 0700, err, sizeof(err))) {
        log_error("state.dir: %s", err);
        return 1;
    }
    snprintf(path, sizeof(path), "%s/audit.jsonl", c->cfg.state_dir);
    c->replaying = 1;
    c->audit = audit_open_replay(path, ctl_replay_record, c, err, sizeof(err));
    c->replaying = 0;
    if (!c->audit) {
        log_error("%s; check it with: damselfly-control audit verify %s", err, path);
        return 1;
    }
    if (ctl_record(c, json_pack("{s:s, s:s}", "event", "start", "version", DSF_VERSION)))
        return 1;
    log_info("audit log %s: %llu records", path, (unsigned long long)audit_last_seq(c->audit));
    return 0;
}

static int load_policies(struct control *c, char *err, size_t errlen)
{
    policy_set_free(&c->policies);
    if (policy_load_dir(c->cfg.policies_dir, &c->policies, err, errlen))
        return -1;
    log_info("%zu policies from %s", c->policies.n, c->cfg.policies_dir);
    return 0;
}

/* --check: the policies load as start would load them. */
static int check(void *ctx, char *err, size_t errlen)
{
    return load_policies(ctx, err, errlen);
}

static void breaker_changed(void *arg, const char *scope, int open, const char *why)
{
    struct control *c = arg;
    ctl_record(c, json_pack("{s:s, s:s, s:b, s:s}", "event", "breaker", "scope", scope, "open",
                            open, "why", why ? why : ""));
    if (open) {
        log_warn("storm breaker %s opened: %s; no action until it closes", scope, why);
    } else {
        log_info("storm breaker %s closed: %s; reading the active alarms again", scope, why);
        ctl_input_reconcile(c);
    }
}

void ctl_breaker_tick(struct control *c)
{
    guards_tick(c->guards, ctl_wall_ms(), breaker_changed, c);
}

/* The MCIs' sizes for the guards, from the federation's model. */
static void refresh_sizes(struct control *c)
{
    json_t *list = executor_mci_list(c->exec), *it;
    size_t i;
    json_array_foreach(list, i, it)
    {
        struct fed_mci m = {0};
        const char *ns = json_string_value(json_object_get(it, "ns"));
        const char *id = json_string_value(json_object_get(it, "mci"));
        if (executor_mci(c->exec, ns, id, &m) == 0) {
            int n = 0;
            for (size_t k = 0; k < m.nvms; k++)
                n += m.vms[k].state != FED_VM_TERMINATED;
            guards_mci_size(c->guards, ns, id, n);
        }
        fed_mci_free(&m);
    }
    json_decref(list);
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
    struct control *c = arg;
    (void)fd;
    (void)what;
    refresh_sizes(c);
    ctl_input_tick(c);
    ctl_breaker_tick(c);
    ctl_actions_tick(c);
}

static int start_loop_parts(struct control *c, char *err, size_t errlen)
{
    if (!(c->guards = guards_new(&c->cfg.guards)) || !(c->fleet = fleet_new()) ||
        !(c->http = dsf_http_client_new(c->base)) || dsf_htab_grow(&c->actions) < 0 ||
        dsf_htab_grow(&c->handled) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (!(c->exec = executor_new(c, err, errlen)))
        return -1;
    c->out_cfg.state_dir = c->cfg.state_dir;
    if (!(c->out = ctl_output_new(c->base, &c->out_cfg, err, errlen)))
        return -1;
    struct timeval second = {1, 0};
    c->tick = event_new(c->base, -1, EV_PERSIST, tick, c);
    if (!c->tick || event_add(c->tick, &second) < 0) {
        snprintf(err, errlen, "cannot start the timer");
        return -1;
    }
    return 0;
}

static int start(void *ctx, struct dsf_daemon *d)
{
    struct control *c = ctx;
    char err[1024];
    c->daemon = d;
    c->base = dsf_daemon_base(d);
    dsf_daemon_default_id(&c->cfg.id, "control");
    if (load_policies(c, err, sizeof(err))) {
        log_error("policies.dir: %s", err);
        return 2;
    }
    control_add_metrics(c);
    if (start_loop_parts(c, err, sizeof(err)) < 0) {
        log_error("%s", err);
        return 1;
    }
    refresh_sizes(c);
    if (open_audit(c))
        return 1;
    if (ctl_api_register(c, err, sizeof(err)) < 0 || ctl_input_start(c, err, sizeof(err)) < 0) {
        log_error("%s", err);
        return 1;
    }
    ctl_replay_resume(c);
    return 0; /* the engines' alarms are read once the bus is up (input.c) */
}

static int output_idle(void *arg)
{
    struct control *c = arg;
    return !c->out || ctl_output_idle(c->out);
}

/* Stop listening, give the store what is pending (at most 2 s), then exit. */
static void stop(void *ctx)
{
    struct control *c = ctx;
    log_info("stopping");
    ctl_input_stop(c);
    if (c->out)
        ctl_output_flush(c->out);
    dsf_daemon_exit_when_idle(c->daemon, output_idle, c, 2000, 20);
}

static void reload(void *ctx)
{
    struct control *c = ctx;
    struct policy_set fresh = {0};
    char err[1024];
    log_info("SIGHUP: reloading the policies; the other keys need a restart");
    if (policy_load_dir(c->cfg.policies_dir, &fresh, err, sizeof(err)) < 0) {
        log_error("reload: policies.dir: %s; keeping the %zu policies loaded", err, c->policies.n);
        return;
    }
    policy_set_free(&c->policies);
    c->policies = fresh;
    log_info("reload: %zu policies from %s", c->policies.n, c->cfg.policies_dir);
}

static void fini(void *ctx)
{
    struct control *c = ctx;
    ctl_input_stop(c);
    if (c->tick)
        event_free(c->tick);
    ctl_output_free(c->out);
    executor_free(c->exec);
    dsf_http_client_free(c->http);
    audit_close(c->audit);
    ctl_actions_free(c);
    ctl_console_free(c);
    dsf_htab_free_all(&c->handled, NULL);
    guards_free(c->guards);
    fleet_free(c->fleet);
    policy_set_free(&c->policies);
    metrics_free(&c->metrics);
    dsf_histogram_free(&c->stats.decision_s);
    dsf_cfg_free(c->sections);
}

static void health(void *ctx, struct dsf_buf *out)
{
    struct control *c = ctx;
    buf_printf(out, ",\"bus\":%s,\"paused\":%s,\"breaker_open\":%s,\"running\":%zu",
               c->bus_up ? "true" : "false",
               c->guards && guards_paused(c->guards) ? "true" : "false",
               c->guards && guards_breaker_open(c->guards, "", "") ? "true" : "false",
               c->exec ? executor_running(c->exec) : 0);
}

static struct dsf_metrics *metrics(void *arg)
{
    return &((struct control *)arg)->metrics;
}

static void render_metrics(void *arg, struct dsf_buf *out)
{
    struct control *c = arg;
    if (c->out)
        ctl_output_render_metrics(c->out, out);
}

static void internal_target(void *arg, struct dsf_internal_target *t)
{
    const struct control *c = arg;
    const struct dsf_event_store_config *o = &c->out_cfg.output;
    *t = (struct dsf_internal_target){c->cfg.id, o->url, o->db, o->username, o->password};
}

static int build_sections(struct control *c)
{
    static const char *const kafka_defaults[] = {"group=dsf-control", NULL};
    struct dsf_cfg_section *s = c->sections;
    size_t n = 0;
    s[n++] = (struct dsf_cfg_section){"", control_config_keys, &c->cfg, NULL};
    s[n++] = (struct dsf_cfg_section){"", control_guard_keys, &c->cfg.guards, NULL};
    s[n++] = (struct dsf_cfg_section){"federation", fed_options_keys, &c->cfg.fed, NULL};
    n += dsf_mqtt_sections(s + n, &c->cfg.mqtt);
    n += dsf_kafka_sections(s + n, &c->cfg.kafka);
    s[n++] =
        (struct dsf_cfg_section){"kafka", dsf_kafka_consumer_keys, &c->cfg.kafka, kafka_defaults};
    n += ctl_output_sections(s + n, &c->out_cfg);
    c->ndriver_sections_at = n;
    int k = fed_driver_sections(s + n, sizeof(c->sections) / sizeof(c->sections[0]) - n - 1);
    if (k < 0)
        return -1;
    c->ndriver_sections = (size_t)k;
    s[n + (size_t)k] = (struct dsf_cfg_section){NULL, NULL, NULL, NULL};
    return 0;
}

static int validate(const struct dsf_cfg_section *secs, const char *origin, char *err,
                    size_t errlen)
{
    const struct control_config *cfg = secs[0].obj;
    if (strcmp(cfg->input, "mqtt") && strcmp(cfg->input, "kafka")) {
        snprintf(err, errlen, "%s: key 'input': expected mqtt or kafka (got '%s')", origin,
                 cfg->input);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "audit") == 0)
        return control_audit_command(argc - 1, argv + 1);
    static struct control control;
    struct control *c = &control;
    if (build_sections(c) < 0) {
        fprintf(stderr, "damselfly-control: out of memory\n");
        return 1;
    }
    const struct dsf_daemon_def def = {
        .prog = "damselfly-control",
        .name = "control",
        .summary = "Damselfly's quality controller: alarms turned into guarded, verified "
                   "healing, with an audit trail.",
        .usage = usage,
        .http_listen = "127.0.0.1:9103",
        .state_dir_key = "state.dir",
        .token_for_reads = 1,
        .sections = c->sections,
        .validate = validate,
        .check = check,
        .start = start,
        .stop = stop,
        .reload = reload,
        .fini = fini,
        .metrics = metrics,
        .internal = &dsf_internal_hooks,
        .internal_target = internal_target,
        .render_metrics = render_metrics,
        .health = health,
        .ctx = c,
    };
    int rc = dsf_daemon_main(&def, argc, argv);
    /* The skeleton frees the sections' strings after fini: their structs go last. */
    fed_driver_sections_free(c->sections + c->ndriver_sections_at, c->ndriver_sections);
    return rc;
}
