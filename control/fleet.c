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
    char state[16]; /* series */
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

void fleet_alarm(struct fleet *f, const char *series, const char *state, int64_t now_ms)
{
    pthread_mutex_lock(&f->lock);
    struct entry *e = lookup(&f->series, series, state[0] != '\0');
    if (e && !state[0]) {
        remove_entry(&f->series, e);
    } else if (e) {
        snprintf(e->state, sizeof(e->state), "%s", state);
        e->since_ms = now_ms;
    }
    pthread_mutex_unlock(&f->lock);
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
