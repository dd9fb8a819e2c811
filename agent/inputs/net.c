/*
 * net: the interface counters of /proc/net/dev as Telegraf's net measurement and
 * node_exporter's node_network_* counters.
 */
#define DSF_MODULE "net"
#include "common/log.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "agent/host_proc.h"
#include "agent/input.h"
#include "agent/procfile.h"
#include "common/metrics.h"

struct net_options {
    int enabled;
    int ignore_lo;
    struct dsf_strlist interfaces;
};

static const struct dsf_cfg_key net_option_keys[] = {
    {"enabled", DSF_CFG_BOOL, "true", offsetof(struct net_options, enabled),
     "collect network interface counters from /proc/net/dev", 0, 0},
    {"ignore_lo", DSF_CFG_BOOL, "true", offsetof(struct net_options, ignore_lo),
     "leave out the loopback interface lo", 0, 0},
    {"interfaces", DSF_CFG_STRLIST, NULL, offsetof(struct net_options, interfaces),
     "report only interfaces matching these shell patterns, e.g. eth*,ens* (empty: all)", 0, 0},
    DSF_CFG_END,
};

/* The columns after "name:" in /proc/net/dev, in order. */
enum netdev_column {
    RX_BYTES,
    RX_PACKETS,
    RX_ERRS,
    RX_DROP,
    RX_FIFO,
    RX_FRAME,
    RX_COMPRESSED,
    RX_MULTICAST,
    TX_BYTES,
    TX_PACKETS,
    TX_ERRS,
    TX_DROP,
    TX_FIFO,
    TX_COLLS,
    TX_CARRIER,
    TX_COMPRESSED,
    NETDEV_NCOLUMNS
};

static const struct {
    const char *field;
    enum netdev_column column;
    const char *prom_name, *prom_help;
} counters[] = {
    {"bytes_sent", TX_BYTES, "node_network_transmit_bytes_total",
     "Network device statistic transmit_bytes."},
    {"bytes_recv", RX_BYTES, "node_network_receive_bytes_total",
     "Network device statistic receive_bytes."},
    {"packets_sent", TX_PACKETS, "node_network_transmit_packets_total",
     "Network device statistic transmit_packets."},
    {"packets_recv", RX_PACKETS, "node_network_receive_packets_total",
     "Network device statistic receive_packets."},
    {"err_in", RX_ERRS, "node_network_receive_errs_total",
     "Network device statistic receive_errs."},
    {"err_out", TX_ERRS, "node_network_transmit_errs_total",
     "Network device statistic transmit_errs."},
    {"drop_in", RX_DROP, "node_network_receive_drop_total",
     "Network device statistic receive_drop."},
    {"drop_out", TX_DROP, "node_network_transmit_drop_total",
     "Network device statistic transmit_drop."},
};
#define NCOUNTERS (sizeof(counters) / sizeof(counters[0]))

struct iface_counters {
    char name[32]; /* IFNAMSIZ is 16 */
    unsigned long long v[NETDEV_NCOLUMNS];
};

struct net_ctx {
    const struct net_options *opts;
    struct procfile netdev;
    struct iface_counters *ifaces;
    size_t nifaces, cap;
    int failing;
};

static int wanted(const struct net_options *o, const char *name)
{
    if (o->ignore_lo && strcmp(name, "lo") == 0)
        return 0;
    if (!o->interfaces.count)
        return 1;
    for (size_t i = 0; i < o->interfaces.count; i++)
        if (fnmatch(o->interfaces.items[i], name, 0) == 0)
            return 1;
    return 0;
}

static struct iface_counters *new_iface(struct net_ctx *c)
{
    if (c->nifaces == c->cap) {
        size_t n = c->cap ? c->cap * 2 : 16;
        struct iface_counters *grown = realloc(c->ifaces, n * sizeof(*grown));
        if (!grown)
            return NULL;
        c->ifaces = grown;
        c->cap = n;
    }
    return &c->ifaces[c->nifaces++];
}

/* "  eth0: 56168256 1234 0 ..."; interface names cannot contain ':', so it separates. */
static void parse_netdev_line(struct net_ctx *c, char *line)
{
    if (!strchr(line, ':'))
        return; /* the two header lines */
    size_t n = procfile_split(&c->netdev, line, ":");
    char **w = c->netdev.words;
    if (n < 1 + NETDEV_NCOLUMNS || strlen(w[0]) >= sizeof(c->ifaces[0].name) ||
        !wanted(c->opts, w[0]))
        return;
    struct iface_counters *iface = new_iface(c);
    if (!iface)
        return;
    snprintf(iface->name, sizeof(iface->name), "%s", w[0]);
    for (int i = 0; i < NETDEV_NCOLUMNS; i++)
        iface->v[i] = strtoull(w[1 + i], NULL, 10);
}

static int net_collect(void *ctx, struct dsf_batch *out, int64_t now_ns)
{
    struct net_ctx *c = ctx;
    c->nifaces = 0;
    if (procfile_read(&c->netdev))
        return procfile_read_failed(DSF_MODULE, c->netdev.path, &c->failing);
    c->failing = 0;
    char *line;
    while ((line = procfile_next_line(&c->netdev)))
        parse_netdev_line(c, line);
    for (size_t i = 0; i < c->nifaces; i++) {
        batch_begin(out, "net", now_ns);
        batch_tag(out, "interface", c->ifaces[i].name);
        for (size_t k = 0; k < NCOUNTERS; k++)
            batch_field_i(out, counters[k].field, (int64_t)c->ifaces[i].v[counters[k].column]);
        batch_end(out);
    }
    return 0;
}

static void net_prom(void *ctx, struct dsf_buf *out)
{
    const struct net_ctx *c = ctx;
    if (!c->nifaces)
        return;
    for (size_t k = 0; k < NCOUNTERS; k++) {
        prom_family(out, counters[k].prom_name, "counter", counters[k].prom_help);
        for (size_t i = 0; i < c->nifaces; i++)
            prom_labeled_sample(out, counters[k].prom_name,
                                (double)c->ifaces[i].v[counters[k].column], "device",
                                c->ifaces[i].name, NULL);
    }
}

static void net_fini(void *ctx)
{
    struct net_ctx *c = ctx;
    if (!c)
        return;
    procfile_close(&c->netdev);
    free(c->ifaces);
    free(c);
}

static int net_init(void **ctx, const void *options, const struct dsf_input_env *env, char *err,
                    size_t errlen)
{
    struct net_ctx *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->opts = options;
    /* <proc>/net is the reader's network namespace: in a pod, the pod's. */
    procfile_init(&c->netdev, "%s/%s/net/dev", env->proc, host_proc_pid(env));
    if (procfile_first_read(&c->netdev, err, errlen)) {
        net_fini(c);
        return -1;
    }
    *ctx = c;
    return 0;
}

const struct dsf_input dsf_input_net = {
    .name = "net",
    .options = net_option_keys,
    .options_size = sizeof(struct net_options),
    .init = net_init,
    .collect = net_collect,
    .prom = net_prom,
    .fini = net_fini,
};
