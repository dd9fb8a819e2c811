/*
 * What starts and stops the members of a pool, behind one small interface: `local` spawns
 * and stops damselfly-collector processes (what `damselfly up` uses), `kubernetes` scales the
 * collector Deployment through the federation layer's Kubernetes driver.
 */
#ifndef DSF_BALANCER_RUNNER_H
#define DSF_BALANCER_RUNNER_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "federation/fed_options.h"

struct event_base;
struct runner;

struct runner_ops {
    const char *name; /* "local", "kubernetes" */
    /* How many members the runner has started and not stopped (what it was asked for):
     * local: its running members (one that exited on its own no longer counts);
     * kubernetes: the Deployment's spec.replicas, read from the API each call (someone else
     * may have scaled it). -1 when it cannot tell (logged). */
    int (*replicas)(struct runner *r);
    /* Starts members until it runs `want` of them (never stops any). 0, or -1 with err. */
    int (*scale_out)(struct runner *r, int want, char *err, size_t errlen);
    /* Stops the member `id` (the balancer has moved its buckets away first); NULL id: any
     * one. local: SIGTERM, SIGKILL after runner.local.stop_timeout, reaped on the loop;
     * kubernetes: replicas - 1, and the Deployment picks its own pod whatever id says.
     * Returns once the stop is under way. 0, or -1 with err. */
    int (*stop)(struct runner *r, const char *id, char *err, size_t errlen);
    /* 1 when the runner started the member `id` (its scale-in victims are chosen among
     * these). kubernetes: the id begins with "DEPLOYMENT-" (a pod's name). */
    int (*owns)(struct runner *r, const char *id);
    void (*free)(struct runner *r);
};

struct runner {
    const struct runner_ops *ops;
};

/* runner.local.*: collector processes on this host. */
struct runner_local_config {
    char *collector;         /* the damselfly-collector binary; "": next to this program */
    char *config;            /* a collector config file every member loads (-c); "": none */
    char *id_prefix;         /* members are PREFIX-1, PREFIX-2, ... */
    char *dir;               /* DIR/ID/ holds a member's spool and log; DIR/children.json */
    struct dsf_strlist set;  /* more --set items for every member */
    char *http_listen;       /* a member's http.listen ("": off) */
    int64_t http_port_base;  /* > 0: member N listens on http_listen's host, port base + N */
    int64_t stop_timeout_ms; /* SIGTERM, then SIGKILL this long after */
};

/* runner.kubernetes.*: the collector Deployment through the federation layer. */
struct runner_k8s_config {
    char *ns, *name, *kind; /* namespace, deployment name, deployment|machinedeployment */
    char *state_dir;        /* the federation handle's state directory */
    struct fed_options fed; /* runner.kubernetes.federation.* */
    void *driver_options;   /* the kubernetes driver's own keys, runner.kubernetes.* */
};

struct runner_config {
    char *kind; /* none, local, kubernetes */
    struct runner_local_config local;
    struct runner_k8s_config k8s;
};

/* scale.*: what struct scale_policy (policy.h) is filled from. */
struct scale_config {
    int64_t min, max;
    double target_points_per_s, target_cpu;
    int64_t target_lag;
    double in_ratio;
    int64_t cooldown_out_ms, cooldown_in_ms, sustain_ms;
    int64_t interval_ms; /* how often the balancer decides (while it leads) */
};

/* The most sections runner_config_sections writes. */
#define RUNNER_CONFIG_SECTIONS 4
/*
 * The runner.* and scale.* sections on rc and sc (the way a daemon lists its sections for
 * dsf_cli: unknown keys under them are refused). Writes at most cap sections (without a
 * terminator) and returns how many, or -1 with err (out of memory, cap too small). Free with
 * runner_config_free after dsf_cfg_free.
 */
int runner_config_sections(struct dsf_cfg_section *out, size_t cap, struct runner_config *rc,
                           struct scale_config *sc, char *err, size_t errlen);
void runner_config_free(struct runner_config *rc);
/* Values the tables cannot check alone (runner.kind, kind, min <= max). 0, or -1 with err
 * naming the key. */
int runner_config_validate(const struct runner_config *rc, const struct scale_config *sc, char *err,
                           size_t errlen);
struct scale_policy;
void scale_policy_from_config(const struct scale_config *sc, struct scale_policy *p);

/* The runner runner.kind names; NULL with err[0] == 0 for "none", NULL with err on failure. */
struct runner *runner_new(struct event_base *base, const struct runner_config *cfg, char *err,
                          size_t errlen);
struct runner *runner_local_new(struct event_base *base, const struct runner_config *cfg, char *err,
                                size_t errlen);
struct runner *runner_k8s_new(struct event_base *base, const struct runner_config *cfg, char *err,
                              size_t errlen);

#endif
