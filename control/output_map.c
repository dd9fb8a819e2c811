/* The pure mappings of control/output.h: an audit record as a dsf_action line and as an
 * alert for the notifier (docs/control.md states both). */
#include "common/loop.h"
#include "common/lp.h"
#include "common/rfc3339.h"
#include "control/output.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The record's fields that become tags, sorted as InfluxDB keeps them. */
static const char *const tag_keys[] = {"event",   "guard", "kind",   "mci",   "ns",     "op",
                                       "outcome", "phase", "policy", "scope", "target", "verdict"};

static const char *str(const json_t *rec, const char *key)
{
    const char *v = json_string_value(json_object_get(rec, key));
    return v && *v ? v : NULL;
}

static int record_time(const json_t *rec, int64_t *ns)
{
    const char *t = str(rec, "time");
    return t ? dsf_rfc3339_parse(t, ns) : -1;
}

/* One field: key=value with its separator; counts what was written. */
static void put_field(struct dsf_buf *out, int *n, const char *key, const json_t *v)
{
    const char *prefix = *n ? "," : " ";
    if (json_is_string(v) && *json_string_value(v)) {
        buf_puts(out, prefix);
        lp_put_key(out, key);
        buf_putc(out, '=');
        lp_put_string_value(out, json_string_value(v));
    } else if (json_is_integer(v)) {
        buf_printf(out, "%s%s=%lldi", prefix, key, (long long)json_integer_value(v));
    } else if (json_is_boolean(v)) {
        buf_printf(out, "%s%s=%s", prefix, key, json_is_true(v) ? "true" : "false");
    } else {
        return;
    }
    (*n)++;
}

int ctl_output_line(const json_t *rec, struct dsf_buf *out)
{
    int64_t ns;
    if (!json_is_object(rec) || !str(rec, "event") || record_time(rec, &ns))
        return -1;
    size_t start = out->len;
    lp_put_measurement(out, "dsf_action");
    for (size_t i = 0; i < sizeof(tag_keys) / sizeof(tag_keys[0]); i++) {
        const char *v = str(rec, tag_keys[i]);
        if (!v)
            continue; /* line protocol has no empty tag values */
        buf_putc(out, ',');
        lp_put_key(out, tag_keys[i]);
        buf_putc(out, '=');
        lp_put_key(out, v);
    }
    /* Typed as the record shapes of docs/control.md say; another type is left out. */
    static const struct {
        const char *key;
        char type; /* s: string, i: integer, b: boolean */
    } fields[] = {{"action", 's'}, {"step", 'i'},  {"ok", 'b'}, {"open", 'b'},
                  {"why", 's'},    {"error", 's'}, {"seq", 'i'}};
    int n = 0;
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        const json_t *v = json_object_get(rec, fields[i].key);
        char t = json_is_string(v) ? 's' : json_is_integer(v) ? 'i' : json_is_boolean(v) ? 'b' : 0;
        if (t && t == fields[i].type)
            put_field(out, &n, fields[i].key, v);
    }
    if (n == 0) {
        out->len = start;
        return -1;
    }
    /* The audit's times are milliseconds: two records of one series in the same millisecond
     * would be one point. The seq in the nanoseconds keeps them apart. */
    const json_t *seq = json_object_get(rec, "seq");
    if (ns % 1000000 == 0 && json_is_integer(seq))
        ns += (int64_t)(json_integer_value(seq) % 1000000);
    buf_printf(out, " %lld\n", (long long)ns);
    return 0;
}

/* ---- alerts ---- */

enum alert_kind { NOT_TOLD, ACTION_END, APPROVAL, NOTIFY_STEP, BREAKER };

static enum alert_kind kind_of(const json_t *rec)
{
    const char *ev = str(rec, "event"), *v;
    if (!ev)
        return NOT_TOLD;
    if (!strcmp(ev, "end"))
        return ACTION_END;
    if (!strcmp(ev, "breaker"))
        return json_is_boolean(json_object_get(rec, "open")) ? BREAKER : NOT_TOLD;
    if (!strcmp(ev, "decision"))
        return (v = str(rec, "verdict")) && !strcmp(v, "approval") ? APPROVAL : NOT_TOLD;
    /* A notify step is told once, as it begins; a dry run tells nobody. */
    if (!strcmp(ev, "step") && (v = str(rec, "op")) && !strcmp(v, "notify") &&
        !((v = str(rec, "phase")) && !strcmp(v, "end")) &&
        !json_is_true(json_object_get(rec, "dry_run")))
        return NOTIFY_STEP;
    return NOT_TOLD;
}

static const char *severity_of(enum alert_kind k, const json_t *rec)
{
    if (k == BREAKER)
        return "crit"; /* the close resolves the open: the same labels */
    const char *outcome = str(rec, "outcome");
    if (k == ACTION_END && outcome && (!strcmp(outcome, "exhausted") || !strcmp(outcome, "failed")))
        return "crit";
    return "warn";
}

static void add(struct ctl_alert *a, int annotation, const char *key, const char *val)
{
    struct alarm_labels *l = annotation ? &a->alert.annotations : &a->alert.labels;
    struct alarm_label *kv = annotation ? a->annotations : a->labels;
    if (val && *val && l->n < (annotation ? 2 : CTL_ALERT_KV_MAX))
        kv[l->n++] = (struct alarm_label){key, val};
}

static int by_key(const void *x, const void *y)
{
    return strcmp(((const struct alarm_label *)x)->key, ((const struct alarm_label *)y)->key);
}

/* "vm1 in ns1/m1", or what of it the record has. */
static void where(const json_t *rec, char *out, size_t cap)
{
    const char *t = str(rec, "target"), *ns = str(rec, "ns"), *mci = str(rec, "mci");
    snprintf(out, cap, "%s%s%s%s%s", t ? t : "the fleet", ns ? " in " : "", ns ? ns : "",
             mci ? "/" : "", mci ? mci : "");
}

static void summarize(enum alert_kind k, const json_t *rec, struct ctl_alert *a)
{
    char at[300];
    const char *action = str(rec, "action"), *policy = str(rec, "policy"), *op = str(rec, "op");
    where(rec, at, sizeof(at));
#define OR(s, d) ((s) ? (s) : (d))
    if (k == ACTION_END)
        snprintf(a->summary, sizeof(a->summary), "Action %s of policy %s on %s: %s%s%s",
                 OR(action, "?"), OR(policy, "?"), at, OR(str(rec, "outcome"), "ended"),
                 str(rec, "hold_until") ? ", held until " : "", OR(str(rec, "hold_until"), ""));
    else if (k == APPROVAL)
        snprintf(a->summary, sizeof(a->summary),
                 "Action %s of policy %s waits for approval to %s %s", OR(action, "?"),
                 OR(policy, "?"), OR(op, "act on"), at);
    else if (k == NOTIFY_STEP)
        snprintf(a->summary, sizeof(a->summary), "Policy %s notifies about %s (action %s)",
                 OR(policy, "?"), at, OR(action, "?"));
    else
        snprintf(a->summary, sizeof(a->summary), "Breaker %s %s", OR(str(rec, "scope"), "?"),
                 json_is_true(json_object_get(rec, "open")) ? "opened: actions held back"
                                                            : "closed: actions resume");
    const json_t *al = json_object_get(rec, "alarm");
    char alarm[300] = "";
    if (str(al, "rule"))
        snprintf(alarm, sizeof(alarm), "alarm %s %s (%s) from %s", str(al, "rule"),
                 OR(str(al, "state"), "?"), OR(str(al, "severity"), "?"),
                 OR(str(al, "engine"), "?"));
    char error[300] = "";
    if (str(rec, "error"))
        snprintf(error, sizeof(error), "error: %s", str(rec, "error"));
    const char *parts[] = {str(rec, "why"), *error ? error : NULL, *alarm ? alarm : NULL};
    size_t len = 0;
    for (size_t i = 0; i < 3 && len < sizeof(a->description); i++)
        if (parts[i])
            len += (size_t)snprintf(a->description + len, sizeof(a->description) - len, "%s%s",
                                    len ? "; " : "", parts[i]);
#undef OR
}

int ctl_output_alert(const json_t *rec, int64_t open_starts_ns, struct ctl_alert *out)
{
    enum alert_kind k = json_is_object(rec) ? kind_of(rec) : NOT_TOLD;
    int64_t ns;
    if (k == NOT_TOLD || record_time(rec, &ns))
        return 0;
    memset(out, 0, sizeof(*out));
    out->alert.labels.kv = out->labels;
    out->alert.annotations.kv = out->annotations;
    add(out, 0, "alertname", k == BREAKER ? "damselfly_breaker" : "damselfly_action");
    add(out, 0, "severity", severity_of(k, rec));
    static const char *const keys[] = {"scope", "ns",      "mci",    "target", "policy",
                                       "op",    "outcome", "action", "event"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (k != BREAKER || i == 0)
            add(out, 0, keys[i], str(rec, keys[i]));
    summarize(k, rec, out);
    add(out, 1, "summary", out->summary);
    add(out, 1, "description", out->description);
    qsort(out->labels, out->alert.labels.n, sizeof(out->labels[0]), by_key);
    qsort(out->annotations, out->alert.annotations.n, sizeof(out->annotations[0]), by_key);
    out->alert.starts_at_ns = ns;
    if (k != BREAKER) {
        out->alert.ends_at_ns = ns; /* already over: told once */
        out->alert.one_off = 1;
    } else if (!json_is_true(json_object_get(rec, "open"))) {
        out->alert.starts_at_ns = open_starts_ns ? open_starts_ns : ns;
        out->alert.ends_at_ns = ns;
    }
    return 1;
}
