/* libFuzzer target: the controller's inputs from the network (an Alertmanager webhook, an
 * alarm event, an engine's alarm list, an agent status) on the same bytes. Any input must
 * parse into events that hold the parser's promises (bounded, sorted, keyable) or be refused
 * with a message naming what is wrong, never crash or leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "common/rfc3339.h"
#include "control/event.h"

static void check_fields(const struct ctl_event *e)
{
    if (e->nlabels > CTL_EVENT_LABELS_MAX || e->ngroup > e->nlabels || !e->engine[0] ||
        !e->rule[0] || strnlen(e->state, sizeof(e->state)) == sizeof(e->state) ||
        strnlen(e->severity, sizeof(e->severity)) == sizeof(e->severity))
        abort();
    for (size_t i = 0; i < e->nlabels; i++) {
        const struct ctl_label *l = &e->labels[i];
        if (strnlen(l->name, sizeof(l->name)) == sizeof(l->name) ||
            strnlen(l->value, sizeof(l->value)) == sizeof(l->value))
            abort();
        if (i && i != e->ngroup && strcmp(e->labels[i - 1].name, l->name) >= 0)
            abort(); /* each part sorted, names unique */
        if (ctl_event_label(e, l->name) != l->value)
            abort(); /* names unique across both parts */
    }
}

/* The occurrence key begins with the series key; both are refused whole when too long. */
static void check_keys(const struct ctl_event *e)
{
    static char key[1 << 16], series[1 << 16];
    int k = ctl_event_key(e, key, sizeof(key));
    int s = ctl_event_series_key(e, series, sizeof(series));
    if (k < 0 || s < 0 || (size_t)k != strlen(key) || (size_t)s != strlen(series) || s >= k ||
        strncmp(key, series, (size_t)s) != 0)
        abort();
    if (ctl_event_key(e, key, (size_t)k) != -1)
        abort();
}

static int check(void *arg, const struct ctl_event *e)
{
    check_fields(e);
    check_keys(e);
    ++*(size_t *)arg;
    return 0;
}

static void check_refusal(const char *err)
{
    if (!strstr(err, "key '") && !strstr(err, "not JSON") && !strstr(err, "JSON object"))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    char err[256] = "";
    size_t bad = 0, good = 0;
    struct ctl_event e;
    if (ctl_event_parse_alarm(text, size, &e, err, sizeof(err)) == 0)
        check(&good, &e);
    else
        check_refusal(err);
    if (ctl_event_parse_alarm_list(text, size, "fuzz", check, &good, &bad, err, sizeof(err)))
        check_refusal(err);
    else if (bad && !strstr(err, "alarms["))
        abort(); /* a skipped item is named */
    bad = 0;
    if (ctl_event_parse_alertmanager(text, size, check, &good, &bad, err, sizeof(err)))
        check_refusal(err);
    else if (bad && !strstr(err, "alerts["))
        abort();
    int st = dsf_status_parse(data, size);
    if (st < -1 || st > 2 || (st == 2) != (size == 0))
        abort();
    char *s = strndup(text, size);
    int64_t ns;
    if (s && dsf_rfc3339_parse(s, &ns) == 0 && strlen(s) < 20)
        abort(); /* nothing shorter than YYYY-MM-DDThh:mm:ssZ is a time */
    free(s);
    return 0;
}
