/* How a VM is monitored, read from its spec's labels, and the list of VMs to be pulled that
 * the scraper reads (scrape.h). */
#define DSF_MODULE "federation"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "federation/scrape.h"

const char *fed_monitoring_name(enum fed_monitoring m)
{
    switch (m) {
    case FED_MONITOR_PULL:
        return "pull";
    case FED_MONITOR_EXPORTER:
        return "exporter";
    default:
        return "push";
    }
}

static const char *label_value(const struct fed_vm_spec *s, const char *key)
{
    for (size_t i = 0; i < s->nlabels && i < FED_MAX_LABELS; i++)
        if (!strcmp(s->labels[i].key, key))
            return s->labels[i].value;
    return NULL;
}

static int parse_mode(const struct fed_vm_spec *s, enum fed_monitoring *mode, struct fed_error *err)
{
    const char *v = label_value(s, FED_LABEL_MONITORING);
    *mode = FED_MONITOR_PUSH;
    if (!v || !strcmp(v, "push"))
        return 0;
    if (!strcmp(v, "pull")) {
        *mode = FED_MONITOR_PULL;
        return 0;
    }
    if (!strcmp(v, "exporter")) {
        *mode = FED_MONITOR_EXPORTER;
        return 0;
    }
    return fed_fail(err, FED_EINVAL, "spec", 0,
                    "subgroup %s: label %s '%.60s': use push, pull or exporter", s->name,
                    FED_LABEL_MONITORING, v);
}

static int parse_port(const struct fed_vm_spec *s, const char *v, int *port, struct fed_error *err)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (!*v || *end || errno || n < 1 || n > 65535 || v[0] < '0' || v[0] > '9')
        return fed_fail(err, FED_EINVAL, "spec", 0,
                        "subgroup %s: label %s '%.60s': expected a port number 1..65535", s->name,
                        FED_LABEL_SCRAPE_PORT, v);
    *port = (int)n;
    return 0;
}

/* An absolute path (with an optional query) that fits in a URL as it is. */
static int check_path(const struct fed_vm_spec *s, const char *v, struct fed_error *err)
{
    int bad = v[0] != '/';
    for (const unsigned char *p = (const unsigned char *)v; *p && !bad; p++)
        bad = *p <= ' ' || *p >= 0x7f || *p == '#';
    if (bad)
        return fed_fail(err, FED_EINVAL, "spec", 0,
                        "subgroup %s: label %s '%.60s': expected a path like /metrics (no "
                        "spaces, control characters or '#')",
                        s->name, FED_LABEL_SCRAPE_PATH, v);
    return 0;
}

int fed_spec_monitoring(const struct fed_vm_spec *s, struct fed_monitoring_spec *out,
                        struct fed_error *err)
{
    memset(out, 0, sizeof(*out));
    if (parse_mode(s, &out->mode, err) < 0)
        return -1;
    const char *port = label_value(s, FED_LABEL_SCRAPE_PORT);
    const char *path = label_value(s, FED_LABEL_SCRAPE_PATH);
    if (out->mode == FED_MONITOR_PUSH && (port || path))
        return fed_fail(err, FED_EINVAL, "spec", 0,
                        "subgroup %s: label %s applies to %s pull or exporter only", s->name,
                        port ? FED_LABEL_SCRAPE_PORT : FED_LABEL_SCRAPE_PATH, FED_LABEL_MONITORING);
    if (out->mode == FED_MONITOR_PULL && path)
        return fed_fail(err, FED_EINVAL, "spec", 0,
                        "subgroup %s: label %s: a pulled agent is always read at %s", s->name,
                        FED_LABEL_SCRAPE_PATH, FED_PULL_PATH);
    out->port = out->mode == FED_MONITOR_EXPORTER ? FED_EXPORTER_PORT : FED_AGENT_PORT;
    if (port && parse_port(s, port, &out->port, err) < 0)
        return -1;
    if (path && check_path(s, path, err) < 0)
        return -1;
    snprintf(out->path, sizeof(out->path), "%s",
             path                                ? path
             : out->mode == FED_MONITOR_EXPORTER ? FED_EXPORTER_PATH
                                                 : FED_PULL_PATH);
    return 0;
}

/* Does the address name its port? host:port and [v6]:port do; ip, host and a bare IPv6
 * address (more than one ':') do not. */
static int has_port(const char *a)
{
    if (a[0] == '[')
        return strstr(a, "]:") != NULL;
    const char *c = strchr(a, ':');
    return c && !strchr(c + 1, ':');
}

int fed_scrape_url(const char *address, const struct fed_monitoring_spec *m, char *out, size_t len)
{
    int n;
    if (has_port(address))
        n = snprintf(out, len, "http://%s%s", address, m->path);
    else if (strchr(address, ':') && address[0] != '[')
        n = snprintf(out, len, "http://[%s]:%d%s", address, m->port, m->path);
    else
        n = snprintf(out, len, "http://%s:%d%s", address, m->port, m->path);
    return n > 0 && (size_t)n < len ? 0 : -1;
}

/* Every pulled VM of one MCI to fn. */
static void mci_targets(const struct fed_mci *m, fed_scrape_target_fn fn, void *arg)
{
    for (size_t i = 0; i < m->nvms; i++) {
        const struct fed_vm *vm = &m->vms[i];
        struct fed_monitoring_spec ms;
        struct fed_error e;
        char url[FED_LONG_MAX * 2 + 32];
        if (!vm->address[0])
            continue;
        if (fed_spec_monitoring(&vm->spec, &ms, &e) < 0) {
            /* Specs are checked at creation: only a hand-edited store gets here. */
            log_warn("%s/%s/%s: not scraped: %s", m->ns, m->id, vm->id, e.message);
            continue;
        }
        if (ms.mode == FED_MONITOR_PUSH)
            continue;
        if (fed_scrape_url(vm->address, &ms, url, sizeof(url)) < 0) {
            log_warn("%s/%s/%s: not scraped: its URL is too long", m->ns, m->id, vm->id);
            continue;
        }
        struct fed_scrape_target t = {.ns = m->ns,
                                      .mci = m->id,
                                      .vm = vm->id,
                                      .url = url,
                                      .mode = ms.mode,
                                      .state = vm->state};
        fn(arg, &t);
    }
}

static int ns_targets(struct fed_store *s, const char *ns, fed_scrape_target_fn fn, void *arg,
                      struct fed_error *err)
{
    char **mcis;
    size_t n;
    if (fed_store_list(s, ns, &mcis, &n, err) < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct fed_mci m;
        memset(&m, 0, sizeof(m));
        struct fed_error e;
        if (fed_store_get(s, ns, mcis[i], &m, &e) == 0)
            mci_targets(&m, fn, arg);
        else if (e.kind != FED_ENOTFOUND) /* deleted since the listing: nothing to scrape */
            rc = fed_fail(err, e.kind, e.call, e.status, "%s", e.message);
        fed_mci_free(&m);
    }
    fed_names_free(mcis, n);
    return rc;
}

int fed_scrape_targets(struct fed_store *s, fed_scrape_target_fn fn, void *arg,
                       struct fed_error *err)
{
    char **nss;
    size_t n;
    if (fed_store_list(s, NULL, &nss, &n, err) < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = ns_targets(s, nss[i], fn, arg, err);
    fed_names_free(nss, n);
    return rc;
}
