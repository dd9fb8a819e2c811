/* The controller's audit records to InfluxDB, the bus and the notifier (control/output.h):
 * each record is handed on as it was appended; what cannot go out is counted. */
#define DSF_MODULE "output"
#include "control/output.h"
#include "common/bus.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/topic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define K(field) offsetof(struct ctl_output_config, field)

const struct dsf_cfg_key ctl_output_keys[] = {
    {"notify.config", DSF_CFG_FILE, "", K(notify_config),
     "the notifier's routing file (schemas/alarm-notify.schema.json) for the actions a human "
     "must see; empty: no notifications",
     0, 0},
    DSF_CFG_END,
};

size_t ctl_output_sections(struct dsf_cfg_section *out, struct ctl_output_config *cfg)
{
    out[0] = (struct dsf_cfg_section){"", ctl_output_keys, cfg, NULL};
    return 1 + dsf_event_store_sections(out + 1, &cfg->output, NULL);
}

/* A breaker that is open: its close resolves the alert that began then. */
struct open_breaker {
    struct open_breaker *next;
    int64_t starts_ns;
    char scope[];
};

struct ctl_output {
    const struct ctl_output_config *cfg;
    struct dsf_event_store *store;
    struct dsf_event_store_stats store_stats;
    struct notifier *notifier;
    struct dsf_bus *bus;
    struct open_breaker *open;
    struct dsf_buf line;
    uint64_t bad_records;    /* no event or time: not written to InfluxDB */
    uint64_t published;      /* queued on the bus */
    uint64_t bus_dropped;    /* could not be queued, or ns/mci cannot be a topic segment */
    uint64_t alerts;         /* handed to the notifier */
    uint64_t alerts_dropped; /* could not be (out of memory) */
};

struct ctl_output *ctl_output_new(struct event_base *base, const struct ctl_output_config *cfg,
                                  char *err, size_t errlen)
{
    struct ctl_output *o = calloc(1, sizeof(*o));
    if (!o) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    o->cfg = cfg;
    char why[DSF_CFG_ERRLEN];
    if (cfg->output.url && *cfg->output.url &&
        !(o->store = dsf_event_store_new(base, &cfg->output, &o->store_stats, why, sizeof(why)))) {
        snprintf(err, errlen, "output.url: %s", why);
        ctl_output_free(o);
        return NULL;
    }
    if (cfg->notify_config && *cfg->notify_config &&
        !(o->notifier = notifier_new(base, cfg->notify_config, cfg->state_dir, why, sizeof(why)))) {
        snprintf(err, errlen, "notify.config: %s", why);
        ctl_output_free(o);
        return NULL;
    }
    return o;
}

void ctl_output_set_bus(struct ctl_output *o, struct dsf_bus *bus)
{
    o->bus = bus;
}

static void publish(struct ctl_output *o, const json_t *rec)
{
    char topic[256];
    if (dsf_topic_action(topic, sizeof(topic), json_string_value(json_object_get(rec, "ns")),
                         json_string_value(json_object_get(rec, "mci"))) < 0) {
        dsf_count(&o->bus_dropped, 1);
        log_warn("record %lld not published: its ns or mci cannot be a topic segment",
                 (long long)json_integer_value(json_object_get(rec, "seq")));
        return;
    }
    char *text = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
    /* Keyed ns/mci as the alarm events are: one MCI's records keep their order in Kafka. */
    const char *key = topic + strlen("dsf/action/");
    struct dsf_bus_message m = {.topic = topic,
                                .payload = text,
                                .len = text ? strlen(text) : 0,
                                .key = key,
                                .key_len = strlen(key)};
    if (text && dsf_bus_publish(o->bus, &m, 1, 0, 0) == 0) {
        dsf_count(&o->published, 1);
    } else {
        dsf_count(&o->bus_dropped, 1);
        log_warn("record on %s not published (bus not connected or full)", topic);
    }
    free(text);
}

/* Where the open breaker of scope is linked, or the end of the list. */
static struct open_breaker **find_open(struct ctl_output *o, const char *scope)
{
    struct open_breaker **p = &o->open;
    while (*p && strcmp((*p)->scope, scope) != 0)
        p = &(*p)->next;
    return p;
}

/* Remembers when a breaker opened, or forgets it as it closes; the starts_at its alert has. */
static int64_t track_breaker(struct ctl_output *o, const json_t *rec, int64_t now_ns)
{
    const char *scope = json_string_value(json_object_get(rec, "scope"));
    if (!scope)
        return 0;
    struct open_breaker **p = find_open(o, scope), *b = *p;
    if (json_is_true(json_object_get(rec, "open"))) {
        if (b)
            return b->starts_ns; /* opened again while open: the same alert */
        size_t n = strlen(scope) + 1;
        if (!(b = malloc(sizeof(*b) + n)))
            return now_ns; /* its close then resolves it with the close's time as start */
        memcpy(b->scope, scope, n);
        b->starts_ns = now_ns;
        b->next = o->open;
        o->open = b;
        return now_ns;
    }
    int64_t starts = b ? b->starts_ns : 0;
    if (b) {
        *p = b->next;
        free(b);
    }
    return starts;
}

static void notify(struct ctl_output *o, const json_t *rec)
{
    struct ctl_alert *a = malloc(sizeof(*a));
    if (!a) {
        dsf_count(&o->alerts_dropped, 1);
        return;
    }
    if (ctl_output_alert(rec, 0, a)) {
        if (!a->alert.one_off) { /* a breaker: firing from its first open to its close */
            int64_t starts = track_breaker(o, rec, a->alert.starts_at_ns);
            if (starts)
                a->alert.starts_at_ns = starts;
        }
        notifier_push(o->notifier, &a->alert);
        dsf_count(&o->alerts, 1);
    }
    free(a);
}

void ctl_output_record(struct ctl_output *o, const json_t *rec)
{
    if (o->store) {
        buf_reset(&o->line);
        if (ctl_output_line(rec, &o->line) == 0)
            dsf_event_store_add(o->store, o->line.data, o->line.len);
        else
            dsf_count(&o->bad_records, 1);
    }
    if (o->bus)
        publish(o, rec);
    if (o->notifier)
        notify(o, rec);
}

void ctl_output_flush(struct ctl_output *o)
{
    if (o->store)
        dsf_event_store_flush(o->store);
}

int ctl_output_idle(const struct ctl_output *o)
{
    return !o->store || dsf_event_store_idle(o->store);
}

static void counter(struct dsf_buf *out, const char *name, const char *help, const uint64_t *v)
{
    prom_family(out, name, "counter", help);
    prom_labeled_sample(out, name, (double)dsf_read(v), NULL);
}

void ctl_output_render_metrics(const struct ctl_output *o, struct dsf_buf *out)
{
    const char *points = "damselfly_control_output_store_points_total";
    const struct dsf_event_store_stats *s = &o->store_stats;
    prom_family(out, points, "counter",
                "dsf_action points: written, refused by InfluxDB, dropped (output.max_pending, "
                "or a record without event or time).");
    prom_labeled_sample(out, points, (double)dsf_read(&s->points), "result", "ok", NULL);
    prom_labeled_sample(out, points, (double)dsf_read(&s->failed_points), "result", "refused",
                        NULL);
    prom_labeled_sample(out, points,
                        (double)(dsf_read(&s->dropped_points) + dsf_read(&o->bad_records)),
                        "result", "dropped", NULL);
    counter(out, "damselfly_control_output_bus_published_total",
            "Records queued on dsf/action/{ns}/{mci}.", &o->published);
    counter(out, "damselfly_control_output_bus_dropped_total",
            "Records not published: the bus could not queue them, or their ns or mci cannot "
            "be a topic segment.",
            &o->bus_dropped);
    counter(out, "damselfly_control_output_alerts_total", "Records handed to the notifier.",
            &o->alerts);
    counter(out, "damselfly_control_output_alerts_dropped_total",
            "Records a human must see that could not be handed to the notifier (out of memory).",
            &o->alerts_dropped);
    if (o->notifier)
        notifier_render_metrics(o->notifier, out);
}

void ctl_output_free(struct ctl_output *o)
{
    if (!o)
        return;
    if (o->notifier)
        notifier_free(o->notifier, 1);
    dsf_event_store_free(o->store);
    while (o->open) {
        struct open_breaker *b = o->open;
        o->open = b->next;
        free(b);
    }
    buf_free(&o->line);
    free(o);
}
