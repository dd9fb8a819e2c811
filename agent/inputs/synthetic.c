/*
 * synthetic: a load generator for testing the pipeline at a chosen rate. Each cycle it
 * emits `series` points (measurement "synthetic", tag series=sN) whose field values are a
 * function of the series and the timestamp, so a store's content can be checked exactly.
 * Off by default; never enable it on a real host.
 */
#define DSF_MODULE "synthetic"
#include "agent/input.h"
#include "common/log.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

struct synthetic_options {
    int enabled;
    int64_t series;
    int64_t fields;
};

static const struct dsf_cfg_key synthetic_keys[] = {
    {"enabled", DSF_CFG_BOOL, "false", offsetof(struct synthetic_options, enabled),
     "emit synthetic points (load testing only)", 0, 0},
    {"series", DSF_CFG_INT, "100", offsetof(struct synthetic_options, series),
     "points per cycle, one per series", 1, 1000000},
    {"fields", DSF_CFG_INT, "4", offsetof(struct synthetic_options, fields),
     "float fields per point", 1, 64},
    DSF_CFG_END,
};

struct synthetic {
    struct synthetic_options opt;
    char (*names)[24];
    char fields[64][24];
};

static int synthetic_init(void **ctx, const void *options, const struct dsf_input_env *env,
                          char *err, size_t errlen)
{
    struct synthetic *s = calloc(1, sizeof(*s));
    if (!s)
        return -1;
    s->opt = *(const struct synthetic_options *)options;
    s->names = calloc((size_t)s->opt.series, sizeof(*s->names));
    if (!s->names) {
        snprintf(err, errlen, "out of memory for %lld series", (long long)s->opt.series);
        free(s);
        return -1;
    }
    for (int64_t i = 0; i < s->opt.series; i++)
        snprintf(s->names[i], sizeof(s->names[i]), "s%lld", (long long)i);
    for (int64_t f = 0; f < s->opt.fields; f++)
        snprintf(s->fields[f], sizeof(s->fields[f]), "f%lld", (long long)f);
    log_warn("emitting %lld synthetic points per cycle (load testing)", (long long)s->opt.series);
    *ctx = s;
    return 0;
}

static int synthetic_collect(void *ctx, struct dsf_batch *out, int64_t now_ns)
{
    struct synthetic *s = ctx;
    double t = (double)(now_ns / 1000000000LL % 100000);
    for (int64_t i = 0; i < s->opt.series; i++) {
        batch_begin(out, "synthetic", now_ns);
        batch_tag(out, "series", s->names[i]);
        for (int64_t f = 0; f < s->opt.fields; f++)
            batch_field_f(out, s->fields[f], (double)i + t / 8.0 + (double)f);
        batch_end(out);
    }
    return 0;
}

static void synthetic_fini(void *ctx)
{
    struct synthetic *s = ctx;
    free(s->names);
    free(s);
}

const struct dsf_input dsf_input_synthetic = {
    .name = "synthetic",
    .options = synthetic_keys,
    .options_size = sizeof(struct synthetic_options),
    .init = synthetic_init,
    .collect = synthetic_collect,
    .fini = synthetic_fini,
};
