/*
 * The routing file: Alertmanager's configuration shape (route tree, receivers with
 * slack/email/webhook/alertmanager configs) in JSON. Each object's scalar keys are read by a
 * common/config.h table, which rejects unknown keys and bad values; this file walks the
 * tree and names the path ("route.routes[1]") in every error.
 */
#include "alarm/notify/internal.h"
#include "common/config.h"

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -1)

struct route_keys {
    char *receiver;
    struct dsf_strlist group_by, matchers;
    int64_t group_wait, group_interval, repeat_interval;
    int cont;
};

static const struct dsf_cfg_key route_table[] = {
    {"receiver", DSF_CFG_STR, NULL, offsetof(struct route_keys, receiver),
     "Receiver of the alerts this route takes (inherited when unset).", 0, 0},
    {"group_by", DSF_CFG_STRLIST, NULL, offsetof(struct route_keys, group_by),
     "Labels that split alerts into groups; [\"...\"] groups by every label.", 0, 0},
    {"matchers", DSF_CFG_STRLIST, NULL, offsetof(struct route_keys, matchers),
     "Label matchers (name=value, !=, =~, !~), all must match.", 0, 0},
    {"group_wait", DSF_CFG_DURATION, NULL, offsetof(struct route_keys, group_wait),
     "Wait before a new group's first notification.", 0, 864e5},
    {"group_interval", DSF_CFG_DURATION, NULL, offsetof(struct route_keys, group_interval),
     "Wait between notifications about changes of a group.", 1, 864e5},
    {"repeat_interval", DSF_CFG_DURATION, NULL, offsetof(struct route_keys, repeat_interval),
     "Wait before re-sending an unchanged firing group.", 1, 864e6},
    {"continue", DSF_CFG_BOOL, NULL, offsetof(struct route_keys, cont),
     "Keep matching sibling routes after this one matched.", 0, 0},
    DSF_CFG_END};

struct recv_keys {
    char *name;
    double rate;
    int64_t burst, retry_initial, retry_max, retry_attempts, max_in_flight;
};

static const struct dsf_cfg_key recv_table[] = {
    {"name", DSF_CFG_STR, NULL, offsetof(struct recv_keys, name), "Receiver name.", 0, 0},
    {"rate_limit.per_second", DSF_CFG_DOUBLE, "0", offsetof(struct recv_keys, rate),
     "Notifications per second this receiver may send (0: unlimited).", 0, 1e6},
    {"rate_limit.burst", DSF_CFG_INT, "10", offsetof(struct recv_keys, burst),
     "Notifications sent at once before the rate applies.", 1, 1e6},
    {"retry.initial", DSF_CFG_DURATION, "500ms", offsetof(struct recv_keys, retry_initial),
     "First retry delay; doubles per attempt, with jitter.", 1, 36e5},
    {"retry.max", DSF_CFG_DURATION, "30s", offsetof(struct recv_keys, retry_max),
     "Longest retry delay.", 1, 36e5},
    {"max_in_flight", DSF_CFG_INT, "8", offsetof(struct recv_keys, max_in_flight),
     "Requests to this receiver at once; a storm of groups queues behind them.", 1, 1000},
    {"retry.attempts", DSF_CFG_INT, "6", offsetof(struct recv_keys, retry_attempts),
     "Attempts per notification before it counts as failed.", 1, 100},
    DSF_CFG_END};

#define S(f) offsetof(struct nf_slack_opts, f)
static const struct dsf_cfg_key slack_table[] = {
    {"api_url", DSF_CFG_STR, NULL, S(url), "Incoming webhook URL.", 0, 0},
    {"channel", DSF_CFG_STR, NULL, S(channel), "Channel override.", 0, 0},
    {"username", DSF_CFG_STR, NULL, S(username), "User name override.", 0, 0},
    {"icon_emoji", DSF_CFG_STR, NULL, S(icon_emoji), "Icon override.", 0, 0},
    {"send_resolved", DSF_CFG_BOOL, "true", S(send_resolved), "Notify resolved alerts.", 0, 0},
    {"timeout", DSF_CFG_DURATION, "10s", S(timeout_ms), "Request timeout.", 1, 6e5},
    DSF_CFG_END};
#undef S
#define E(f) offsetof(struct nf_email_opts, f)
static const struct dsf_cfg_key email_table[] = {
    {"to", DSF_CFG_STR, NULL, E(to), "Recipient address(es), comma separated.", 0, 0},
    {"from", DSF_CFG_STR, NULL, E(from), "Sender address.", 0, 0},
    {"smarthost", DSF_CFG_STR, NULL, E(smarthost), "SMTP server host:port.", 0, 0},
    {"hello", DSF_CFG_STR, "localhost", E(hello), "Name sent in EHLO.", 0, 0},
    {"auth_username", DSF_CFG_STR, NULL, E(auth_username), "SMTP AUTH user.", 0, 0},
    {"auth_password", DSF_CFG_STR, NULL, E(auth_password), "SMTP AUTH password.", 0, 0},
    {"ca_file", DSF_CFG_FILE, NULL, E(ca_file), "Extra CA certificates (PEM).", 0, 0},
    {"require_tls", DSF_CFG_BOOL, "true", E(require_tls),
     "Refuse to send unless STARTTLS (or TLS on port 465) succeeds; false allows plain text "
     "(loopback test servers only).",
     0, 0},
    {"send_resolved", DSF_CFG_BOOL, "true", E(send_resolved), "Notify resolved alerts.", 0, 0},
    {"timeout", DSF_CFG_DURATION, "30s", E(timeout_ms), "Session timeout.", 1, 6e5},
    DSF_CFG_END};
#undef E
#define W(f) offsetof(struct nf_webhook_opts, f)
static const struct dsf_cfg_key webhook_table[] = {
    {"url", DSF_CFG_STR, NULL, W(url), "Endpoint receiving the v4 JSON body.", 0, 0},
    {"bearer_token", DSF_CFG_STR, NULL, W(bearer_token), "Authorization: Bearer token.", 0, 0},
    {"send_resolved", DSF_CFG_BOOL, "true", W(send_resolved), "Notify resolved alerts.", 0, 0},
    {"max_alerts", DSF_CFG_INT, "0", W(max_alerts),
     "Alerts per body (0: all); the rest count in truncatedAlerts.", 0, 1e6},
    {"timeout", DSF_CFG_DURATION, "10s", W(timeout_ms), "Request timeout.", 1, 6e5},
    DSF_CFG_END};
#undef W
static const struct dsf_cfg_key am_table[] = {
    {"url", DSF_CFG_STR, NULL, offsetof(struct nf_am_opts, url),
     "Alertmanager base URL (http://host:9093).", 0, 0},
    {"timeout", DSF_CFG_DURATION, "10s", offsetof(struct nf_am_opts, timeout_ms),
     "Request timeout.", 1, 6e5},
    DSF_CFG_END};

static const struct {
    const char *key;
    enum nf_kind kind;
    const struct dsf_cfg_key *table;
} kinds[] = {{"slack_configs", NF_SLACK, slack_table},
             {"email_configs", NF_EMAIL, email_table},
             {"webhook_configs", NF_WEBHOOK, webhook_table},
             {"alertmanager_configs", NF_ALERTMANAGER, am_table}};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

/* Loads one JSON object through a table, leaving out the keys the tree walk handles. */
static int load_table(const struct dsf_cfg_key *table, void *obj, json_t *o, const char *skip[],
                      const char *origin, char *err, size_t errlen)
{
    struct dsf_cfg_section secs[] = {{"", table, obj, NULL}, {NULL, NULL, NULL, NULL}};
    char e[DSF_CFG_ERRLEN];
    if (dsf_cfg_defaults(secs, e, sizeof(e)))
        return ERR("%s", e);
    if (!json_is_object(o))
        return ERR("%s: expected an object", origin);
    json_t *copy = json_copy(o);
    for (size_t i = 0; skip && skip[i]; i++)
        json_object_del(copy, skip[i]);
    char *text = json_dumps(copy, JSON_COMPACT);
    json_decref(copy);
    if (!text)
        return ERR("%s: out of memory", origin);
    int rc = dsf_cfg_load_json(secs, text, strlen(text), origin, e, sizeof(e)) ||
             dsf_cfg_check_files(secs, origin, e, sizeof(e));
    free(text);
    if (rc) {
        /* The routing file's keys are documented in docs/alarm-notify.md, not in --help. */
        char *hint = strstr(e, " (see --help for the keys)");
        if (hint)
            *hint = '\0';
        return ERR("%s", e);
    }
    return 0;
}

static int check_url(const char *url, const char *origin, const char *key, char *err, size_t errlen)
{
    if (!url || !*url)
        return ERR("%s: key '%s' is required", origin, key);
    static const char *const schemes[] = {"http", "https", NULL};
    char why[300];
    if (dsf_check_url(url, schemes, 1, why, sizeof(why)))
        return ERR("%s: key '%s': '%s': %s", origin, key, url, why);
    return 0;
}

static int check_integration(struct nf_integration *in, const char *origin, char *err,
                             size_t errlen)
{
    switch (in->kind) {
    case NF_SLACK:
        return check_url(in->o.slack.url, origin, "api_url", err, errlen);
    case NF_WEBHOOK:
        return check_url(in->o.webhook.url, origin, "url", err, errlen);
    case NF_ALERTMANAGER:
        return check_url(in->o.am.url, origin, "url", err, errlen);
    case NF_EMAIL: {
        struct nf_email_opts *e = &in->o.email;
        if (!e->to || !*e->to)
            return ERR("%s: key 'to' is required", origin);
        if (!e->from || !*e->from)
            return ERR("%s: key 'from' is required", origin);
        const char *colon = e->smarthost ? strrchr(e->smarthost, ':') : NULL;
        if (!colon || colon == e->smarthost || atoi(colon + 1) <= 0 || atoi(colon + 1) > 65535)
            return ERR("%s: key 'smarthost': expected host:port, got '%s'", origin,
                       e->smarthost ? e->smarthost : "nothing");
        if (strpbrk(e->from, "\r\n") || strpbrk(e->to, "\r\n"))
            return ERR("%s: keys 'from'/'to' must not contain line breaks", origin);
        return 0;
    }
    }
    return 0;
}

static const struct dsf_cfg_key *kind_table(enum nf_kind k)
{
    for (size_t i = 0; i < NKINDS; i++)
        if (kinds[i].kind == k)
            return kinds[i].table;
    return NULL;
}

static void free_integration(struct nf_integration *in)
{
    struct dsf_cfg_section secs[] = {{"", kind_table(in->kind), &in->o, NULL},
                                     {NULL, NULL, NULL, NULL}};
    dsf_cfg_free(secs);
}

static int parse_integrations(struct nf_receiver *r, json_t *o, const char *origin, char *err,
                              size_t errlen)
{
    for (size_t k = 0; k < NKINDS; k++) {
        json_t *arr = json_object_get(o, kinds[k].key);
        if (!arr)
            continue;
        if (!json_is_array(arr))
            return ERR("%s: key '%s': expected an array", origin, kinds[k].key);
        size_t i;
        json_t *item;
        json_array_foreach(arr, i, item)
        {
            struct nf_integration *grown = realloc(r->ints, (r->nints + 1) * sizeof(*grown));
            if (!grown)
                return ERR("%s: out of memory", origin);
            r->ints = grown;
            struct nf_integration *in = &r->ints[r->nints];
            memset(in, 0, sizeof(*in));
            in->kind = kinds[k].kind;
            in->recv = r;
            in->index = r->nints++;
            char where[600];
            snprintf(where, sizeof(where), "%s.%s[%zu]", origin, kinds[k].key, i);
            if (load_table(kinds[k].table, &in->o, item, NULL, where, err, errlen) ||
                check_integration(in, where, err, errlen))
                return -1;
            if (in->kind == NF_ALERTMANAGER)
                r->has_am = 1;
        }
    }
    return 0;
}

static int parse_receiver(struct nf_receiver *r, json_t *o, const char *origin, char *err,
                          size_t errlen)
{
    static const char *skip[] = {"slack_configs", "email_configs", "webhook_configs",
                                 "alertmanager_configs", NULL};
    struct recv_keys k = {0};
    struct dsf_cfg_section secs[] = {{"", recv_table, &k, NULL}, {NULL, NULL, NULL, NULL}};
    int rc = load_table(recv_table, &k, o, skip, origin, err, errlen);
    if (rc == 0 && (!k.name || !*k.name))
        rc = ERR("%s: key 'name' is required", origin);
    if (rc == 0) {
        r->name = k.name;
        k.name = NULL;
        r->rate_per_s = k.rate;
        r->burst = k.burst;
        r->tokens = (double)k.burst;
        r->retry_initial_ms = k.retry_initial;
        r->retry_max_ms = k.retry_max;
        r->retry_attempts = k.retry_attempts;
        r->max_in_flight = k.max_in_flight;
        r->wait_tail = &r->wait_head;
        rc = parse_integrations(r, o, origin, err, errlen);
    }
    dsf_cfg_free(secs);
    return rc;
}

static int parse_matchers(struct nf_route *rt, struct dsf_strlist *l, const char *origin, char *err,
                          size_t errlen)
{
    if (l->count == 0)
        return 0;
    if (!(rt->m = calloc(l->count, sizeof(*rt->m))))
        return ERR("%s: out of memory", origin);
    for (size_t i = 0; i < l->count; i++) {
        char why[NF_ERRLEN];
        if (nf_matcher_parse(&rt->m[i], l->items[i], why, sizeof(why)))
            return ERR("%s: key 'matchers[%zu]': %s", origin, i, why);
        rt->nm++;
    }
    return 0;
}

static void route_key(struct nf_route *rt, const struct nf_route *parent)
{
    struct dsf_buf b = {0};
    if (parent) {
        buf_puts(&b, parent->key);
        buf_puts(&b, "/{");
        for (size_t i = 0; i < rt->nm; i++) {
            if (i)
                buf_putc(&b, ',');
            nf_matcher_print(&rt->m[i], &b);
        }
        buf_putc(&b, '}');
    } else {
        buf_puts(&b, "{}");
    }
    rt->key = strdup(buf_cstr(&b));
    buf_free(&b);
}

static int parse_route(struct nf_route *rt, const struct nf_route *parent, json_t *o,
                       const char *origin, char *err, size_t errlen);

static int parse_children(struct nf_route *rt, json_t *o, const char *origin, char *err,
                          size_t errlen)
{
    json_t *arr = json_object_get(o, "routes");
    if (!arr)
        return 0;
    if (!json_is_array(arr))
        return ERR("%s: key 'routes': expected an array", origin);
    size_t n = json_array_size(arr);
    if (n && !(rt->routes = calloc(n, sizeof(*rt->routes))))
        return ERR("%s: out of memory", origin);
    for (size_t i = 0; i < n; i++) {
        char where[600];
        snprintf(where, sizeof(where), "%s.routes[%zu]", origin, i);
        rt->nroutes = i + 1;
        if (parse_route(&rt->routes[i], rt, json_array_get(arr, i), where, err, errlen))
            return -1;
    }
    return 0;
}

/* Settings left out inherit the parent's, as in Alertmanager. */
static int parse_route(struct nf_route *rt, const struct nf_route *parent, json_t *o,
                       const char *origin, char *err, size_t errlen)
{
    static const char *skip[] = {"routes", NULL};
    struct route_keys k = {.group_wait = -1, .group_interval = -1, .repeat_interval = -1};
    struct dsf_cfg_section secs[] = {{"", route_table, &k, NULL}, {NULL, NULL, NULL, NULL}};
    int rc = load_table(route_table, &k, o, skip, origin, err, errlen);
    if (rc == 0) {
        rt->cont = k.cont;
        rt->group_wait_ms = k.group_wait >= 0 ? k.group_wait
                            : parent          ? parent->group_wait_ms
                                              : 30000;
        rt->group_interval_ms = k.group_interval >= 0 ? k.group_interval
                                : parent              ? parent->group_interval_ms
                                                      : 300000;
        rt->repeat_interval_ms = k.repeat_interval >= 0 ? k.repeat_interval
                                 : parent               ? parent->repeat_interval_ms
                                                        : 14400000;
        const char *recv = k.receiver ? k.receiver : parent ? parent->receiver_name : NULL;
        if (!recv)
            rc = ERR("%s: key 'receiver' is required on the top-level route", origin);
        else if (!(rt->receiver_name = strdup(recv)))
            rc = ERR("%s: out of memory", origin);
    }
    if (rc == 0 && !parent && (k.matchers.count || k.cont))
        rc = ERR("%s: the top-level route takes every alert: no 'matchers' or 'continue'", origin);
    if (rc == 0)
        rc = parse_matchers(rt, &k.matchers, origin, err, errlen);
    if (rc == 0) {
        const struct dsf_strlist *gb = k.group_by.count || !parent ? &k.group_by : NULL;
        if (gb) {
            rt->group_by = gb->count ? calloc(gb->count, sizeof(char *)) : NULL;
            for (size_t i = 0; i < gb->count; i++) {
                if (strcmp(gb->items[i], "...") == 0)
                    rt->group_all = 1;
                else if (!(rt->group_by[rt->ngroup_by++] = strdup(gb->items[i])))
                    rc = ERR("%s: out of memory", origin);
            }
            if (rt->group_all && gb->count > 1)
                rc =
                    ERR("%s: key 'group_by': '...' groups by every label and stands alone", origin);
        } else {
            rt->group_all = parent->group_all;
            rt->group_by = parent->ngroup_by ? calloc(parent->ngroup_by, sizeof(char *)) : NULL;
            for (size_t i = 0; i < parent->ngroup_by; i++)
                if (!(rt->group_by[rt->ngroup_by++] = strdup(parent->group_by[i])))
                    rc = ERR("%s: out of memory", origin);
        }
    }
    dsf_cfg_free(secs);
    if (rc == 0) {
        route_key(rt, parent);
        rc = parse_children(rt, o, origin, err, errlen);
    }
    return rc;
}

static void free_route(struct nf_route *rt)
{
    for (size_t i = 0; i < rt->nroutes; i++)
        free_route(&rt->routes[i]);
    free(rt->routes);
    for (size_t i = 0; i < rt->nm; i++)
        nf_matcher_free(&rt->m[i]);
    free(rt->m);
    for (size_t i = 0; i < rt->ngroup_by; i++)
        free(rt->group_by[i]);
    free(rt->group_by);
    free(rt->receiver_name);
    free(rt->key);
}

struct nf_receiver *nf_config_receiver(struct nf_config *c, const char *name)
{
    for (size_t i = 0; i < c->nreceivers; i++)
        if (strcmp(c->receivers[i].name, name) == 0)
            return &c->receivers[i];
    return NULL;
}

static int resolve_receivers(struct nf_config *c, struct nf_route *rt, const char *origin,
                             char *err, size_t errlen)
{
    if (!(rt->receiver = nf_config_receiver(c, rt->receiver_name)))
        return ERR("%s: route %s names receiver '%s', which is not defined", origin, rt->key,
                   rt->receiver_name);
    for (size_t i = 0; i < rt->nroutes; i++)
        if (resolve_receivers(c, &rt->routes[i], origin, err, errlen))
            return -1;
    return 0;
}

static int parse_receivers(struct nf_config *c, json_t *arr, const char *origin, char *err,
                           size_t errlen)
{
    if (!json_is_array(arr))
        return ERR("%s: key 'receivers': expected an array", origin);
    size_t n = json_array_size(arr);
    if (n && !(c->receivers = calloc(n, sizeof(*c->receivers))))
        return ERR("%s: out of memory", origin);
    for (size_t i = 0; i < n; i++) {
        char where[600];
        snprintf(where, sizeof(where), "%s: receivers[%zu]", origin, i);
        c->nreceivers = i + 1;
        if (parse_receiver(&c->receivers[i], json_array_get(arr, i), where, err, errlen))
            return -1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->receivers[j].name, c->receivers[i].name) == 0)
                return ERR("%s: key 'name': receiver '%s' is defined twice", where,
                           c->receivers[i].name);
    }
    return 0;
}

static int parse_global(struct nf_config *c, json_t *g, const char *origin, char *err,
                        size_t errlen)
{
    if (!g)
        return 0;
    if (!json_is_object(g))
        return ERR("%s: key 'global': expected an object", origin);
    const char *key;
    json_t *v;
    json_object_foreach(g, key, v)
    {
        if (strcmp(key, "external_url") != 0)
            return ERR("%s: unknown key 'global.%s'", origin, key);
        if (!json_is_string(v))
            return ERR("%s: key 'global.external_url': expected a string", origin);
        free(c->external_url);
        c->external_url = strdup(json_string_value(v));
    }
    return 0;
}

static int parse_root(struct nf_config *c, json_t *root, const char *origin, char *err,
                      size_t errlen)
{
    if (!json_is_object(root))
        return ERR("%s: the top level must be a JSON object", origin);
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        if (strcmp(key, "global") && strcmp(key, "route") && strcmp(key, "receivers"))
            return ERR("%s: unknown key '%s' (expected global, route, receivers)", origin, key);
    }
    if (parse_global(c, json_object_get(root, "global"), origin, err, errlen))
        return -1;
    json_t *recv = json_object_get(root, "receivers");
    if (!recv)
        return ERR("%s: key 'receivers' is required", origin);
    if (parse_receivers(c, recv, origin, err, errlen))
        return -1;
    json_t *route = json_object_get(root, "route");
    if (!route)
        return ERR("%s: key 'route' is required", origin);
    char where[600];
    snprintf(where, sizeof(where), "%s: route", origin);
    if (parse_route(&c->root, NULL, route, where, err, errlen))
        return -1;
    return resolve_receivers(c, &c->root, origin, err, errlen);
}

struct nf_config *nf_config_parse(const char *text, size_t len, const char *origin, char *err,
                                  size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, errlen, "%s:%d:%d: invalid JSON: %s", origin, jerr.line, jerr.column,
                 jerr.text);
        return NULL;
    }
    struct nf_config *c = calloc(1, sizeof(*c));
    if (!c) {
        json_decref(root);
        snprintf(err, errlen, "%s: out of memory", origin);
        return NULL;
    }
    c->refs = 1;
    int rc = parse_root(c, root, origin, err, errlen);
    json_decref(root);
    if (rc == 0 && !c->external_url && !(c->external_url = strdup("")))
        rc = ERR("%s: out of memory", origin);
    if (rc) {
        nf_config_unref(c);
        return NULL;
    }
    return c;
}

struct nf_config *nf_config_load(const char *path, char *err, size_t errlen)
{
    size_t len;
    char *text = nf_read_file(path, &len);
    if (!text) {
        snprintf(err, errlen, "%s: cannot read the routing file", path);
        return NULL;
    }
    struct nf_config *c = nf_config_parse(text, len, path, err, errlen);
    free(text);
    return c;
}

void nf_config_unref(struct nf_config *c)
{
    if (!c || --c->refs > 0)
        return;
    free_route(&c->root);
    for (size_t i = 0; i < c->nreceivers; i++) {
        struct nf_receiver *r = &c->receivers[i];
        for (size_t j = 0; j < r->nints; j++)
            free_integration(&r->ints[j]);
        free(r->ints);
        free(r->name);
    }
    free(c->receivers);
    free(c->external_url);
    free(c);
}

static int route_walk(struct nf_route *rt, const struct nf_labels *l,
                      void (*fn)(void *arg, struct nf_route *r), void *arg)
{
    if (!nf_matchers_match(rt->m, rt->nm, l))
        return 0;
    int matched = 0;
    for (size_t i = 0; i < rt->nroutes; i++) {
        if (route_walk(&rt->routes[i], l, fn, arg)) {
            matched = 1;
            if (!rt->routes[i].cont)
                break;
        }
    }
    if (!matched)
        fn(arg, rt);
    return 1;
}

void nf_route_match(struct nf_route *root, const struct nf_labels *l,
                    void (*fn)(void *arg, struct nf_route *r), void *arg)
{
    route_walk(root, l, fn, arg);
}
