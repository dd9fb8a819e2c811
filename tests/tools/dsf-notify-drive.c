/*
 * Drives the alarm notifier (alarm/notify.h) directly for the alarm_notify_* tests: it reads
 * one command per line on stdin (a FIFO the test writes to over time) and pushes alerts with
 * the timing the test chooses, so grouping, repeat, restart and silences are exercised
 * against real receivers without the rule engine.
 *
 *   fire LABELS...         push firing alerts (LABELS: k=v,k=v; several in one go)
 *   resolve LABELS...      push the same alerts resolved now
 *   restart                free the notifier and create it again on the same state dir
 *   reload                 re-read the routing file
 *   metrics FILE           write notifier_render_metrics() to FILE
 *   quit | quit_flush      free (flushing pending groups with quit_flush) and exit
 *
 * Usage: dsf-notify-drive ROUTING_FILE STATE_DIR [API_LISTEN]   (prints "ready" when up)
 */
#include "alarm/notify.h"
#include "common/buf.h"
#include "common/http.h"
#include "common/loop.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_LABELS 32
#define MAX_KNOWN 8192

struct drive {
    struct event_base *base;
    struct notifier *n;
    struct dsf_http_server *http;
    const char *config, *state, *listen;
    struct event *in;
    char line[1 << 16];
    size_t len;
    struct {
        char *labels;
        int64_t starts;
    } known[MAX_KNOWN];
    size_t nknown;
    int flush_on_quit;
};

static int by_key(const void *a, const void *b)
{
    return strcmp(((const struct alarm_label *)a)->key, ((const struct alarm_label *)b)->key);
}

/* Splits "k=v,k=v" in place. */
static size_t parse_labels(char *s, struct alarm_label *kv)
{
    size_t n = 0;
    for (char *tok = strtok(s, ","); tok && n < MAX_LABELS; tok = strtok(NULL, ",")) {
        char *eq = strchr(tok, '=');
        if (!eq)
            continue;
        *eq = '\0';
        kv[n++] = (struct alarm_label){tok, eq + 1};
    }
    qsort(kv, n, sizeof(*kv), by_key);
    return n;
}

static int64_t *starts_of(struct drive *d, const char *labels)
{
    for (size_t i = 0; i < d->nknown; i++)
        if (strcmp(d->known[i].labels, labels) == 0)
            return &d->known[i].starts;
    if (d->nknown == MAX_KNOWN) {
        fprintf(stderr, "more than %d distinct alerts\n", MAX_KNOWN);
        return NULL;
    }
    d->known[d->nknown].labels = strdup(labels);
    return &d->known[d->nknown++].starts;
}

static void push(struct drive *d, char *labels, int resolve)
{
    int64_t now = dsf_now_ns();
    int64_t *starts = starts_of(d, labels);
    if (!starts)
        return;
    if (!resolve && !*starts)
        *starts = now;
    struct alarm_label kv[MAX_LABELS];
    size_t n = parse_labels(labels, kv);
    const char *vm = "?", *name = "?";
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(kv[i].key, "vm"))
            vm = kv[i].val;
        if (!strcmp(kv[i].key, "alertname"))
            name = kv[i].val;
    }
    char summary[256];
    snprintf(summary, sizeof(summary), "%s on %s", name, vm);
    struct alarm_label ann[] = {{"summary", summary}, {"value", "97.5"}};
    struct alarm_alert a = {.labels = {n, kv},
                            .annotations = {2, ann},
                            .starts_at_ns = *starts,
                            .ends_at_ns = resolve ? now : 0,
                            .generator_url = "http://damselfly.test/rules/x"};
    notifier_push(d->n, &a);
    if (resolve)
        *starts = 0;
}

static int start(struct drive *d)
{
    char err[512];
    if (!(d->n = notifier_new(d->base, d->config, d->state, err, sizeof(err)))) {
        fprintf(stderr, "notifier: %s\n", err);
        return -1;
    }
    if (d->listen) {
        /* The silences' semantics are tested here; the write token in security_api_auth. */
        struct dsf_http_options o = {.listen = d->listen, .open_writes = 1};
        if (!(d->http = dsf_http_new(d->base, &o, err, sizeof(err)))) {
            fprintf(stderr, "api: %s\n", err);
            return -1;
        }
        notifier_register_api(d->n, d->http);
    }
    return 0;
}

static void stop(struct drive *d, int flush)
{
    dsf_http_free(d->http);
    d->http = NULL;
    notifier_free(d->n, flush);
    d->n = NULL;
}

static void command(struct drive *d, char *line)
{
    char *save = NULL;
    char *cmd = strtok_r(line, " \t", &save);
    char *arg = strtok_r(NULL, " \t", &save);
    if (!cmd)
        return;
    if ((!strcmp(cmd, "fire") || !strcmp(cmd, "resolve")) && arg) {
        /* Several label sets on one line are pushed in one go, as the engine does. */
        for (; arg; arg = strtok_r(NULL, " \t", &save))
            push(d, arg, !strcmp(cmd, "resolve"));
    } else if (!strcmp(cmd, "restart")) {
        stop(d, 0);
        if (start(d))
            exit(1);
    } else if (!strcmp(cmd, "reload")) {
        char err[512];
        if (notifier_reload(d->n, err, sizeof(err)))
            fprintf(stderr, "reload: %s\n", err);
    } else if (!strcmp(cmd, "metrics") && arg) {
        struct dsf_buf b = {0};
        notifier_render_metrics(d->n, &b);
        FILE *f = fopen(arg, "w");
        if (f) {
            fwrite(b.data, 1, b.len, f);
            fclose(f);
        }
        buf_free(&b);
    } else if (!strcmp(cmd, "quit") || !strcmp(cmd, "quit_flush")) {
        d->flush_on_quit = !strcmp(cmd, "quit_flush");
        event_base_loopbreak(d->base);
    } else {
        fprintf(stderr, "unknown command: %s\n", cmd);
    }
    printf("done %s\n", cmd);
    fflush(stdout);
}

static void on_stdin(evutil_socket_t fd, short what, void *arg)
{
    struct drive *d = arg;
    ssize_t got = read(fd, d->line + d->len, sizeof(d->line) - 1 - d->len);
    if (got <= 0) {
        event_base_loopbreak(d->base);
        return;
    }
    d->len += (size_t)got;
    char *nl;
    while ((nl = memchr(d->line, '\n', d->len))) {
        *nl = '\0';
        size_t used = (size_t)(nl - d->line) + 1;
        command(d, d->line);
        memmove(d->line, d->line + used, d->len - used);
        d->len -= used;
    }
    if (d->len == sizeof(d->line) - 1)
        d->len = 0; /* an overlong line is dropped */
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s ROUTING_FILE STATE_DIR [API_LISTEN]\n", argv[0]);
        return 2;
    }
    struct drive *d = calloc(1, sizeof(*d)); /* large: the line buffer and the known alerts */
    if (!d)
        return 1;
    d->config = argv[1];
    d->state = argv[2];
    d->listen = argc > 3 ? argv[3] : NULL;
    d->base = dsf_loop_new();
    if (!d->base || start(d))
        return 1;
    d->in = event_new(d->base, 0, EV_READ | EV_PERSIST, on_stdin, d);
    event_add(d->in, NULL);
    printf("ready\n");
    fflush(stdout);
    event_base_dispatch(d->base);
    event_free(d->in);
    stop(d, d->flush_on_quit);
    for (size_t i = 0; i < d->nknown; i++)
        free(d->known[i].labels);
    event_base_free(d->base);
    free(d);
    return 0;
}
