/*
 * The VMs to be pulled rather than pushing: how each VM of the model is monitored comes from
 * its labels (docs/federation.md), and the scraper (damselfly-scraper) reads the list here.
 */
#ifndef DSF_FED_SCRAPE_H
#define DSF_FED_SCRAPE_H

#include "federation/federation.h"

enum fed_monitoring {
    FED_MONITOR_PUSH,     /* the agent pushes (the default) */
    FED_MONITOR_PULL,     /* an agent with push off: its /api/v1/snapshot?format=lp is pulled */
    FED_MONITOR_EXPORTER, /* no agent: a Prometheus exposition endpoint is scraped */
};

/* The labels of a VM's spec that say how it is monitored (Tumblebug's own labels are
 * dotted, "sys.id": so are these). */
#define FED_LABEL_MONITORING "damselfly.monitoring"   /* push (default), pull or exporter */
#define FED_LABEL_SCRAPE_PORT "damselfly.scrape-port" /* when the address has no port */
#define FED_LABEL_SCRAPE_PATH "damselfly.scrape-path" /* exporter only; default /metrics */
#define FED_EXPORTER_PORT 9100
#define FED_AGENT_PORT 9100 /* the agent's default http.listen port */
#define FED_EXPORTER_PATH "/metrics"
#define FED_PULL_PATH "/api/v1/snapshot?format=lp"

struct fed_monitoring_spec {
    enum fed_monitoring mode;
    int port;                /* the scrape port when the address has none */
    char path[FED_LONG_MAX]; /* what is fetched, with its query */
};

/* "push", "pull", "exporter". */
const char *fed_monitoring_name(enum fed_monitoring m);
/* How the spec's labels say its VMs are monitored, defaults filled in. 0, or -1 with err
 * (an unknown mode, a port outside 1..65535, a path not starting with '/', a scrape label
 * that the mode does not use). fed_vm_spec_validate calls it. */
int fed_spec_monitoring(const struct fed_vm_spec *s, struct fed_monitoring_spec *out,
                        struct fed_error *err);
/* http://address/path: the address as it is when it has a port (host:port, [v6]:port),
 * else with the spec's port ("[...]" put around a bare IPv6 address). 0, or -1 when it does
 * not fit. */
int fed_scrape_url(const char *address, const struct fed_monitoring_spec *m, char *out, size_t len);

/* Valid only during the callback. */
struct fed_scrape_target {
    const char *ns, *mci, *vm;
    const char *url; /* http://address[:port]/path, ready to fetch */
    enum fed_monitoring mode;
    enum fed_vm_state state;
};
typedef void (*fed_scrape_target_fn)(void *arg, const struct fed_scrape_target *t);

/* Every VM of every MCI in the store whose monitoring is pull or exporter and that has an
 * address, in any state (the caller decides what a stopped VM means). 0, or -1 with err. */
int fed_scrape_targets(struct fed_store *s, fed_scrape_target_fn fn, void *arg,
                       struct fed_error *err);

#endif
