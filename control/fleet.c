/*
 * What the controller knows of the fleet from the bus: each VM's agent status (retained
 * status topic, Last Will) and the state of each alarm series it has seen. The federation's
 * migrate waits on fleet_online from a worker thread, so every access takes the lock.
 */
#include "control/control_impl.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    struct dsf_hlink link;
    int online; /* status: 1, 0, -1 never seen */
    int nodata; /* status: alarm series of this VM in nodata */
    int64_t since_ms;
    char state[16]; /* series: its state, and what the console shows of it */
    char rule[CTL_EVENT_NAME_MAX], target[256], severity[32];
    char key[];
};

struct fleet {
    pthread_mutex_t lock;
    struct dsf_htab vms, series;
};

struct fleet *fleet_new(void)
{
    struct fleet *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    pthread_mutex_init(&f->lock, NULL);
    if (dsf_htab_grow(&f->vms) < 0 || dsf_htab_grow(&f->series) < 0) {
        fleet_free(f);
        return NULL;
    }
    return f;
}

void fleet_free(struct fleet *f)
{
    if (!f)
        return;
    dsf_htab_free_all(&f->vms, NULL);
    dsf_htab_free_all(&f->series, NULL);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

/* The entry of key, created when create is set (NULL without memory or when absent). */
static struct entry *lookup(struct dsf_htab *t, const char *key, int create)
{
    size_t n = strlen(key);
    uint64_t h = dsf_hash_bytes(key, n);
    for (struct dsf_hlink *l = dsf_htab_first(t, h); l; l = l->next) {
        struct entry *e = (struct entry *)l;
        if (l->hash == h && strcmp(e->key, key) == 0)
            return e;
    }
    if (!create)
        return NULL;
    struct entry *e = calloc(1, sizeof(*e) + n + 1);
    if (!e)
        return NULL;
    memcpy(e->key, key, n + 1);
    e->online = -1;
    dsf_htab_insert(t, &e->link, h);
    return e;
}

static void remove_entry(struct dsf_htab *t, struct entry *e)
{
    dsf_htab_remove(t, &e->link);
    free(e);
}

static void vm_key(char *out, size_t len, const char *ns, const char *mci, const char *vm)
{
    snprintf(out, len, "%s/%s/%s", ns, mci, vm);
}

int fleet_status(struct fleet *f, const char *ns, const char *mci, const char *vm, int status,
                 int64_t now_ms)
{
    char key[256];
    vm_key(key, sizeof(key), ns, mci, vm);
    pthread_mutex_lock(&f->lock);
    struct entry *e = lookup(&f->vms, key, status != 2);
    int changed = 0;
    if (e && status == 2) {
        remove_entry(&f->vms, e);
        changed = 1;
    } else if (e && e->online != status) {
        e->online = status;
        e->since_ms = now_ms;
        changed = 1;
    }
    pthread_mutex_unlock(&f->lock);
    return changed;
}

int fleet_online(struct fleet *f, const char *ns, const char *mci, const char *vm,
                 int64_t *since_ms)
{
    char key[256];
    vm_key(key, sizeof(key), ns, mci, vm);
    pthread_mutex_lock(&f->lock);
    struct entry *e = lookup(&f->vms, key, 0);
    int online = e ? e->online : -1;
    if (since_ms)
        *since_ms = e ? e->since_ms : 0;
    pthread_mutex_unlock(&f->lock);
    return online;
}

int fleet_vm_nodata(struct fleet *f, const char *ns, const char *mci, const char *vm, int delta)
{
    char key[256];
    vm_key(key, sizeof(key), ns, mci, vm);
    pthread_mutex_lock(&f->lock);
    struct entry *e = lookup(&f->vms, key, delta > 0);
    int n = 0;
    if (e) {
        e->nodata += delta;
        if (e->nodata < 0)
            e->nodata = 0;
        n = e->nodata;
    }
    pthread_mutex_unlock(&f->lock);
    return n;
}

/* What the alarm is about: {ns}/{mci}/{vm} for a VM's alarm, else its group's labels. */
static void alarm_target(const struct ctl_event *ev, char *out, size_t len)
{
    const char *ns = ctl_event_label(ev, "ns"), *mci = ctl_event_label(ev, "mci"),
               *vm = ctl_event_label(ev, "vm");
    if (ns && mci && vm) {
        snprintf(out, len, "%s/%s/%s", ns, mci, vm);
        return;
    }
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < ev->ngroup && n < len; i++) {
        int k = snprintf(out + n, len - n, "%s%s=%s", i ? "," : "", ev->labels[i].name,
                         ev->labels[i].value);
        n += k > 0 ? (size_t)k : 0;
    }
}

void fleet_alarm(struct fleet *f, const char *series, const struct ctl_event *ev, int64_t now_ms)
{
    pthread_mutex_lock(&f->lock);
    struct entry *e = lookup(&f->series, series, ev->state[0] != '\0');
    if (e && !ev->state[0]) {
        remove_entry(&f->series, e);
    } else if (e) {
        if (strcmp(e->state, ev->state))
            e->since_ms = now_ms;
        snprintf(e->state, sizeof(e->state), "%s", ev->state);
        snprintf(e->rule, sizeof(e->rule), "%s", ev->rule);
        snprintf(e->severity, sizeof(e->severity), "%s", ev->severity);
        alarm_target(ev, e->target, sizeof(e->target));
    }
    pthread_mutex_unlock(&f->lock);
}

json_t *fleet_alarms_json(struct fleet *f, const char *state)
{
    json_t *list = json_array();
    pthread_mutex_lock(&f->lock);
    for (size_t b = 0; list && b < f->series.nbuckets; b++) {
        for (struct dsf_hlink *l = f->series.bucket[b]; l; l = l->next) {
            const struct entry *e = (const struct entry *)l;
            if (!state || strcmp(e->state, state) == 0)
                json_array_append_new(list,
                                      json_pack("{s:s, s:s, s:s, s:s, s:I}", "rule", e->rule, "vm",
                                                e->target, "state", e->state, "severity",
                                                e->severity, "since_ms", (json_int_t)e->since_ms));
        }
    }
    pthread_mutex_unlock(&f->lock);
    return list;
}

const char *fleet_alarm_state(struct fleet *f, const char *series)
{
    pthread_mutex_lock(&f->lock);
    struct entry *e = lookup(&f->series, series, 0);
    /* A state is one of a few static names: hand back the constant, not the entry. */
    static const char *const names[] = {"inactive", "pending", "firing", "nodata", "resolved"};
    const char *st = "";
    for (size_t i = 0; e && i < sizeof(names) / sizeof(names[0]); i++) {
        if (!strcmp(e->state, names[i]))
            st = names[i];
    }
    pthread_mutex_unlock(&f->lock);
    return st;
}
