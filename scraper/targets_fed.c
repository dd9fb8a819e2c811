/*
 * scrape.federation_dir: the VMs of the federation's model monitored by pull (an agent with
 * push off: its /api/v1/snapshot?format=lp) or by an exporter (federation/scrape.h). A VM
 * that is not running is still a target: its failed scrapes are what marks it offline.
 */
#define DSF_MODULE "targets_fed"
#include "federation/scrape.h"
#include "scraper/scraper.h"

#include <stdio.h>
#include <sys/stat.h>

static void add_vm(void *arg, const struct fed_scrape_target *ft)
{
    struct scraper *s = arg;
    char why[300];
    const struct target_spec spec = {
        .ns = ft->ns,
        .mci = ft->mci,
        .vm = ft->vm,
        .url = ft->url,
        .mode = ft->mode == FED_MONITOR_PULL ? SCRAPE_PULL : SCRAPE_EXPORTER,
    };
    if (targets_add(s, SOURCE_FED, &spec, why, sizeof(why)) < 0) {
        s->stats.targets_refused++;
        log_error("%s: %s", s->cfg.federation_dir, why);
    }
}

void targets_fed_refresh(struct scraper *s)
{
    struct fed_error err = {0};
    char dir[4096];
    if (!*s->cfg.federation_dir)
        return;
    scraper_token_refresh(s);
    /* The model's MCIs, where damselfly-fed and the controller keep them. */
    snprintf(dir, sizeof(dir), "%s/mci", s->cfg.federation_dir);
    struct stat st;
    /* Opening creates the store: a mistyped directory must fail, not look empty. */
    struct fed_store *store = NULL;
    if (stat(s->cfg.federation_dir, &st) < 0 || !S_ISDIR(st.st_mode))
        snprintf(err.message, sizeof(err.message), "not a directory");
    else
        store = fed_store_open(dir, &err);
    if (store) {
        targets_begin(s, SOURCE_FED);
        if (fed_scrape_targets(store, add_vm, s, &err) == 0) {
            targets_end(s, SOURCE_FED);
            fed_store_close(store);
            return;
        }
        fed_store_close(store);
    }
    /* Half a list must not remove the rest: the targets stay as they were. */
    for (struct scrape_target *t = s->targets; t; t = t->next)
        if (t->sources & SOURCE_FED)
            t->seen |= SOURCE_FED;
    s->stats.sources_failed++;
    log_error("%s: %s: the targets stay as they were", s->cfg.federation_dir, err.message);
}
