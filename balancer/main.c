/*
 * damselfly-balancer (docs/balancer.md): the daemon's definition for the skeleton
 * (common/daemon.h), its start, its timer and its stop.
 */
#define DSF_MODULE "balancer"
#include "balancer/balancer.h"
#include "common/bus.h"
#include "common/daemon.h"
#include "common/loop.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "DESCRIPTION\n"
    "  Keeps every metrics bucket (dsf/m/{bucket}/...) owned by exactly one live collector of\n"
    "  the pool, and moves as few buckets as it can. Collectors are known from their\n"
    "  heartbeats and Last Wills on dsf/c/{id}/hb: one that stops beating for\n"
    "  members.heartbeat x members.missed_beats, or whose Will arrives, is dead and its\n"
    "  buckets go to the others at once. Assignments are retained {\"epoch\",\"buckets\"}\n"
    "  messages on dsf/c/{id}/assign (collectors run with mqtt.follow_assign=true). A bucket\n"
    "  moves safely: it is given to the new owner first, and taken from the old one only\n"
    "  once the new owner's heartbeat shows it applied that epoch. Assignment is a sticky,\n"
    "  bounded-load rendezvous hash: a joining collector takes at most ceil(B/N)+1 buckets,\n"
    "  all from others' surplus, a leaving one gives only its own; every rebalance.interval\n"
    "  one bucket at most moves from the busiest collector to the least loaded.\n"
    "  Epochs (wall-clock ms) only grow, also across restarts (state.dir/epoch.json and the\n"
    "  retained assignments). A restarted balancer reads the retained assignments back,\n"
    "  waits two heartbeats and moves nothing while their owners live.\n"
    "  Two or more balancers may run (distinct ids): one leads (retained dsf/b/leader,\n"
    "  {\"id\",\"term\",\"epoch\"}; dsf/b/{id}/alive with a Last Will) and alone publishes; a\n"
    "  standby takes over within 5 s of the leader's death. GET /api/v1/pool shows the\n"
    "  pools (every route but /healthz needs the bearer token of state.dir/http.token),\n"
    "  POST /api/v1/pool/{pool}/scale {\"replicas\":N} asks for a pool size.\n"
    "\n"
    "EXAMPLES\n"
    "  damselfly-balancer --set id=b1 --set mqtt.url=tcp://127.0.0.1:1883 \\\n"
    "      --set state.dir=/var/lib/damselfly/balancer\n"
    "  damselfly-balancer --set id=b2 --set pools.map=acme=acme,beta/web=web --check\n"
    "  curl -H \"Authorization: Bearer $(cat /var/lib/damselfly/balancer/http.token)\" \\\n"
    "      127.0.0.1:9104/api/v1/pool\n";

static void tick(evutil_socket_t fd, short what, void *arg)
{
    struct balancer *b = arg;
    int64_t now = dsf_mono_ms();
    (void)fd;
    (void)what;
    /* First: a leader that was stopped must not act on what it believed before. */
    if (b->last_tick_ms && now - b->last_tick_ms > b->cfg.heartbeat_ms)
        bal_stalled(b, now, now - b->last_tick_ms);
    b->last_tick_ms = now;
    bal_membership_tick(b, now);
    bal_leader_tick(b, now);
    bal_move_tick(b, now);
}

static int start(void *ctx, struct dsf_daemon *d)
{
    struct balancer *b = ctx;
    char err[1024];
    b->daemon = d;
    b->base = dsf_daemon_base(d);
    b->started_ms = dsf_mono_ms();
    dsf_daemon_default_id(&b->cfg.id, "balancer");
    if (bal_pools_parse(b, err, sizeof(err)) < 0) {
        log_error("%s", err);
        return 2;
    }
    if (bal_state_init(b) < 0) {
        log_error("out of memory");
        return 1;
    }
    if (bal_epoch_load(b, err, sizeof(err)) < 0) {
        log_error("state.dir: %s", err);
        return 1;
    }
    bal_add_metrics(b);
    if (bal_api_register(b, err, sizeof(err)) < 0 || bal_bus_start(b, err, sizeof(err)) < 0 ||
        bal_scale_start(b, err, sizeof(err)) < 0) {
        log_error("%s", err);
        return 1;
    }
    /* A quarter heartbeat: a death is acted on well within one beat of being noticed. */
    int64_t every = b->cfg.heartbeat_ms / 4;
    struct timeval tv = {(time_t)(every / 1000), (suseconds_t)(every % 1000 * 1000)};
    b->tick = event_new(b->base, -1, EV_PERSIST, tick, b);
    if (!b->tick || event_add(b->tick, &tv) < 0) {
        log_error("cannot start the timer");
        return 1;
    }
    log_info("balancer %s: %u buckets, %zu pools; settling for %lld ms before deciding", b->cfg.id,
             b->nb, b->npools, (long long)bal_settle_ms(b));
    return 0;
}

static void fini(void *ctx)
{
    struct balancer *b = ctx;
    bal_scale_stop(b);
    bal_bus_stop(b);
    if (b->tick)
        event_free(b->tick);
    bal_state_free(b);
    metrics_free(&b->metrics);
}

static void health(void *ctx, struct dsf_buf *out)
{
    struct balancer *b = ctx;
    buf_printf(out, ",\"bus\":%s,\"leader\":%s", b->bus_up ? "true" : "false",
               b->leading ? "true" : "false");
}

static struct dsf_metrics *metrics(void *arg)
{
    return &((struct balancer *)arg)->metrics;
}

/* The balancer writes no points of its own: internal.url says where its counters go. */
static void internal_target(void *arg, struct dsf_internal_target *t)
{
    t->id = ((struct balancer *)arg)->cfg.id;
}

static int validate(const struct dsf_cfg_section *secs, const char *origin, char *err,
                    size_t errlen)
{
    const struct balancer_config *cfg = secs[0].obj;
    char why[400];
    if (bal_pools_check(&cfg->pools_map, why, sizeof(why)) < 0 ||
        runner_config_validate(&cfg->runner, &cfg->scale, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "%s: %s", origin, why);
        return -1;
    }
    return 0;
}

static int build_sections(struct balancer *b)
{
    char err[200];
    /* The alive status's Will must fire within ~3 s of a stopped leader: 1.5 x keepalive. */
    static const char *const mqtt_defaults[] = {"keepalive=2", NULL};
    struct dsf_cfg_section *s = b->sections;
    size_t n = 0;
    s[n++] = (struct dsf_cfg_section){"", balancer_config_keys, &b->cfg, NULL};
    n += dsf_mqtt_sections(s + n, &b->cfg.mqtt);
    s[n - 2].defaults = mqtt_defaults;
    int r = runner_config_sections(s + n, RUNNER_CONFIG_SECTIONS, &b->cfg.runner, &b->cfg.scale,
                                   err, sizeof(err));
    if (r < 0) {
        fprintf(stderr, "damselfly-balancer: %s\n", err);
        return -1;
    }
    n += (size_t)r;
    s[n] = (struct dsf_cfg_section){NULL, NULL, NULL, NULL};
    return 0;
}

int main(int argc, char **argv)
{
    static struct balancer balancer;
    struct balancer *b = &balancer;
    if (build_sections(b) < 0)
        return 1;
    const struct dsf_daemon_def def = {
        .prog = "damselfly-balancer",
        .name = "balancer",
        .summary = "Damselfly's balancer: every metrics bucket owned by one live collector, "
                   "few moves, failover in seconds.",
        .usage = usage,
        .http_listen = "127.0.0.1:9104",
        .state_dir_key = "state.dir",
        .token_for_reads = 1,
        .sections = b->sections,
        .validate = validate,
        .start = start,
        .fini = fini,
        .metrics = metrics,
        .internal = &dsf_internal_hooks,
        .internal_target = internal_target,
        .render_metrics = bal_render_metrics,
        .health = health,
        .ctx = b,
    };
    int rc = dsf_daemon_main(&def, argc, argv);
    /* Only now: the daemon frees the sections' values last, runner.kubernetes's among them. */
    runner_config_free(&b->cfg.runner);
    return rc;
}
