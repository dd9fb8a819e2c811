/* libFuzzer target: the monitoring API's request checker (the on-demand forms included) and
 * InfluxQL builder on any path and query string ("PATH?QUERY"). A request is either refused with a
 * 4xx naming a parameter in a message of printable ASCII (it goes into JSON as is), or accepted
 * with names that cannot leave their string literals: the statement's unescaped quotes pair up. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"
#include "control/query.h"

static void check_refusal(const struct qp_error *e)
{
    if (e->status != 400 && e->status != 404 && e->status != 414)
        abort();
    if (!e->param[0] || !e->msg[0])
        abort();
    for (const char *p = e->msg; *p; p++) {
        if (*p < 0x20 || *p > 0x7e)
            abort();
    }
}

static void check_name(const char *s, int may_be_empty)
{
    size_t n = strlen(s);
    if ((!may_be_empty && n == 0) || n > QP_NAME_MAX || strchr(s, '/') || strstr(s, "..") ||
        !utf8_valid(s, n))
        abort();
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            abort();
    }
}

/* Outside the literals, a quote opens one; inside, a backslash escapes the next byte. */
static void check_quotes(const char *q)
{
    int in = 0;
    for (; *q; q++) {
        if (in && *q == '\\') {
            if (!*++q)
                abort();
        } else if (*q == '\'') {
            in = !in;
        }
    }
    if (in)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char *query = strchr(text, '?');
    if (query)
        *query++ = '\0';
    struct qp_request r;
    struct qp_error e;
    if (qp_parse(text, query, &r, &e) < 0) {
        check_refusal(&e);
    } else {
        static char out[16384];
        int ondemand = r.form == QP_ONDEMAND || r.form == QP_NETLATENCY;
        check_name(r.ns, 0);
        check_name(r.mci, 0);
        check_name(r.vm, r.form == QP_MCI || r.form == QP_NETLATENCY);
        /* On-demand names are topic levels: a wildcard would reach other agents. */
        if (ondemand && (strpbrk(r.ns, "+#") || strpbrk(r.mci, "+#") || strpbrk(r.vm, "+#")))
            abort();
        if (ondemand) {
            if (r.metric)
                abort();
            free(text);
            return 0;
        }
        if (!r.metric || r.duration_s <= 0 || r.duration_s > QP_DURATION_MAX_S)
            abort();
        if (qp_influxql(&r, out, sizeof(out)) < 0)
            abort(); /* a checked request always fits */
        check_quotes(out);
    }
    free(text);
    return 0;
}
