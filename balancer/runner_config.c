#include "balancer/policy.h"
#include "balancer/runner.h"
#include "federation/driver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define R(field) offsetof(struct runner_config, field)
static const struct dsf_cfg_key runner_keys[] = {
    {"kind", DSF_CFG_STR, "none", R(kind),
     "what starts and stops collectors when the pool scales: none (the balancer only assigns), "
     "local (collector processes on this host) or kubernetes (the collector Deployment)",
     0, 0},
    {"local.collector", DSF_CFG_STR, "", R(local.collector),
     "the damselfly-collector binary; empty: the one installed next to damselfly-balancer", 0, 0},
    {"local.config", DSF_CFG_STR, "", R(local.config),
     "collector config file every member loads (-c): the bus, the store; \"{id}\" in it "
     "stands for the member's id (a file per member: its own bus credentials); the runner's "
     "own --set items (id, mqtt.follow_assign, spool.dir, http.listen) override it",
     0, 0},
    {"local.id_prefix", DSF_CFG_ID, "collector", R(local.id_prefix),
     "members are PREFIX-1, PREFIX-2, ... (the lowest free number first)", 0, 0},
    {"local.dir", DSF_CFG_STR, "/var/lib/damselfly/balancer/members", R(local.dir),
     "DIR/ID/ is a member's working directory (its spool and collector.log); DIR/children.json "
     "lists the running members so that a restarted balancer adopts them",
     0, 0},
    {"local.set", DSF_CFG_STRLIST, "", R(local.set),
     "more KEY=VALUE items given to every member as --set", 0, 0},
    {"local.http_listen", DSF_CFG_LISTEN, "127.0.0.1:0", R(local.http_listen),
     "a member's http.listen (its /metrics); port 0: the kernel picks one; empty: off", 0, 0},
    {"local.http_port_base", DSF_CFG_INT, "0", R(local.http_port_base),
     "above 0: member N listens on local.http_listen's host at port BASE+N", 0, 65000},
    {"local.stop_timeout", DSF_CFG_DURATION, "15s", R(local.stop_timeout_ms),
     "a stopped member gets SIGTERM (it drains what it holds), then SIGKILL this long after", 100,
     3600000},
    {"kubernetes.namespace", DSF_CFG_STR, "default", R(k8s.ns), "the Deployment's namespace", 0, 0},
    {"kubernetes.deployment", DSF_CFG_STR, "damselfly-collector", R(k8s.name),
     "the collector Deployment (its pods' collector ids begin with NAME-)", 0, 0},
    {"kubernetes.kind", DSF_CFG_STR, "deployment", R(k8s.kind),
     "deployment, or machinedeployment (Cluster API)", 0, 0},
    {"kubernetes.state_dir", DSF_CFG_STR, "/var/lib/damselfly/balancer/federation",
     R(k8s.state_dir), "the federation handle's state directory", 0, 0},
    DSF_CFG_END,
};
#undef R

#define S(field) offsetof(struct scale_config, field)
static const struct dsf_cfg_key scale_keys[] = {
    {"min", DSF_CFG_INT, "1", S(min), "fewest members of a pool", 0, 10000},
    {"max", DSF_CFG_INT, "8", S(max), "most members of a pool (Kafka: also the partitions)", 1,
     10000},
    {"target_points_per_s", DSF_CFG_DOUBLE, "50000", S(target_points_per_s),
     "points/s per member the pool aims at; 0: not a criterion", 0, 1e12},
    {"target_cpu", DSF_CFG_DOUBLE, "0.7", S(target_cpu),
     "CPU per member (cores) the pool aims at; 0: not a criterion", 0, 1024},
    {"target_lag", DSF_CFG_INT, "100000", S(target_lag),
     "Kafka pools: consumer lag (messages) per member the pool aims at; 0: not a criterion", 0,
     1e15},
    {"in_ratio", DSF_CFG_DOUBLE, "0.5", S(in_ratio),
     "scale in only while every criterion is below target * in_ratio (hysteresis)", 0, 1},
    {"cooldown_out", DSF_CFG_DURATION, "30s", S(cooldown_out_ms),
     "least time between two scale outs", 0, 86400000},
    {"cooldown_in", DSF_CFG_DURATION, "2m", S(cooldown_in_ms),
     "least time between any scaling and a scale in", 0, 86400000},
    {"sustain", DSF_CFG_DURATION, "10s", S(sustain_ms),
     "how long the load must stay above (or below) before the pool scales", 0, 86400000},
    {"interval", DSF_CFG_DURATION, "1s", S(interval_ms),
     "how often the leading balancer feeds the pool's load to the policy and acts on it", 100,
     3600000},
    DSF_CFG_END,
};
#undef S

int runner_config_sections(struct dsf_cfg_section *out, size_t cap, struct runner_config *rc,
                           struct scale_config *sc, char *err, size_t errlen)
{
    if (cap < RUNNER_CONFIG_SECTIONS) {
        snprintf(err, errlen, "runner config: room for %zu sections, %d needed", cap,
                 RUNNER_CONFIG_SECTIONS);
        return -1;
    }
    const struct fed_driver *k8s = &fed_driver_kubernetes;
    rc->k8s.driver_options = calloc(1, k8s->options_size);
    if (!rc->k8s.driver_options) {
        snprintf(err, errlen, "runner config: out of memory");
        return -1;
    }
    size_t n = 0;
    out[n++] = (struct dsf_cfg_section){"runner", runner_keys, rc, NULL};
    out[n++] = (struct dsf_cfg_section){"runner.kubernetes.federation", fed_options_keys,
                                        &rc->k8s.fed, NULL};
    out[n++] =
        (struct dsf_cfg_section){"runner.kubernetes", k8s->keys, rc->k8s.driver_options, NULL};
    out[n++] = (struct dsf_cfg_section){"scale", scale_keys, sc, NULL};
    return (int)n;
}

void runner_config_free(struct runner_config *rc)
{
    free(rc->k8s.driver_options);
    rc->k8s.driver_options = NULL;
}

int runner_config_validate(const struct runner_config *rc, const struct scale_config *sc, char *err,
                           size_t errlen)
{
    enum fed_scale_kind kind;
    if (strcmp(rc->kind, "none") && strcmp(rc->kind, "local") && strcmp(rc->kind, "kubernetes"))
        snprintf(err, errlen, "runner.kind: '%s' is not none, local or kubernetes", rc->kind);
    else if (fed_scale_kind_parse(rc->k8s.kind, &kind) < 0)
        snprintf(err, errlen,
                 "runner.kubernetes.kind: '%s' is not deployment or "
                 "machinedeployment",
                 rc->k8s.kind);
    else if (!strcmp(rc->kind, "local") && !rc->local.dir[0])
        snprintf(err, errlen, "runner.local.dir: empty, and the local runner needs a directory");
    else if (sc->min > sc->max)
        snprintf(err, errlen, "scale.min: %lld is above scale.max %lld", (long long)sc->min,
                 (long long)sc->max);
    else
        return 0;
    return -1;
}

void scale_policy_from_config(const struct scale_config *sc, struct scale_policy *p)
{
    *p = (struct scale_policy){
        .min = (int)sc->min,
        .max = (int)sc->max,
        .target_points_per_s = sc->target_points_per_s,
        .target_cpu = sc->target_cpu,
        .target_lag = sc->target_lag,
        .in_ratio = sc->in_ratio,
        .cooldown_out_ms = sc->cooldown_out_ms,
        .cooldown_in_ms = sc->cooldown_in_ms,
        .sustain_ms = sc->sustain_ms,
    };
}

struct runner *runner_new(struct event_base *base, const struct runner_config *cfg, char *err,
                          size_t errlen)
{
    err[0] = 0;
    if (!strcmp(cfg->kind, "local"))
        return runner_local_new(base, cfg, err, errlen);
    if (!strcmp(cfg->kind, "kubernetes"))
        return runner_k8s_new(base, cfg, err, errlen);
    return NULL;
}
