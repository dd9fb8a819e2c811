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
