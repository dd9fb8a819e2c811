/*
 * The alarms' states survive a restart: every pending, firing and nodata series with its
 * timestamps goes to state.dir/alarm-state.json, written atomically (temp file, fsync,
 * rename, fsync of the directory) shortly after each change, and is read back at start, so
 * a restarted engine neither forgets an alarm nor announces it a second time. The loop only
 * renders the file; a writer thread does the I/O, since an fsync on the loop would hold up
 * the evaluation of every sample behind it.
 */
#define DSF_MODULE "state"
#include "alarm/alarm.h"
#include "common/file.h"
#include "common/log.h"
#include "common/loop.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STATE_FILE "alarm-state.json"
#define SAVE_EVERY_MS 200 /* at most this often, so a storm of transitions is one write */

static void add_series(void *arg, const struct rule *r, struct series *s)
{
    json_t *arr = arg;
    if (s->state != ST_PENDING && s->state != ST_FIRING && s->state != ST_NODATA)
        return;
    json_array_append_new(
        arr,
        json_pack("{s:s, s:s, s:s, s:i, s:f, s:f, s:I, s:I, s:I, s:I, s:I}", "rule", r->name,
                  "group", s->key, "state", alarm_state_name((enum alarm_state)s->state),
                  "severity", s->severity, "value", s->value, "threshold", s->threshold,
                  "sample_ts", (json_int_t)s->ts_ns, "pending_since", (json_int_t)s->pending_since,
                  "firing_since", (json_int_t)s->firing_since, "clear_since",
                  (json_int_t)s->clear_since, "changed_at", (json_int_t)s->changed_at));
}

/* The loop only renders; the writer thread does the I/O (temporary file, fsync, rename). */
static struct dsf_file_writer *writer;

static void written(void *arg, const char *err)
{
    struct alarm *a = arg;
    if (err) {
        dsf_count(&a->stats.state_save_failures, 1);
        log_error("saving the alarms' states: %s", err);
    } else {
        dsf_count(&a->stats.state_saves, 1);
    }
}

static char *render(struct alarm *a)
{
    json_t *arr = json_array();
    engine_foreach(a->engine, add_series, arr);
    json_t *root = json_pack("{s:i, s:o}", "version", 1, "series", arr);
    char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return text;
}

int alarm_state_save(struct alarm *a)
{
    char *text = render(a);
    a->last_save_ms = dsf_mono_ms();
    if (!writer)
        writer = dsf_file_writer_new();
    if (!text || !writer ||
        dsf_file_writer_put(writer, a->cfg.state_dir, STATE_FILE, text, strlen(text), written, a)) {
        free(text);
        dsf_count(&a->stats.state_save_failures, 1);
        log_error("saving the alarms' states: out of memory");
        return -1;
    }
    free(text);
    a->state_dirty = 0;
    return 0;
}

void alarm_state_close(struct alarm *a)
{
    if (a->state_dirty && a->engine)
        alarm_state_save(a);
    dsf_file_writer_free(writer); /* it writes what is queued first */
    writer = NULL;
}

static void on_save(evutil_socket_t fd, short what, void *arg)
{
    struct alarm *a = arg;
    a->save_scheduled = 0;
    if (a->state_dirty)
        alarm_state_save(a);
}

void alarm_state_dirty(struct alarm *a)
{
    a->state_dirty = 1;
    if (a->save_scheduled || !a->base)
        return;
    if (!a->save_timer && !(a->save_timer = evtimer_new(a->base, on_save, a)))
        return;
    int64_t wait = a->last_save_ms + SAVE_EVERY_MS - dsf_mono_ms();
    if (wait < 0)
        wait = 0;
    struct timeval tv = {(time_t)(wait / 1000), (suseconds_t)(wait % 1000 * 1000)};
    event_add(a->save_timer, &tv);
    a->save_scheduled = 1;
}

int alarm_state_restore(struct alarm *a)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", a->cfg.state_dir, STATE_FILE);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) {
        if (access(path, F_OK) == 0)
            log_error("%s: unreadable (%s): starting with no alarms", path, jerr.text);
        return access(path, F_OK) == 0 ? -1 : 0;
    }
    size_t i, restored = 0, dropped = 0;
    json_t *it;
    json_array_foreach(json_object_get(root, "series"), i, it)
    {
        const char *rule = NULL, *group = NULL, *state = NULL;
        int sev = 0;
        double value = 0, threshold = 0;
        json_int_t ts = 0, pend = 0, firing = 0, clear = 0, changed = 0;
        int st = -1;
        if (json_unpack(it, "{s:s, s:s, s:s, s:i, s:F, s:F, s:I, s:I, s:I, s:I, s:I}", "rule",
                        &rule, "group", &group, "state", &state, "severity", &sev, "value", &value,
                        "threshold", &threshold, "sample_ts", &ts, "pending_since", &pend,
                        "firing_since", &firing, "clear_since", &clear, "changed_at",
                        &changed) == 0)
            st = alarm_state_parse(state);
        struct series s = {.state = (uint8_t)st,
                           .severity = (uint8_t)sev,
                           .value = value,
                           .threshold = threshold,
                           .ts_ns = ts,
                           .pending_since = pend,
                           .firing_since = firing,
                           .clear_since = clear,
                           .changed_at = changed};
        if (st < 0 || sev < 0 || sev > SEV_OFFLINE ||
            engine_restore(a->engine, rule, group, &s, dsf_mono_ms()))
            dropped++;
        else
            restored++;
    }
    json_decref(root);
    log_info("restored %zu alarm states from %s (%zu of rules no longer loaded or unreadable)",
             restored, path, dropped);
    return 0;
}
