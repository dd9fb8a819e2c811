#include "collector/aggregate.h"
#include "collector/aggregate_impl.h"
#include "common/lp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const fn_names[] = {"auto", "mean", "min", "max", "last", "sum", "count"};

static int fn_parse(const char *s, uint8_t *out)
{
    for (uint8_t i = FN_MEAN; i <= FN_COUNT; i++)
        if (strcmp(s, fn_names[i]) == 0) {
            *out = i;
            return 0;
        }
    return -1;
}

static char *escaped(const char *s, int measurement, uint32_t *n)
{
    struct dsf_buf b = {0};
    if (measurement)
        lp_put_measurement(&b, s);
    else
        lp_put_key(&b, s);
    buf_cstr(&b);
    *n = (uint32_t)b.len;
    return b.data;
}

void agg_rule_free(struct rule *r)
{
    free(r->measurement);
    for (size_t i = 0; i < r->nfields; i++)
        free(r->fields[i].key);
    free(r->fields);
    memset(r, 0, sizeof(*r));
}

static int rule_token(struct rule *r, const char *tok, const char *text, char *err, size_t errlen)
{
    const char *eq = strchr(tok, '=');
    if (!eq || eq == tok || !eq[1]) {
        snprintf(err, errlen, "aggregate rule '%s': '%s' is not name=value", text, tok);
        return -1;
    }
    char name[256];
    snprintf(name, sizeof(name), "%.*s", (int)(eq - tok), tok);
    const char *val = eq + 1;
    if (strcmp(name, "window") == 0) {
        int64_t ms;
        if (dsf_parse_duration_ms(val, &ms) || ms < 1 || ms > 86400000LL * 7) {
            snprintf(err, errlen, "aggregate rule '%s': window '%s' is not a duration in 1ms..7d",
                     text, val);
            return -1;
        }
        r->window_ns = ms * 1000000;
        return 0;
    }
    uint8_t fn;
    if (fn_parse(val, &fn)) {
        snprintf(err, errlen,
                 "aggregate rule '%s': '%s' is not one of mean, min, max, last, sum, count", text,
                 val);
        return -1;
    }
    if (strcmp(name, "default") == 0) {
        r->deflt = fn;
        return 0;
    }
    struct rule_field *f = realloc(r->fields, (r->nfields + 1) * sizeof(*f));
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    r->fields = f;
    f[r->nfields].key = escaped(name, 0, &f[r->nfields].n);
    f[r->nfields++].fn = fn;
    return 0;
}

/* "MEASUREMENT [window=DURATION] [default=FN] [FIELD=FN ...]" */
int agg_rule_parse(const char *text, struct rule *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof(*r));
    r->window_ns = 10000000000LL;
    char *copy = strdup(text), *save = NULL;
    if (!copy) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = 0;
    for (char *tok = strtok_r(copy, " \t", &save); tok && rc == 0;
         tok = strtok_r(NULL, " \t", &save)) {
        if (!r->measurement)
            r->measurement = escaped(tok, 1, &r->n);
        else
            rc = rule_token(r, tok, text, err, errlen);
    }
    free(copy);
    if (rc == 0 && !r->measurement) {
        snprintf(err, errlen, "aggregate rule '%s': no measurement", text);
        rc = -1;
    }
    if (rc)
        agg_rule_free(r);
    return rc;
}

int aggregate_check_rules(const struct dsf_strlist *rules, char *err, size_t errlen)
{
    for (size_t i = 0; i < rules->count; i++) {
        struct rule r;
        if (agg_rule_parse(rules->items[i], &r, err, errlen))
            return -1;
        agg_rule_free(&r);
    }
    return 0;
}

uint8_t agg_field_fn(const struct rule *r, const char *key, uint32_t n, uint8_t type)
{
    uint8_t fn = r->deflt;
    for (size_t i = 0; i < r->nfields; i++)
        if (r->fields[i].n == n && memcmp(r->fields[i].key, key, n) == 0)
            fn = r->fields[i].fn;
    if (fn == FN_AUTO)
        fn = type == DSF_V_FLOAT ? FN_MEAN : FN_LAST;
    if ((type == DSF_V_STR || type == DSF_V_BOOL) && fn != FN_COUNT)
        fn = FN_LAST; /* nothing else is defined for them */
    return fn;
}
