/*
 * The kubernetes runner: the pool is the collector Deployment, scaled through the federation
 * layer's Kubernetes driver (its /scale subresource). The Deployment, not the balancer,
 * chooses which pod goes on a scale in.
 */
#define DSF_MODULE "runner-k8s"
#include "balancer/runner.h"
#include "common/log.h"
#include "federation/driver.h"
#include "federation/federation.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct k8s_runner {
    struct runner base;
    const struct runner_k8s_config *cfg;
    enum fed_scale_kind kind;
    struct fed *fed;
};

static int fail(char *err, size_t errlen, const char *what, const struct fed_error *fe)
{
    char msg[700];
    snprintf(err, errlen, "%s: %s", what, fed_error_format(fe, msg, sizeof(msg)));
    return -1;
}

static int get_replicas(struct k8s_runner *k, int *n, char *err, size_t errlen)
{
    struct fed_error fe = {0};
    if (fed_scale_get(k->fed, k->kind, k->cfg->ns, k->cfg->name, n, &fe) < 0)
        return fail(err, errlen, "cannot read the collector Deployment's replicas", &fe);
    return 0;
}

static int set_replicas(struct k8s_runner *k, int n, char *err, size_t errlen)
{
    struct fed_error fe = {0};
    int old = -1;
    if (fed_scale(k->fed, k->kind, k->cfg->ns, k->cfg->name, n, 0, &old, &fe) < 0)
        return fail(err, errlen, "cannot scale the collector Deployment", &fe);
    log_info("%s %s/%s: replicas %d -> %d", fed_scale_kind_name(k->kind), k->cfg->ns, k->cfg->name,
             old, n);
    return 0;
}

/* spec.replicas, read each time: someone else (kubectl, an HPA) may have changed it. */
static int k8s_replicas(struct runner *r)
{
    struct k8s_runner *k = (struct k8s_runner *)r;
    char err[800];
    int n = -1;
    if (get_replicas(k, &n, err, sizeof(err)) < 0)
        log_warn("%s", err);
    return n;
}

static int k8s_scale_out(struct runner *r, int want, char *err, size_t errlen)
{
    struct k8s_runner *k = (struct k8s_runner *)r;
    int n;
    if (get_replicas(k, &n, err, errlen) < 0)
        return -1;
    return n >= want ? 0 : set_replicas(k, want, err, errlen);
}

static int k8s_stop(struct runner *r, const char *id, char *err, size_t errlen)
{
    struct k8s_runner *k = (struct k8s_runner *)r;
    int n;
    if (get_replicas(k, &n, err, errlen) < 0)
        return -1;
    if (n <= 0) {
        snprintf(err, errlen, "cannot stop %s: the collector Deployment %s/%s has no replica",
                 id ? id : "a member", k->cfg->ns, k->cfg->name);
        return -1;
    }
    return set_replicas(k, n - 1, err, errlen);
}

/* Pods of a Deployment are named NAME-<replicaset hash>-<pod hash>, and a collector's id
 * defaults to its host name, the pod's name. */
static int k8s_owns(struct runner *r, const char *id)
{
    struct k8s_runner *k = (struct k8s_runner *)r;
    size_t l = strlen(k->cfg->name);
    return id && !strncmp(id, k->cfg->name, l) && id[l] == '-';
}

static void k8s_free(struct runner *r)
{
    struct k8s_runner *k = (struct k8s_runner *)r;
    if (!k)
        return;
    fed_close(k->fed);
    free(k);
}

static const struct runner_ops k8s_ops = {
    .name = "kubernetes",
    .replicas = k8s_replicas,
    .scale_out = k8s_scale_out,
    .stop = k8s_stop,
    .owns = k8s_owns,
    .free = k8s_free,
};

struct runner *runner_k8s_new(struct event_base *base, const struct runner_config *cfg, char *err,
                              size_t errlen)
{
    struct k8s_runner *k = calloc(1, sizeof(*k));
    if (!k) {
        snprintf(err, errlen, "kubernetes runner: out of memory");
        return NULL;
    }
    k->base.ops = &k8s_ops;
    k->cfg = &cfg->k8s;
    if (fed_scale_kind_parse(cfg->k8s.kind, &k->kind) < 0) {
        snprintf(err, errlen,
                 "runner.kubernetes.kind: '%s' is not deployment or "
                 "machinedeployment",
                 cfg->k8s.kind);
        free(k);
        return NULL;
    }
    struct fed_config fc = {
        .state_dir = cfg->k8s.state_dir,
        .driver_options = cfg->k8s.driver_options,
    };
    fed_options_apply(&cfg->k8s.fed, &fc);
    struct fed_error fe = {0};
    k->fed = fed_open_driver(&fed_driver_kubernetes, &fc, &fe);
    if (!k->fed) {
        fail(err, errlen, "kubernetes runner: cannot open the kubernetes driver", &fe);
        free(k);
        return NULL;
    }
    return &k->base;
}
