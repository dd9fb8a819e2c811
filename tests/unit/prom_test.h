/* What the Prometheus parser tests collect: every sample rendered as line protocol (or the
 * reason it could not be), every rejection with its reason. */
#ifndef DSF_PROM_TEST_H
#define DSF_PROM_TEST_H

#include <stdio.h>
#include <string.h>

#include "common/prom.h"

struct seen {
    size_t samples, rejects, unrendered;
    struct dsf_buf lines;
    char last_reason[128];
    char last_reject_text[128];
    struct prom_sample last;
};

static const int64_t test_now_ns = 1700000000000000000LL;

static void seen_sample(void *ctx, const struct prom_sample *s)
{
    struct seen *seen = ctx;
    const char *reason;
    seen->samples++;
    seen->last = *s;
    if (prom_render_line(&seen->lines, s, test_now_ns, &reason)) {
        seen->unrendered++;
        snprintf(seen->last_reason, sizeof(seen->last_reason), "%s", reason);
    }
}

static void seen_reject(void *ctx, const char *text, size_t len, const char *reason)
{
    struct seen *seen = ctx;
    seen->rejects++;
    snprintf(seen->last_reason, sizeof(seen->last_reason), "%s", reason);
    snprintf(seen->last_reject_text, sizeof(seen->last_reject_text), "%.*s",
             (int)(len < 100 ? len : 100), text);
}

static const struct prom_ops seen_ops = {seen_sample, seen_reject};

#endif
