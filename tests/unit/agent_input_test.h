/*
 * Helpers for the agent input tests: run an input with options given as JSON, look points
 * up in its batch, and check its Prometheus output with promtool when it is installed.
 */
#ifndef DSF_TEST_AGENT_INPUT_H
#define DSF_TEST_AGENT_INPUT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/input.h"
#include "common/config.h"
#include "common/point.h"

struct input_run {
    const struct dsf_input *in;
    void *opts, *ctx;
    struct dsf_cfg_section secs[2];
    struct dsf_batch batch;
};

static const struct dsf_input_env test_env = {"/proc", "/sys", "", 1000};

/* Returns 0 or -1 (with err) so that tests of bad options can check the message. env says
 * where the host's /proc, /sys and root are. */
static inline int input_try_start_env(struct input_run *r, const struct dsf_input *in,
                                      const char *json, const struct dsf_input_env *env, char *err,
                                      size_t errlen)
{
    memset(r, 0, sizeof(*r));
    r->in = in;
    r->opts = calloc(1, in->options_size);
    r->secs[0] = (struct dsf_cfg_section){"", in->options, r->opts, NULL};
    r->secs[1] = (struct dsf_cfg_section){NULL, NULL, NULL, NULL};
    if (dsf_cfg_defaults(r->secs, err, errlen) ||
        dsf_cfg_load_json(r->secs, json, strlen(json), "test", err, errlen))
        return -1;
    return in->init(&r->ctx, r->opts, env, err, errlen);
}

static inline int input_try_start(struct input_run *r, const struct dsf_input *in, const char *json,
                                  char *err, size_t errlen)
{
    return input_try_start_env(r, in, json, &test_env, err, errlen);
}

static inline void input_start(struct input_run *r, const struct dsf_input *in, const char *json)
{
    char err[DSF_CFG_ERRLEN] = "";
    int rc = input_try_start(r, in, json, err, sizeof(err));
    if (rc)
        fprintf(stderr, "init %s: %s\n", in->name, err);
    assert_int_equal(rc, 0);
}

static inline void input_collect(struct input_run *r)
{
    batch_reset(&r->batch);
    assert_int_equal(r->in->collect(r->ctx, &r->batch, (int64_t)time(NULL) * 1000000000), 0);
}

static inline void input_stop(struct input_run *r)
{
    if (r->ctx)
        r->in->fini(r->ctx);
    dsf_cfg_free(r->secs);
    free(r->opts);
    batch_free(&r->batch);
}

static inline const char *point_tag(const struct dsf_batch *b, const struct dsf_point *p,
                                    const char *key)
{
    for (uint32_t i = 0; i < p->ntags; i++)
        if (strcmp(batch_str(b, b->tags[p->tag0 + i].key), key) == 0)
            return batch_str(b, b->tags[p->tag0 + i].val);
    return NULL;
}

/* The numeric value of a field; 0 when the point does not have it. */
static inline int point_field(const struct dsf_batch *b, const struct dsf_point *p, const char *key,
                              double *v)
{
    for (uint32_t i = 0; i < p->nfields; i++) {
        const struct dsf_field *f = &b->fields[p->field0 + i];
        if (strcmp(batch_str(b, f->key), key) != 0)
            continue;
        switch (f->type) {
        case DSF_V_FLOAT:
            *v = f->v.f;
            return 1;
        case DSF_V_INT:
            *v = (double)f->v.i;
            return 1;
        case DSF_V_UINT:
            *v = (double)f->v.u;
            return 1;
        case DSF_V_BOOL:
            *v = f->v.b;
            return 1;
        case DSF_V_STR:
            return 0;
        }
    }
    return 0;
}

static inline double point_field_or_fail(const struct dsf_batch *b, const struct dsf_point *p,
                                         const char *key)
{
    double v = 0;
    if (!point_field(b, p, key, &v))
        fail_msg("field %s missing", key);
    return v;
}

/* The first point of the measurement whose tag key has value val (any point when key is
 * NULL), or NULL. */
static inline const struct dsf_point *find_point(const struct dsf_batch *b, const char *name,
                                                 const char *key, const char *val)
{
    for (size_t i = 0; i < b->npoints; i++) {
        const struct dsf_point *p = &b->points[i];
        if (strcmp(batch_str(b, p->name), name) != 0)
            continue;
        const char *t = key ? point_tag(b, p, key) : NULL;
        if (!key || (t && strcmp(t, val) == 0))
            return p;
    }
    return NULL;
}

/* Renders the input's /metrics text and has promtool lint it. */
static inline void check_prom(struct input_run *r, const char *must_contain)
{
    struct dsf_buf text = {0};
    r->in->prom(r->ctx, &text);
    const char *s = buf_cstr(&text);
    if (must_contain && !strstr(s, must_contain))
        fail_msg("no %s in:\n%s", must_contain, s);
    if (access("/usr/bin/promtool", X_OK) == 0) {
        char path[] = "/tmp/dsf-prom-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text.data, text.len), (ssize_t)text.len);
        close(fd);
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "/usr/bin/promtool check metrics < %s", path);
        int rc = system(cmd);
        if (rc != 0)
            fprintf(stderr, "promtool rejected:\n%s\n", s);
        unlink(path);
        assert_int_equal(rc, 0);
    }
    buf_free(&text);
}

static inline void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts))
        ;
}

#endif
