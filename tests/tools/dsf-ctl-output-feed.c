/*
 * Drives the controller's output (control/output.h) for control_output: reads audit records,
 * one JSON object a line, from stdin, hands each to ctl_output_record(), then lets the store
 * and the notifier finish before it exits.
 *
 *   dsf-ctl-output-feed STATE_DIR [--set KEY=VALUE]... [--bus] [--linger MS] [--metrics FILE]
 *
 * KEY is one of the controller's output keys (output.*, notify.config) or mqtt.*; with --bus
 * the records are also published on mqtt.url, once connected (at most 10 s). Exits 0 once the
 * store is idle and the linger time (default 1000 ms) has passed; --metrics writes
 * ctl_output_render_metrics() to FILE at the end.
 */
#include "common/bus.h"
#include "common/bus_config.h"
#include "common/buf.h"
#include "common/loop.h"
#include "control/output.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct feed {
    struct event_base *base;
    struct ctl_output *out;
    struct dsf_bus *bus;
    json_t **recs;
    size_t n;
    int fed;
    long linger_ms;
    int64_t drained_at;
    struct event *timer;
};

static void read_records(struct feed *f)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, stdin)) > 0) {
        json_error_t e;
        json_t *r = json_loadb(line, (size_t)len, 0, &e);
        if (!r) {
            fprintf(stderr, "dsf-ctl-output-feed: not JSON (%s): %s", e.text, line);
            continue;
        }
        json_t **v = realloc(f->recs, (f->n + 1) * sizeof(*v));
        if (!v)
            exit(1);
        f->recs = v;
        f->recs[f->n++] = r;
    }
    free(line);
}

static void feed_all(struct feed *f)
{
    if (f->fed)
        return;
    f->fed = 1;
    for (size_t i = 0; i < f->n; i++)
        ctl_output_record(f->out, f->recs[i]);
    ctl_output_flush(f->out);
    printf("fed %zu\n", f->n);
    fflush(stdout);
}

static void on_connect(void *arg)
{
    feed_all(arg);
}

/* Every 50 ms: feeds once connected (or 10 s passed), exits once idle for the linger time. */
static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct feed *f = arg;
    static int ticks;
    if (!f->fed && ++ticks >= 200)
        feed_all(f);
    if (!f->fed)
        return;
    int64_t now = dsf_mono_ms();
    if (!ctl_output_idle(f->out))
        f->drained_at = 0;
    else if (!f->drained_at)
        f->drained_at = now;
    else if (now - f->drained_at >= f->linger_ms)
        event_base_loopbreak(f->base);
}

static int configure(struct dsf_cfg_section *secs, int argc, char **argv, struct feed *f,
                     int *use_bus, const char **metrics)
{
    char err[DSF_CFG_ERRLEN];
    if (dsf_cfg_defaults(secs, err, sizeof(err)))
        goto bad;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--set") && i + 1 < argc) {
            if (dsf_cfg_set(secs, argv[++i], "--set", err, sizeof(err)))
                goto bad;
        } else if (!strcmp(argv[i], "--bus")) {
            *use_bus = 1;
        } else if (!strcmp(argv[i], "--linger") && i + 1 < argc) {
            f->linger_ms = atol(argv[++i]);
        } else if (!strcmp(argv[i], "--metrics") && i + 1 < argc) {
            *metrics = argv[++i];
        } else {
            snprintf(err, sizeof(err), "unknown argument '%s'", argv[i]);
            goto bad;
        }
    }
    return 0;
bad:
    fprintf(stderr, "dsf-ctl-output-feed: %s\n", err);
    return -1;
}

static int start_bus(struct feed *f, const struct dsf_mqtt_config *mqtt)
{
    struct dsf_bus_options o = {.client_id = "dsf-ctl-output-feed"};
    dsf_bus_connection(&o, mqtt, NULL, 0);
    o.clean_start = 1;
    const struct dsf_bus_callbacks cb = {.on_connect = on_connect, .arg = f};
    char err[512];
    if (!(f->bus = dsf_bus_new(f->base, &o, &cb, err, sizeof(err)))) {
        fprintf(stderr, "dsf-ctl-output-feed: bus: %s\n", err);
        return -1;
    }
    ctl_output_set_bus(f->out, f->bus);
    return 0;
}

static void write_metrics(const struct feed *f, const char *path)
{
    struct dsf_buf b = {0};
    ctl_output_render_metrics(f->out, &b);
    FILE *fp = fopen(path, "w");
    if (fp) {
        fwrite(b.data, 1, b.len, fp);
        fclose(fp);
    }
    buf_free(&b);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr,
                "usage: %s STATE_DIR [--set KEY=VALUE]... [--bus] [--linger MS] "
                "[--metrics FILE]\n",
                argv[0]);
        return 2;
    }
    static struct ctl_output_config cfg;
    static struct dsf_mqtt_config mqtt;
    struct dsf_cfg_section secs[5];
    size_t n = ctl_output_sections(secs, &cfg);
    n += dsf_mqtt_sections(secs + n, &mqtt);
    secs[n] = (struct dsf_cfg_section){NULL, NULL, NULL, NULL};
    struct feed f = {.linger_ms = 1000};
    int use_bus = 0, rc = 1;
    const char *metrics = NULL;
    char err[1024];
    cfg.state_dir = argv[1];
    if (configure(secs, argc, argv, &f, &use_bus, &metrics))
        return 2;
    read_records(&f);
    if (!(f.base = dsf_loop_new()) || !(f.out = ctl_output_new(f.base, &cfg, err, sizeof(err)))) {
        fprintf(stderr, "dsf-ctl-output-feed: %s\n", f.base ? err : "no event loop");
        goto out;
    }
    if (use_bus ? start_bus(&f, &mqtt) : (feed_all(&f), 0))
        goto out;
    struct timeval tick = {0, 50000};
    f.timer = event_new(f.base, -1, EV_PERSIST, on_timer, &f);
    event_add(f.timer, &tick);
    event_base_dispatch(f.base);
    if (metrics)
        write_metrics(&f, metrics);
    rc = 0;
out:
    if (f.timer)
        event_free(f.timer);
    dsf_bus_free(f.bus);
    ctl_output_free(f.out);
    for (size_t i = 0; i < f.n; i++)
        json_decref(f.recs[i]);
    free(f.recs);
    if (f.base)
        event_base_free(f.base);
    dsf_cfg_free(secs);
    return rc;
}
