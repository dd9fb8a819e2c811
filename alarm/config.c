#include "alarm/alarm.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define K(field) offsetof(struct alarm_config, field)

const struct dsf_cfg_key alarm_config_keys[] = {
    {"id", DSF_CFG_ID, "", K(id),
     "engine id (MQTT client id, events' engine field; 1-63 bytes, no / + #); empty: the host "
     "name",
     0, 0},
    {"input", DSF_CFG_STR, "mqtt", K(input), "mqtt or kafka", 0, 0},
    {"rules.dir", DSF_CFG_STR, "/etc/damselfly/alarm.d", K(rules_dir),
     "directory of rule files (*.json, schemas/alarm-rule.schema.json); re-read on SIGHUP and "
     "POST /api/v1/reload",
     0, 0},
    {"rules.max", DSF_CFG_INT, "10000", K(rules_max),
     "rules held at most; beyond it the API refuses new rules (409) and a reload refuses the "
     "files' extra rules, counted",
     1, 1000000},
    {"rules.max_bytes", DSF_CFG_SIZE, "64KiB", K(rules_max_bytes),
     "largest rule body PUT /api/v1/rules/{name} takes (413 beyond it, counted)", 1024, 4194304},
    {"state.dir", DSF_CFG_STR, "/var/lib/damselfly/alarm", K(state_dir),
     "where the alarms' states (and the notifier's log and silences) persist across restarts", 0,
     0},
    {"notify.config", DSF_CFG_FILE, "", K(notify.config),
     "the notifier's routing file (schemas/alarm-notify.schema.json); empty: no notifications", 0,
     0},
    {"notify.resend", DSF_CFG_DURATION, "1m", K(notify.resend_ms),
     "how often a firing alarm is handed to the notifier again (it deduplicates)", 1000, 86400000},
    {"notify.max_silences", DSF_CFG_INT, "1000", K(notify.max_silences),
     "silences kept at most, expired ones included (the oldest expired go first); beyond it "
     "POST /api/v1/silences is refused (409, counted)",
     1, 1000000},
    {"notify.max_silence_duration", DSF_CFG_DURATION, "30d", K(notify.max_silence_ms),
     "longest silence POST /api/v1/silences takes (endsAt - startsAt; 400 beyond it, counted); "
     "0: no limit",
     0, 86400000.0 * 36500},
    {"history.size", DSF_CFG_INT, "1000", K(history_size), "events kept for GET /api/v1/history", 1,
     1000000},
    {"max_series", DSF_CFG_INT, "2000000", K(max_series),
     "(rule, group) series held at most; samples of new series beyond it are counted and dropped",
     1, 1e9},
    {"tick", DSF_CFG_DURATION, "100ms", K(tick_ms),
     "resolution of the deadman (nodata) and of the offline signal's for", 10, 10000},
    DSF_CFG_END,
};

void alarm_config_sections(struct alarm *a)
{
    /* Stale samples are of no use to a stream rule: a clean session unless asked. */
    static const char *const consumer_defaults[] = {"session_expiry=0s", NULL};
    static const char *const group_defaults[] = {"group=dsf-alarm", NULL};
    struct dsf_cfg_section *s = a->sections;
    s[0] = (struct dsf_cfg_section){"", alarm_config_keys, &a->cfg, NULL};
    size_t n = 1 + dsf_event_store_sections(s + 1, &a->cfg.output, NULL);
    n += dsf_bus_consumer_sections(s + n, &a->cfg.mqtt, &a->cfg.kafka, consumer_defaults,
                                   group_defaults);
    n += dsf_follow_sections(s + n, &a->cfg.follow);
    s[n] = (struct dsf_cfg_section){NULL, NULL, NULL, NULL};
}

int alarm_config_validate(const struct dsf_cfg_section *secs, const char *origin, char *err,
                          size_t errlen)
{
    const struct alarm_config *c = secs[0].obj;
    const char *bad = NULL;
    if (strcmp(c->input, "mqtt") != 0 && strcmp(c->input, "kafka") != 0)
        bad = "input";
    else if (*c->output.url && strncmp(c->output.url, "http://", 7) != 0 &&
             strncmp(c->output.url, "https://", 8) != 0)
        bad = "output.url";
    else if (!*c->rules_dir)
        bad = "rules.dir";
    else if (!*c->state_dir)
        bad = "state.dir";
    if (bad) {
        snprintf(err, errlen, "%s: key '%s' has an unknown or empty value (see --help)", origin,
                 bad);
        return -1;
    }
    return 0;
}
