#define DSF_MODULE "scraper"
#include "scraper/scraper.h"

#include <stdio.h>
#include <string.h>

#define K(field) offsetof(struct scraper_config, field)
#define M(field) offsetof(struct dsf_mqtt_config, field)

const struct dsf_cfg_key scraper_config_keys[] = {
    {"id", DSF_CFG_ID, "", K(id),
     "scraper id (MQTT client id dsf-scraper-{id}, its own status dsf/scraper/{id}/status); "
     "empty: the host name",
     0, 0},
    {"output", DSF_CFG_STR, "mqtt", K(output),
     "the bus the pulled metrics and statuses go to: mqtt or kafka", 0, 0},
    {"scrape.targets_file", DSF_CFG_STR, "", K(targets_file),
     "targets in Prometheus' file_sd JSON format, labels ns, mci and vm required (the VM's "
     "identity), __metrics_path__ and __scheme__ taken; reread when it changes. Empty: none",
     0, 0},
    {"scrape.federation_dir", DSF_CFG_STR, "", K(federation_dir),
     "the federation's state directory: its VMs labelled for pull or exporter monitoring are "
     "targets (docs/federation.md), reread every scrape.refresh. Empty: none",
     0, 0},
    {"scrape.refresh", DSF_CFG_DURATION, "30s", K(refresh_ms),
     "how often the federation's targets are read again", 1000, 86400000},
    {"scrape.interval", DSF_CFG_DURATION, "10s", K(interval_ms),
     "time between two scrapes of a target (each target starts at a random point of the "
     "first interval)",
     1000, 3600000},
    {"scrape.timeout", DSF_CFG_DURATION, "5s", K(timeout_ms),
     "a scrape not answered in full within this fails (result timeout); less than "
     "scrape.interval",
     100, 3600000},
    {"scrape.max_failures", DSF_CFG_INT, "2", K(max_failures),
     "consecutive failed scrapes after which the target's status is published offline (its "
     "next good scrape publishes it online)",
     1, 1000},
    {"scrape.agent_token_file", DSF_CFG_STR, "", K(agent_token_file),
     "the bearer token the agents' snapshot API wants (pull targets); empty: none sent", 0, 0},
    {"scrape.exporter_token_file", DSF_CFG_STR, "", K(exporter_token_file),
     "a file (mode 0600) holding the bearer token exporter targets are asked with "
     "(Authorization: Bearer, as Prometheus' authorization); reread at SIGHUP. Empty: none",
     0, 0},
    {"scrape.exporter_username", DSF_CFG_STR, "", K(exporter_username),
     "the user name of HTTP basic auth towards exporter targets (as Prometheus' basic_auth), "
     "with scrape.exporter_password_file. Empty: no basic auth",
     0, 0},
    {"scrape.exporter_password_file", DSF_CFG_STR, "", K(exporter_password_file),
     "a file (mode 0600) holding the basic-auth password of scrape.exporter_username (16 to 256 "
     "printable characters without spaces); reread at SIGHUP",
     0, 0},
    {"scrape.tls_ca", DSF_CFG_FILE, "", K(tls_ca),
     "CA certificate (PEM) trusted for https:// targets beside the system's", 0, 0},
    {"scrape.tls_insecure", DSF_CFG_BOOL, "false", K(tls_insecure),
     "do not verify https:// targets' certificates (tests only)", 0, 0},
    {"scrape.max_body", DSF_CFG_SIZE, "32MiB", K(max_body_bytes),
     "a scrape answering more than this fails (result too_large) and nothing of it is "
     "published",
     1024, 4e9},
    {"scrape.max_message", DSF_CFG_SIZE, "256KiB", K(max_message_bytes),
     "the largest bus message: a scrape is published as several messages of whole lines; a "
     "longer line is rejected (too_long)",
     1024, 256e6},
    DSF_CFG_END,
};

const struct dsf_cfg_key scraper_mqtt_keys[] = {
    {"buckets_total", DSF_CFG_INT, "64", M(buckets_total),
     "number of buckets B, cluster-wide (the agents' push.buckets): a VM's metrics go to "
     "dsf/m/{fnv1a32(ns/mci/vm) % B}/{ns}/{mci}/{vm}",
     1, 65536},
    DSF_CFG_END,
};

int scraper_config_validate(const struct dsf_cfg_section *secs, const char *origin, char *err,
                            size_t errlen)
{
    const struct scraper_config *c = secs[0].obj;
    if (strcmp(c->output, "mqtt") && strcmp(c->output, "kafka")) {
        snprintf(err, errlen, "%s: key 'output': '%s': expected mqtt or kafka", origin, c->output);
        return -1;
    }
    if (!*c->exporter_username != !*c->exporter_password_file) {
        snprintf(err, errlen,
                 "%s: keys 'scrape.exporter_username' and 'scrape.exporter_password_file' go "
                 "together: set both or neither",
                 origin);
        return -1;
    }
    if (*c->exporter_username && *c->exporter_token_file) {
        snprintf(err, errlen,
                 "%s: keys 'scrape.exporter_token_file' and 'scrape.exporter_username': an "
                 "exporter is asked with a bearer token or basic auth, not both",
                 origin);
        return -1;
    }
    if (c->timeout_ms >= c->interval_ms) {
        snprintf(err, errlen,
                 "%s: key 'scrape.timeout' (%lld ms) must be less than scrape.interval (%lld ms)",
                 origin, (long long)c->timeout_ms, (long long)c->interval_ms);
        return -1;
    }
    return 0;
}
