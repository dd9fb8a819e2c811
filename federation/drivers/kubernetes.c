/*
 * Kubernetes driver: cordon and uncordon nodes, drain them through the Eviction API (so that
 * PodDisruptionBudgets are honoured), scale Deployments and Cluster API MachineDeployments
 * through their /scale subresource. It talks REST to the API server with the credentials of
 * a kubeconfig or of the pod's service account; every call supports dryRun=All.
 */
#define DSF_MODULE "fed-k8s"
#include "common/log.h"
#include "federation/api_json.h"
#include "federation/driver.h"
#include "federation/kubeconfig.h"
#include "federation/rest.h"

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PAGES 10000

struct k8s_options {
    char *kubeconfig, *context, *sa_dir, *capi_version;
    int in_cluster;
    int64_t timeout_ms, retries, drain_timeout_ms, eviction_retry_ms, poll_ms, page_size;
};

#define K(f) offsetof(struct k8s_options, f)
static const struct dsf_cfg_key k8s_keys[] = {
    {"kubeconfig", DSF_CFG_STR, NULL, K(kubeconfig),
     "kubeconfig file (JSON or kubectl's block YAML); unset: $KUBECONFIG, ~/.kube/config, "
     "then the pod's service account",
     0, 0},
    {"context", DSF_CFG_STR, NULL, K(context), "kubeconfig context; unset: current-context", 0, 0},
    {"in_cluster", DSF_CFG_BOOL, "false", K(in_cluster),
     "use the pod's service account even when a kubeconfig exists", 0, 0},
    {"service_account_dir", DSF_CFG_STR, "/var/run/secrets/kubernetes.io/serviceaccount", K(sa_dir),
     "where the service account's token, ca.crt and namespace are", 0, 0},
    {"timeout", DSF_CFG_DURATION, "10s", K(timeout_ms), "timeout of one API request", 100, 600000},
    {"retries", DSF_CFG_INT, "3", K(retries),
     "retries of a request after a network error, 5xx or 429 (exponential backoff)", 0, 10},
    {"drain_timeout", DSF_CFG_DURATION, "5m", K(drain_timeout_ms),
     "how long a drain may take when the caller gives no timeout", 1000, 86400000},
    {"eviction_retry", DSF_CFG_DURATION, "5s", K(eviction_retry_ms),
     "wait before retrying evictions a PodDisruptionBudget refused (429)", 10, 600000},
    {"poll_interval", DSF_CFG_DURATION, "1s", K(poll_ms),
     "how often a drain checks whether the evicted pods are gone", 10, 60000},
    {"page_size", DSF_CFG_INT, "500", K(page_size), "pods per list page (limit/continue)", 1,
     10000},
    {"capi_version", DSF_CFG_STR, "v1beta1", K(capi_version),
     "Cluster API version of cluster.x-k8s.io MachineDeployments", 0, 0},
    DSF_CFG_END,
};
#undef K

struct k8s_ctx {
    const struct k8s_options *o;
    struct kube_config kc;
    struct fed_rest *rest;
};

/* ---- plumbing ---- */

static int call(struct k8s_ctx *c, const char *method, const char *path, const char *ctype,
                const char *body, int flags, struct fed_rest_result *res, struct fed_error *err)
{
    struct fed_rest_call rc = {
        .method = method, .path = path, .content_type = ctype, .body = body, .flags = flags};
    if (fed_rest_do(c->rest, &rc, res, NULL, 0) == 0)
        return 0;
    return fed_rest_fail(err, c->rest, &rc, res);
}

/* Appends "/seg" escaped. */
static void seg(struct dsf_buf *b, const char *s)
{
    buf_putc(b, '/');
    fed_rest_escape(b, s);
}

static int check_name(const char *what, const char *name, struct fed_error *err)
{
    if (!name || !name[0] || strlen(name) >= K8S_NAME_MAX)
        return fed_fail(err, FED_EINVAL, "kubernetes", 0, "%s name '%s' is empty or too long", what,
                        name ? name : "");
    return 0;
}

static int oom(struct fed_error *err, const char *what)
{
    return fed_fail(err, FED_EIO, what, 0, "out of memory");
}

/* ---- open / close ---- */

static void *k8s_open(const void *options, const char *state_dir, struct fed_bus *bus,
                      struct fed_error *err)
{
    const struct k8s_options *o = options;
    struct k8s_ctx *c = calloc(1, sizeof(*c));
    if (!c) {
        oom(err, "open kubernetes");
        return NULL;
    }
    c->o = o;
    char msg[512];
    int rc = o->in_cluster ? kubeconfig_in_cluster(o->sa_dir, &c->kc, msg, sizeof(msg))
                           : kubeconfig_resolve(o->kubeconfig, o->context, o->sa_dir, &c->kc, msg,
                                                sizeof(msg));
    if (rc) {
        fed_fail(err, FED_EINVAL, "open kubernetes", 0, "%s", msg);
        free(c);
        return NULL;
    }
    struct fed_rest_config rcfg = {
        .timeout_ms = (long)o->timeout_ms,
        .max_attempts = (int)o->retries + 1,
    };
    kubeconfig_rest_config(&c->kc, &rcfg);
    c->rest = fed_rest_new(&rcfg, msg, sizeof(msg));
    if (!c->rest) {
        fed_fail(err, FED_EINVAL, "open kubernetes", 0, "%s", msg);
        kubeconfig_free(&c->kc);
        free(c);
        return NULL;
    }
    log_info("API server %s (%s%s%s)", c->kc.server, c->kc.origin,
             c->kc.context ? ", context " : "", c->kc.context ? c->kc.context : "");
    return c;
}

static void k8s_close(void *ctx)
{
    struct k8s_ctx *c = ctx;
    if (!c)
        return;
    fed_rest_free(c->rest);
    kubeconfig_free(&c->kc);
    free(c);
}

/* ---- cordon ---- */

static int k8s_cordon(void *ctx, const char *node, int on, int dry_run, struct fed_error *err)
{
    struct k8s_ctx *c = ctx;
    if (check_name("node", node, err))
        return -1;
    struct dsf_buf path = {0};
    buf_puts(&path, "/api/v1/nodes");
    seg(&path, node);
    if (dry_run)
        buf_puts(&path, "?dryRun=All");
    const char *body =
        on ? "{\"spec\":{\"unschedulable\":true}}" : "{\"spec\":{\"unschedulable\":false}}";
    struct fed_rest_result res = {0};
    int rc = path.oom ? oom(err, "cordon")
                      : call(c, "PATCH", buf_cstr(&path), "application/strategic-merge-patch+json",
                             body, 0, &res, err);
    struct k8s_node n;
    if (rc == 0)
        rc = k8s_parse_node(res.body.data, res.body.len, &n, err);
    char cname[96];
    snprintf(cname, sizeof(cname), "PATCH %s", buf_cstr(&path));
    if (rc == 0 && n.unschedulable != !!on)
        rc = fed_fail(err, FED_EBACKEND, cname, (int)res.status,
                      "node %s: spec.unschedulable is %s after the patch", node,
                      n.unschedulable ? "true" : "false");
    if (rc == 0)
        log_info("node %s %s%s", node, on ? "cordoned" : "uncordoned", dry_run ? " (dry run)" : "");
    fed_rest_result_free(&res);
    buf_free(&path);
    return rc;
}

/* ---- drain ---- */

struct victim {
    const struct k8s_pod *pod;
    int evicted;
};

static int list_page(struct k8s_ctx *c, const char *node, const char *cont,
                     struct k8s_pod_list *list, struct fed_error *err)
{
    struct dsf_buf path = {0};
    buf_puts(&path, "/api/v1/pods?fieldSelector=");
    char sel[K8S_NAME_MAX + 32];
    snprintf(sel, sizeof(sel), "spec.nodeName=%s", node);
    fed_rest_escape(&path, sel);
    buf_printf(&path, "&limit=%lld", (long long)c->o->page_size);
    if (cont[0]) {
        buf_puts(&path, "&continue=");
        fed_rest_escape(&path, cont);
    }
    struct fed_rest_result res = {0};
    int rc = path.oom ? oom(err, "list pods")
                      : call(c, "GET", buf_cstr(&path), NULL, NULL, 0, &res, err);
    if (rc == 0)
        rc = k8s_parse_pod_list(res.body.data, res.body.len, list, err);
    fed_rest_result_free(&res);
    buf_free(&path);
    return rc;
}

/* Every pod on the node, following continue tokens. */
static int list_node_pods(struct k8s_ctx *c, const char *node, struct k8s_pod_list *list,
                          struct fed_error *err)
{
    char cont[sizeof(list->cont)] = "";
    for (int page = 0; page < MAX_PAGES; page++) {
        if (list_page(c, node, cont, list, err))
            return -1;
        if (!list->cont[0])
            return 0;
        if (!strcmp(list->cont, cont)) /* a server repeating itself would loop forever */
            return fed_fail(err, FED_EBACKEND, "GET /api/v1/pods", 0,
                            "the server returned the same continue token twice");
        memcpy(cont, list->cont, sizeof(cont));
    }
    return fed_fail(err, FED_EBACKEND, "GET /api/v1/pods", 0, "more than %d pages of pods",
                    MAX_PAGES);
}

static char *eviction_body(const struct k8s_pod *p, int grace_s, int dry_run)
{
    json_t *opts = json_object();
    if (grace_s >= 0)
        json_object_set_new(opts, "gracePeriodSeconds", json_integer(grace_s));
    if (dry_run)
        json_object_set_new(opts, "dryRun", json_pack("[s]", "All"));
    json_t *body = json_pack("{s:s, s:s, s:{s:s, s:s}}", "apiVersion", "policy/v1", "kind",
                             "Eviction", "metadata", "name", p->name, "namespace", p->ns);
    if (body && opts && json_object_size(opts))
        json_object_set(body, "deleteOptions", opts);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(opts);
    json_decref(body);
    return text;
}

/* 0 evicted (or already gone), 1 refused by a PodDisruptionBudget (429), -1 error. */
static int evict(struct k8s_ctx *c, const struct k8s_pod *p, int grace_s, int dry_run,
                 char *blocked_msg, size_t blen, struct fed_error *err)
{
    struct dsf_buf path = {0};
    buf_puts(&path, "/api/v1/namespaces");
    seg(&path, p->ns);
    buf_puts(&path, "/pods");
    seg(&path, p->name);
    buf_puts(&path, "/eviction");
    if (dry_run)
        buf_puts(&path, "?dryRun=All");
    char *body = eviction_body(p, grace_s, dry_run);
    struct fed_rest_result res = {0};
    int rc = !body || path.oom
                 ? oom(err, "evict")
                 : call(c, "POST", buf_cstr(&path), NULL, body, FED_REST_NO_RETRY_429, &res, err);
    if (rc && res.status == 404) {
        rc = 0; /* gone already: what a drain wants */
    } else if (rc && res.status == 429) {
        char reason[64];
        k8s_status_message(res.body.data, res.body.len, blocked_msg, blen, reason, sizeof(reason));
        rc = 1;
    }
    if (rc == 0)
        log_info("evicted pod %s/%s%s", p->ns, p->name, dry_run ? " (dry run)" : "");
    fed_rest_result_free(&res);
    buf_free(&path);
    free(body);
    return rc;
}

static int64_t remaining_ms(int64_t deadline)
{
    int64_t left = deadline - fed_now_ms();
    return left > 0 ? left : 0;
}

static int evict_all(struct k8s_ctx *c, const char *node, struct victim *v, size_t n,
                     const struct fed_drain_options *o, int64_t deadline, struct fed_error *err)
{
    char msg[400] = "", who[K8S_NAME_MAX + 64] = "";
    int grace = o ? o->grace_period_s : -1, dry = o && o->dry_run;
    for (int round = 1;; round++) {
        size_t blocked = 0;
        for (size_t i = 0; i < n; i++) {
            if (v[i].evicted)
                continue;
            int r = evict(c, v[i].pod, grace, dry, msg, sizeof(msg), err);
            if (r < 0)
                return -1;
            v[i].evicted = r == 0;
            if (r == 1 && !blocked++)
                snprintf(who, sizeof(who), "%s/%s", v[i].pod->ns, v[i].pod->name);
        }
        if (!blocked)
            return 0;
        if (remaining_ms(deadline) < c->o->eviction_retry_ms)
            return fed_fail(err, FED_ETIMEOUT, "drain", 429,
                            "node %s: %zu pod(s) still refused by a PodDisruptionBudget after "
                            "%d attempts, e.g. %s: %s",
                            node, blocked, round, who, msg[0] ? msg : "(no message)");
        log_info("node %s: %zu pod(s) refused by a PodDisruptionBudget (e.g. %s), retrying in "
                 "%lld ms",
                 node, blocked, who, (long long)c->o->eviction_retry_ms);
        fed_sleep_ms(c->o->eviction_retry_ms);
    }
}

static int still_there(const struct victim *v, const struct k8s_pod_list *now)
{
    for (size_t j = 0; j < now->n; j++) {
        const struct k8s_pod *p = &now->pods[j];
        /* A pod recreated under the same name (StatefulSet) has a new uid: the old is gone. */
        if (!strcmp(p->ns, v->pod->ns) && !strcmp(p->name, v->pod->name) &&
            (!v->pod->uid[0] || !strcmp(p->uid, v->pod->uid)))
            return 1;
    }
    return 0;
}

static int wait_gone(struct k8s_ctx *c, const char *node, const struct victim *v, size_t n,
                     int64_t deadline, struct fed_error *err)
{
    for (;;) {
        struct k8s_pod_list now = {0};
        if (list_node_pods(c, node, &now, err)) {
            k8s_pod_list_free(&now);
            return -1;
        }
        size_t left = 0;
        const struct victim *first = NULL;
        for (size_t i = 0; i < n; i++)
            if (still_there(&v[i], &now) && !left++)
                first = &v[i];
        k8s_pod_list_free(&now);
        if (!left)
            return 0;
        if (!remaining_ms(deadline))
            return fed_fail(err, FED_ETIMEOUT, "drain", 0,
                            "node %s: %zu evicted pod(s) still present when the time ran out, "
                            "e.g. %s/%s",
                            node, left, first->pod->ns, first->pod->name);
        int64_t wait =
            c->o->poll_ms < remaining_ms(deadline) ? c->o->poll_ms : remaining_ms(deadline);
        fed_sleep_ms(wait);
    }
}

static size_t pick_victims(const char *node, const struct k8s_pod_list *pods, struct victim *v)
{
    size_t n = 0;
    for (size_t i = 0; i < pods->n; i++) {
        const struct k8s_pod *p = &pods->pods[i];
        if (k8s_pod_skipped_by_drain(p)) {
            log_info("node %s: leaving %s pod %s/%s", node, p->mirror ? "mirror" : "DaemonSet",
                     p->ns, p->name);
            continue;
        }
        v[n].pod = p;
        v[n].evicted = p->terminating; /* already on its way out: only wait for it */
        n++;
    }
    return n;
}

/* What was evicted, for the caller's record (a dry run's plan). */
static void list_evicted(const struct victim *v, size_t n, const struct fed_drain_options *o)
{
    if (!o || !o->evicted || !o->evicted_len)
        return;
    size_t len = 0;
    o->evicted[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(o->evicted + len, o->evicted_len - len, "%s%s/%s", len ? " " : "",
                         v[i].pod->ns, v[i].pod->name);
        if (w < 0 || (size_t)w >= o->evicted_len - len) {
            o->evicted[len] = '\0';
            return;
        }
        len += (size_t)w;
    }
}

static int k8s_drain(void *ctx, const char *node, const struct fed_drain_options *o,
                     struct fed_error *err)
{
    struct k8s_ctx *c = ctx;
    int64_t timeout = o && o->timeout_ms > 0 ? o->timeout_ms : c->o->drain_timeout_ms;
    int64_t deadline = fed_now_ms() + timeout;
    int dry = o && o->dry_run;
    if (k8s_cordon(ctx, node, 1, dry, err))
        return -1;
    struct k8s_pod_list pods = {0};
    if (list_node_pods(c, node, &pods, err)) {
        k8s_pod_list_free(&pods);
        return -1;
    }
    struct victim *v = calloc(pods.n + 1, sizeof(*v));
    if (!v) {
        k8s_pod_list_free(&pods);
        return oom(err, "drain");
    }
    size_t n = pick_victims(node, &pods, v);
    int rc = evict_all(c, node, v, n, o, deadline, err);
    if (rc == 0 && !dry)
        rc = wait_gone(c, node, v, n, deadline, err);
    if (rc == 0) {
        list_evicted(v, n, o);
        log_info("node %s drained: %zu pod(s) evicted, %zu left in place%s", node, n, pods.n - n,
                 dry ? " (dry run)" : "");
    }
    free(v);
    k8s_pod_list_free(&pods);
    return rc;
}

/* ---- scale ---- */

static int scale_path(struct k8s_ctx *c, enum fed_scale_kind kind, const char *ns, const char *name,
                      int dry_run, struct dsf_buf *b)
{
    if (kind == FED_SCALE_DEPLOYMENT) {
        buf_puts(b, "/apis/apps/v1/namespaces");
    } else if (kind == FED_SCALE_MACHINEDEPLOYMENT) {
        buf_puts(b, "/apis/cluster.x-k8s.io");
        seg(b, c->o->capi_version ? c->o->capi_version : "v1beta1");
        buf_puts(b, "/namespaces");
    } else {
        return -1;
    }
    seg(b, ns);
    buf_puts(b, kind == FED_SCALE_DEPLOYMENT ? "/deployments" : "/machinedeployments");
    seg(b, name);
    buf_puts(b, "/scale");
    if (dry_run)
        buf_puts(b, "?dryRun=All");
    return b->oom ? -1 : 0;
}

static int get_scale(struct k8s_ctx *c, const char *path, int *replicas, struct fed_error *err)
{
    struct fed_rest_result res = {0};
    int rc = call(c, "GET", path, NULL, NULL, 0, &res, err);
    if (rc == 0)
        rc = k8s_parse_scale(res.body.data, res.body.len, replicas, NULL, err);
    fed_rest_result_free(&res);
    return rc;
}

static int k8s_scale(void *ctx, enum fed_scale_kind kind, const char *ns, const char *name,
                     int replicas, int dry_run, int *old_replicas, struct fed_error *err)
{
    struct k8s_ctx *c = ctx;
    if (!ns || !ns[0])
        ns = c->kc.namespace ? c->kc.namespace : "default";
    if (check_name("namespace", ns, err) || check_name(fed_scale_kind_name(kind), name, err))
        return -1;
    if (replicas < 0)
        return fed_fail(err, FED_EINVAL, "scale", 0, "replicas %d is negative", replicas);
    if (old_replicas)
        *old_replicas = -1;
    struct dsf_buf get = {0}, patch = {0};
    if (scale_path(c, kind, ns, name, 0, &get) || scale_path(c, kind, ns, name, dry_run, &patch)) {
        buf_free(&get);
        buf_free(&patch);
        return fed_fail(err, FED_EINVAL, "scale", 0, "unknown kind or out of memory");
    }
    int before = -1, after = -1;
    char body[64];
    snprintf(body, sizeof(body), "{\"spec\":{\"replicas\":%d}}", replicas);
    struct fed_rest_result res = {0};
    int rc = get_scale(c, buf_cstr(&get), &before, err);
    if (rc == 0)
        rc = call(c, "PATCH", buf_cstr(&patch), "application/merge-patch+json", body, 0, &res, err);
    if (rc == 0)
        rc = k8s_parse_scale(res.body.data, res.body.len, &after, NULL, err);
    char cname[96];
    snprintf(cname, sizeof(cname), "PATCH %s", buf_cstr(&patch));
    if (rc == 0 && after != replicas)
        rc = fed_fail(err, FED_EBACKEND, cname, (int)res.status,
                      "asked for %d replicas, the server answered %d", replicas, after);
    if (rc == 0) {
        if (old_replicas)
            *old_replicas = before;
        log_info("%s %s/%s scaled %d -> %d%s", fed_scale_kind_name(kind), ns, name, before,
                 replicas, dry_run ? " (dry run)" : "");
    }
    fed_rest_result_free(&res);
    buf_free(&get);
    buf_free(&patch);
    return rc;
}

static int k8s_scale_get(void *ctx, enum fed_scale_kind kind, const char *ns, const char *name,
                         int *replicas, struct fed_error *err)
{
    struct k8s_ctx *c = ctx;
    if (!ns || !ns[0])
        ns = c->kc.namespace ? c->kc.namespace : "default";
    if (check_name("namespace", ns, err) || check_name(fed_scale_kind_name(kind), name, err))
        return -1;
    struct dsf_buf get = {0};
    int rc = scale_path(c, kind, ns, name, 0, &get)
                 ? fed_fail(err, FED_EINVAL, "scale", 0, "unknown kind or out of memory")
                 : get_scale(c, buf_cstr(&get), replicas, err);
    buf_free(&get);
    return rc;
}

const struct fed_driver fed_driver_kubernetes = {
    .name = "kubernetes",
    .summary = "Kubernetes API: cordon, drain through the Eviction API, scale Deployments and "
               "Cluster API MachineDeployments",
    .keys = k8s_keys,
    .options_size = sizeof(struct k8s_options),
    .open = k8s_open,
    .close = k8s_close,
    .cordon = k8s_cordon,
    .drain = k8s_drain,
    .scale = k8s_scale,
    .scale_get = k8s_scale_get,
};
