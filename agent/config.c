#include "agent/agent.h"

#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#define K(field) offsetof(struct agent_config, field)

const struct dsf_cfg_key agent_config_keys[] = {
    {"identity.ns", DSF_CFG_ID, NULL, K(identity.ns), "namespace of the VM (required)", 0, 0},
    {"identity.mci", DSF_CFG_ID, NULL, K(identity.mci), "MCI the VM belongs to (required)", 0, 0},
    {"identity.vm", DSF_CFG_ID, NULL, K(identity.vm), "VM id within the MCI (required)", 0, 0},
    {"identity.csp", DSF_CFG_STR, "", K(identity.csp), "cloud service provider (aws, gcp, ...)", 0,
     0},
    {"identity.region", DSF_CFG_STR, "", K(identity.region), "cloud region", 0, 0},
    {"identity.host", DSF_CFG_STR, "", K(identity.host), "host tag; empty: the host name", 0, 0},
    {"identity.k8s_cluster", DSF_CFG_STR, "", K(identity.k8s_cluster), "Kubernetes cluster name", 0,
     0},
    {"identity.k8s_node", DSF_CFG_STR, "", K(identity.k8s_node),
     "Kubernetes node (downward API spec.nodeName)", 0, 0},
    {"identity.pod", DSF_CFG_STR, "", K(identity.pod), "pod name when run in Kubernetes", 0, 0},
    {"identity.container", DSF_CFG_STR, "", K(identity.container), "container name", 0, 0},
    {"interval", DSF_CFG_DURATION, "2s", K(interval_ms),
     "collection interval; ticks are aligned to multiples of it (minimum 1s)", 1000, 86400000},
    {"push.mode", DSF_CFG_STR, "mqtt", K(push.mode), "mqtt, kafka or off (pull only)", 0, 0},
    {"push.format", DSF_CFG_STR, "lp", K(push.format),
     "payload format: lp (InfluxDB line protocol) or json", 0, 0},
    {"push.buckets", DSF_CFG_INT, "64", K(push.buckets),
     "number of buckets B, cluster-wide (bucket = fnv1a32(ns/mci/vm) % B)", 1, 65536},
    {"push.max_inflight", DSF_CFG_INT, "16", K(push.max_inflight),
     "messages published but not yet confirmed by the broker", 1, 1000},
    {"buffer.max_bytes", DSF_CFG_SIZE, "8MiB", K(buffer.max_bytes),
     "memory for messages not yet confirmed; when full the oldest are dropped and counted", 1024,
     1e12},
    {"buffer.ack", DSF_CFG_STR, "broker", K(buffer.ack),
     "release a message on the broker's ack (broker) or on the collector's end-to-end ack "
     "(collector)",
     0, 0},
    {"buffer.ack_timeout", DSF_CFG_DURATION, "10s", K(buffer.ack_timeout_ms),
     "resend a message not acknowledged within this time", 500, 3600000},
    {"buffer.spool_dir", DSF_CFG_STR, "", K(buffer.spool_dir),
     "directory for messages that do not fit the memory buffer and for what is unconfirmed "
     "at shutdown (sent after a restart); empty: no spool",
     0, 0},
    {"buffer.spool_max_bytes", DSF_CFG_SIZE, "64MiB", K(buffer.spool_max_bytes),
     "disk the spool may use; when full the oldest spooled messages are dropped and counted", 4096,
     1e13},
    {"buffer.spool_fsync", DSF_CFG_BOOL, "false", K(buffer.spool_fsync),
     "fsync every spooled message (survives power loss, costs a disk flush per message)", 0, 0},
    {"privileges.user", DSF_CFG_STR, "damselfly", K(privileges.user),
     "user to switch to when started as root", 0, 0},
    {"privileges.drop", DSF_CFG_BOOL, "true", K(privileges.drop),
     "switch user and keep only the capabilities the enabled inputs need", 0, 0},
    {"host.proc", DSF_CFG_STR, "/proc", K(host.proc),
     "where the host's /proc is (a DaemonSet mounts it at /host/proc)", 0, 0},
    {"host.sys", DSF_CFG_STR, "/sys", K(host.sys), "where the host's /sys is", 0, 0},
    {"host.rootfs", DSF_CFG_STR, "", K(host.rootfs),
     "prefix of the host's root file system for disk usage (e.g. /host/root)", 0, 0},
    DSF_CFG_END,
};

static int one_of(const char *v, const char *const *allowed)
{
    for (; *allowed; allowed++)
        if (strcmp(v, *allowed) == 0)
            return 1;
    return 0;
}

int agent_config_validate(const struct dsf_cfg_section *secs, const char *origin, char *err,
                          size_t errlen)
{
    const struct agent_config *c = secs[0].obj;
    static const char *const modes[] = {"mqtt", "kafka", "off", NULL};
    static const char *const formats[] = {"lp", "json", NULL};
    static const char *const acks[] = {"broker", "collector", NULL};
    const struct {
        const char *key, *value;
    } required[] = {{"identity.ns", c->identity.ns},
                    {"identity.mci", c->identity.mci},
                    {"identity.vm", c->identity.vm}};
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        if (!required[i].value || !*required[i].value) {
            snprintf(err, errlen,
                     "%s: key '%s' is required (the VM's identity; cloud-init writes it)", origin,
                     required[i].key);
            return -1;
        }
    }
    const char *bad = !one_of(c->push.mode, modes)       ? "push.mode"
                      : !one_of(c->push.format, formats) ? "push.format"
                      : !one_of(c->buffer.ack, acks)     ? "buffer.ack"
                                                         : NULL;
    if (bad) {
        snprintf(err, errlen, "%s: key '%s' has an unknown value (see --help)", origin, bad);
        return -1;
    }
    return 0;
}

struct dsf_cfg_section *agent_config_sections(struct agent *a)
{
    size_t n = 0, k = 0;
    while (dsf_inputs[n])
        n++;
    struct dsf_cfg_section *secs = calloc(n + 7, sizeof(*secs));
    if (!secs)
        return NULL;
    a->sections = secs;
    secs[k++] = (struct dsf_cfg_section){"", agent_config_keys, &a->cfg, NULL};
    k += dsf_mqtt_sections(secs + k, &a->cfg.mqtt);
    k += dsf_kafka_sections(secs + k, &a->cfg.kafka);
    secs[k++] = (struct dsf_cfg_section){"kafka", dsf_kafka_producer_keys, &a->cfg.kafka, NULL};
    for (size_t i = 0; i < n; i++) {
        struct agent_input *in = &a->inputs[a->ninputs++];
        char *prefix = malloc(strlen(dsf_inputs[i]->name) + 8);
        in->def = dsf_inputs[i];
        in->options = calloc(1, dsf_inputs[i]->options_size);
        if (!prefix || !in->options) {
            free(prefix);
            agent_config_sections_free(a);
            return NULL;
        }
        sprintf(prefix, "inputs.%s", dsf_inputs[i]->name);
        secs[k++] = (struct dsf_cfg_section){prefix, in->def->options, in->options, NULL};
    }
    return secs;
}

void agent_config_sections_free(struct agent *a)
{
    if (!a->sections)
        return;
    dsf_cfg_free(a->sections);
    for (size_t i = 0; a->sections[i].keys; i++)
        if (strncmp(a->sections[i].prefix, "inputs.", 7) == 0)
            free((char *)a->sections[i].prefix);
    for (size_t i = 0; i < a->ninputs; i++)
        free(a->inputs[i].options);
    a->ninputs = 0;
    free(a->sections);
    a->sections = NULL;
}
