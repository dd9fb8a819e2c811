/*
 * dsf-runner-drive: drives a balancer runner (balancer/runner.h) the way the balancer does,
 * for the balancer_runner_* tests. Configured like the balancer (--set runner.kind=local,
 * --set runner.local.dir=..., -c FILE); reads one command a line on stdin and answers each
 * with one line on stdout, "COMMAND: RESULT", while the event loop runs (the local runner
 * reaps and kills its members on it). Exits at the end of stdin.
 *
 *   replicas       -> "replicas: N"
 *   scale N        -> "scale N: ok" or "scale N: error: ..."   (runner scale_out)
 *   stop ID|-      -> "stop ID: ok" or an error                 (- : any member)
 *   owns ID        -> "owns ID: 1" or "owns ID: 0"
 */
#define DSF_MODULE "runner-drive"
#include "balancer/runner.h"
#include "common/log.h"
#include "common/loop.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct drive {
    struct event_base *base;
    struct runner *r;
    char line[1024];
    size_t len;
};

static void answer(const char *cmd, const char *fmt, const char *s)
{
    printf("%s: ", cmd);
    printf(fmt, s);
    printf("\n");
    fflush(stdout);
}

static void result(const char *cmd, int rc, const char *err)
{
    answer(cmd, rc == 0 ? "ok" : "error: %s", err);
}

static void run(struct drive *d, char *cmd)
{
    char err[1024] = "";
    char *sp = strchr(cmd, ' ');
    const char *a = sp ? sp + 1 : "";
    const struct runner_ops *ops = d->r->ops;
    if (!strcmp(cmd, "replicas")) {
        printf("replicas: %d\n", ops->replicas(d->r));
        fflush(stdout);
    } else if (!strncmp(cmd, "scale ", 6)) {
        result(cmd, ops->scale_out(d->r, atoi(a), err, sizeof(err)), err);
    } else if (!strncmp(cmd, "stop ", 5)) {
        result(cmd, ops->stop(d->r, strcmp(a, "-") ? a : NULL, err, sizeof(err)), err);
    } else if (!strncmp(cmd, "owns ", 5)) {
        answer(cmd, "%s", ops->owns(d->r, a) ? "1" : "0");
    } else if (cmd[0]) {
        answer(cmd, "error: %s", "unknown command");
    }
}

static void on_stdin(evutil_socket_t fd, short what, void *arg)
{
    struct drive *d = arg;
    ssize_t n = read(fd, d->line + d->len, sizeof(d->line) - 1 - d->len);
    if (n <= 0) {
        if (n < 0 && errno == EINTR)
            return;
        event_base_loopexit(d->base, NULL);
        return;
    }
    d->len += (size_t)n;
    char *nl;
    while ((nl = memchr(d->line, '\n', d->len))) {
        *nl = 0;
        run(d, d->line);
        size_t used = (size_t)(nl + 1 - d->line);
        memmove(d->line, nl + 1, d->len - used);
        d->len -= used;
    }
    if (d->len == sizeof(d->line) - 1)
        d->len = 0; /* a line longer than the buffer: dropped */
}

static int configure(struct dsf_cfg_section *secs, struct runner_config *rc,
                     struct scale_config *sc, int argc, char **argv, char *err, size_t errlen)
{
    int n = runner_config_sections(secs, RUNNER_CONFIG_SECTIONS, rc, sc, err, errlen);
    if (n < 0 || dsf_cfg_defaults(secs, err, errlen) < 0)
        return -1;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--set")) {
            if (dsf_cfg_set(secs, argv[++i], "--set", err, errlen) < 0)
                return -1;
        } else if (i + 1 < argc && !strcmp(argv[i], "-c")) {
            if (dsf_cfg_load_file(secs, argv[++i], err, errlen) < 0)
                return -1;
        } else {
            snprintf(err, errlen, "usage: %s [-c FILE] [--set KEY=VALUE]... < commands", argv[0]);
            return -1;
        }
    }
    return runner_config_validate(rc, sc, err, errlen);
}

int main(int argc, char **argv)
{
    static struct runner_config rc;
    static struct scale_config sc;
    struct dsf_cfg_section secs[RUNNER_CONFIG_SECTIONS + 1] = {0};
    char err[DSF_CFG_ERRLEN * 2];
    struct drive d = {0};
    int status = 1;
    if (configure(secs, &rc, &sc, argc, argv, err, sizeof(err)) < 0) {
        fprintf(stderr, "dsf-runner-drive: %s\n", err);
        goto out;
    }
    d.base = dsf_loop_new();
    d.r = d.base ? runner_new(d.base, &rc, err, sizeof(err)) : NULL;
    if (!d.r) {
        fprintf(stderr, "dsf-runner-drive: %s\n", err[0] ? err : "runner.kind is none");
        goto out;
    }
    struct event *in = event_new(d.base, 0, EV_READ | EV_PERSIST, on_stdin, &d);
    event_add(in, NULL);
    event_base_dispatch(d.base);
    event_free(in);
    d.r->ops->free(d.r);
    status = 0;
out:
    if (d.base)
        event_base_free(d.base);
    dsf_cfg_free(secs);
    runner_config_free(&rc);
    return status;
}
