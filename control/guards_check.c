/* The decisions: guards_check in the order of enum guard_block, and what begin / end /
 * release change for it. */
#include "control/guards_impl.h"

#include "common/log.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void say(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void say(char *why, size_t len, const char *fmt, ...)
{
    if (!why || !len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
}

void guards_fmt_dur(int64_t ms, char *out, size_t len)
{
    /* A minute reads better as 60s; longer whole minutes and hours in their unit. */
    if (ms > 60000 && ms % 3600000 == 0)
        snprintf(out, len, "%lldh", (long long)(ms / 3600000));
    else if (ms > 60000 && ms % 60000 == 0)
        snprintf(out, len, "%lldm", (long long)(ms / 60000));
    else if (ms % 1000 == 0)
        snprintf(out, len, "%llds", (long long)(ms / 1000));
    else
        snprintf(out, len, "%lldms", (long long)ms);
}

/* "vm1 of ns1/m1", or "node1" outside any MCI. */
static void label(const struct guard_target *t, char *out, size_t len)
{
    if (t->mci[0])
        snprintf(out, len, "%s of %s/%s", t->target, t->ns, t->mci);
    else
        snprintf(out, len, "%s", t->target);
}

/* ---- the rate ring ---- */

size_t guards_rate_count(const struct guards *g, int64_t now_ms)
{
    size_t n = 0;
    for (size_t i = 0; i < g->rate_n; i++) {
        int64_t ts = g->rate[(g->rate_head + i) % g->rate_cap];
        n += now_ms - ts < GUARDS_HOUR_MS && ts <= now_ms;
    }
    return n;
}

/* The oldest begin still in the hour before now_ms. */
static int64_t rate_oldest(const struct guards *g, int64_t now_ms)
{
    for (size_t i = 0; i < g->rate_n; i++) {
        int64_t ts = g->rate[(g->rate_head + i) % g->rate_cap];
        if (now_ms - ts < GUARDS_HOUR_MS)
            return ts;
    }
    return now_ms;
}

static void rate_push(struct guards *g, int64_t now_ms)
{
    while (g->rate_n && now_ms - g->rate[g->rate_head] >= GUARDS_HOUR_MS) {
        g->rate_head = (g->rate_head + 1) % g->rate_cap;
        g->rate_n--;
    }
    if (g->rate_n == g->rate_cap) {
        size_t cap = g->rate_cap ? g->rate_cap * 2 : 32;
        int64_t *r = malloc(cap * sizeof(*r));
        if (!r) {
            dsf_log(DSF_LOG_ERROR, "guards",
                    "no memory for the action rate: begin at %lld "
                    "not counted",
                    (long long)now_ms);
            return;
        }
        for (size_t i = 0; i < g->rate_n; i++)
            r[i] = g->rate[(g->rate_head + i) % g->rate_cap];
        free(g->rate);
        g->rate = r;
        g->rate_cap = cap;
        g->rate_head = 0;
    }
    g->rate[(g->rate_head + g->rate_n++) % g->rate_cap] = now_ms;
}

/* ---- the guards ---- */

static enum guard_block check_target(const struct guards *g, const struct guard_target *t,
                                     const struct gtarget *e, const struct gcooldown *c,
                                     int64_t cooldown_ms, int64_t now_ms, char *why, size_t len)
{
    char who[256], t1[DSF_RFC3339_LEN], t2[DSF_RFC3339_LEN], dur[32];
    label(t, who, sizeof(who));
    if (e && e->hold_until_ms > now_ms) {
        dsf_rfc3339_ms(e->hold_until_ms, t1);
        say(why, len, "%s held until %s: its chain ran out (an operator may release it)", who, t1);
        return GUARD_HOLD;
    }
    if (e && e->busy) {
        dsf_rfc3339_ms(e->last_begin_ms, t1);
        say(why, len, "%s already under action (begun %s)", who, t1);
        return GUARD_BUSY;
    }
    if (c && c->end_ms != GUARDS_NONE && now_ms - c->end_ms < cooldown_ms) {
        dsf_rfc3339_ms(c->end_ms + cooldown_ms, t1);
        dsf_rfc3339_ms(c->end_ms, t2);
        guards_fmt_dur(cooldown_ms, dur, sizeof(dur));
        say(why, len, "cooldown of policy %s on %s until %s (last action ended %s, cooldown %s)",
            t->policy, who, t1, t2, dur);
        return GUARD_COOLDOWN;
    }
    return GUARD_PASS;
}

/* Distinct VM targets of m other than self under action or begun within the window. */
static int fraction_count(const struct guards *g, const struct gmci *m, const struct gtarget *self,
                          int64_t now_ms, char *names, size_t len)
{
    int n = 0;
    size_t used = 0;
    names[0] = '\0';
    for (const struct gtarget *e = m->targets; e; e = e->mnext) {
        if (e == self || !e->vm_level)
            continue;
        if (!e->busy && (e->last_begin_ms == GUARDS_NONE ||
                         now_ms - e->last_begin_ms >= g->cfg.fraction_window_ms))
            continue;
        if (n < 4 && used < len) {
            int w = snprintf(names + used, len - used, "%s%s", n ? ", " : "", e->k.name);
            used += w > 0 ? (size_t)w : 0;
        } else if (n == 4 && used < len) {
            snprintf(names + used, len - used, ", ...");
            used = len;
        }
        n++;
    }
    return n;
}

static enum guard_block check_fleet(const struct guards *g, const struct guard_target *t,
                                    const struct gmci *m, const struct gtarget *e, int64_t now_ms,
                                    char *why, size_t len)
{
    char t1[DSF_RFC3339_LEN], dur[32], names[160];
    if (g->active >= g->cfg.max_concurrent) {
        say(why, len, "%d actions running, at most %lld at once", g->active,
            (long long)g->cfg.max_concurrent);
        return GUARD_CONCURRENCY;
    }
    if (t->mci[0] && m && m->active >= g->cfg.max_concurrent_per_mci) {
        say(why, len, "%d actions running on %s/%s, at most %lld per MCI", m->active, t->ns, t->mci,
            (long long)g->cfg.max_concurrent_per_mci);
        return GUARD_MCI_CONCURRENCY;
    }
    if (t->vm_level && t->mci[0] && m) {
        int size = guards_mci_nvms(m);
        int limit = (int)floor(g->cfg.mci_fraction * size + 1e-9);
        limit = limit < 1 ? 1 : limit;
        int n = fraction_count(g, m, e, now_ms, names, sizeof(names));
        if (n >= limit) {
            guards_fmt_dur(g->cfg.fraction_window_ms, dur, sizeof(dur));
            say(why, len,
                "%d of %d VMs of %s/%s under action or acted on within %s (%s), at most %d "
                "(%g of %d)",
                n, size, t->ns, t->mci, dur, names, limit, g->cfg.mci_fraction, size);
            return GUARD_FRACTION;
        }
    }
    size_t n = guards_rate_count(g, now_ms);
    if ((long long)n >= (long long)g->cfg.rate_per_hour) {
        dsf_rfc3339_ms(rate_oldest(g, now_ms) + GUARDS_HOUR_MS, t1);
        say(why, len, "%zu actions begun in the last hour, at most %lld; the next may begin %s", n,
            (long long)g->cfg.rate_per_hour, t1);
        return GUARD_RATE;
    }
    return GUARD_PASS;
}

enum guard_block guards_check(struct guards *g, const struct guard_target *t, int64_t cooldown_ms,
                              int64_t now_ms, char *why, size_t whylen)
{
    guards_seen(g, now_ms);
    if (cooldown_ms > g->max_cooldown_ms)
        g->max_cooldown_ms = cooldown_ms;
    struct gmci *m = (struct gmci *)gkey_find(&g->mcis, t->ns, t->mci, "");
    struct gtarget *e = (struct gtarget *)gkey_find(&g->targets, t->ns, t->mci, t->target);
    enum guard_block b = GUARD_PASS;
    /* The cooldown's length is known here only: kept so that it expires and shows. */
    struct gcooldown *c = e ? guards_cooldown_get(e, t->policy, 0) : NULL;
    if (c)
        c->cooldown_ms = cooldown_ms;
    if (g->paused) {
        say(why, whylen, "actions paused by an operator");
        return GUARD_PAUSED;
    }
    if (guards_breaker_why(g, m, why, whylen))
        return GUARD_BREAKER;
    if ((b = check_target(g, t, e, c, cooldown_ms, now_ms, why, whylen)) != GUARD_PASS)
        return b;
    if ((b = check_fleet(g, t, m, e, now_ms, why, whylen)) != GUARD_PASS)
        return b;
    say(why, whylen, "pass");
    /* Kept for the begin that follows. */
    e = guards_target_get(g, t);
    c = e ? guards_cooldown_get(e, t->policy, 1) : NULL;
    if (c)
        c->cooldown_ms = cooldown_ms;
    return GUARD_PASS;
}

void guards_begin(struct guards *g, const struct guard_target *t, int64_t now_ms)
{
    guards_seen(g, now_ms);
    struct gtarget *e = guards_target_get(g, t);
    if (!e)
        return;
    e->busy++;
    e->vm_level = t->vm_level != 0;
    e->last_begin_ms = now_ms;
    e->m->active++;
    g->active++;
    /* Busy keeps it out until the end: the cooldown that counts starts then. */
    struct gcooldown *c = guards_cooldown_get(e, t->policy, 1);
    if (c)
        c->end_ms = GUARDS_NONE;
    rate_push(g, now_ms);
}

void guards_end(struct guards *g, const struct guard_target *t, int64_t now_ms,
                int64_t hold_until_ms)
{
    guards_seen(g, now_ms);
    struct gtarget *e = guards_target_get(g, t);
    if (!e)
        return;
    /* An end without its begin (replayed from a cut audit) still starts the cooldown. */
    if (e->busy > 0) {
        e->busy--;
        e->m->active--;
        g->active--;
    }
    struct gcooldown *c = guards_cooldown_get(e, t->policy, 1);
    if (c)
        c->end_ms = now_ms;
    if (hold_until_ms > now_ms)
        e->hold_until_ms = hold_until_ms;
}

int guards_release(struct guards *g, const char *ns, const char *mci, const char *target)
{
    struct gtarget *e = (struct gtarget *)gkey_find(&g->targets, ns, mci, target);
    if (!e || !e->hold_until_ms || e->hold_until_ms <= g->now_ms)
        return -1;
    e->hold_until_ms = 0;
    return 0;
}
