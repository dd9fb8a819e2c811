/*
 * Evaluation throughput of the alarm engine, in process, through the daemon's own path:
 * each agent message goes through the shared intake (common/ingest.h: line protocol
 * parsing and validation) into engine_line(). 1,000 rules (100 measurements x 10 fields,
 * reducers last, avg, max and rate over 10 s windows, warn and crit with hysteresis) over 100
 * VMs = 100,000 (rule, vm) series; one sample per series per round, one line per sample.
 * Prints points/s per core end to end, the intake alone, and the engine's share.
 *
 *   dsf-alarm-bench [ROUNDS]   (default 30)
 */
#include "alarm/eval.h"
#include "common/ingest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MEAS 100
#define FIELDS 10
#define VMS 100

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

struct ctx {
    struct engine *e;
    const struct dsf_identity *id;
    uint64_t lines, transitions;
};

static void to_engine(void *arg, const char *text, size_t len, const struct lp_line *l, int missing)
{
    struct ctx *c = arg;
    c->lines++;
    if (c->e)
        engine_line(c->e, c->id, l, 0);
}

static void rejected(void *arg, const char *text, size_t len, const char *reason)
{
    fprintf(stderr, "rejected: %s\n", reason);
    exit(1);
}

static void counted(void *arg, const struct rule *r, struct series *s, enum alarm_state from,
                    int from_sev, int64_t ts)
{
    ((struct ctx *)arg)->transitions++;
}

static void refused(void *arg, const char *msg)
{
    fprintf(stderr, "%s\n", msg);
    exit(1);
}

static struct engine *make_engine(struct ctx *c)
{
    static const char *const reducers[] = {"last", "avg", "max", "rate"};
    static const struct engine_ops ops = {counted};
    struct engine *e = engine_new(&ops, c, 0);
    struct rule **rules = NULL;
    size_t n = 0;
    for (int m = 0; m < MEAS; m++)
        for (int f = 0; f < FIELDS; f++) {
            const char *red = reducers[(m * FIELDS + f) % 4];
            int rate = strcmp(red, "rate") == 0;
            char text[512];
            snprintf(text, sizeof(text),
                     "{\"name\":\"r%d_%d\",\"select\":{\"measurement\":\"m%d\",\"field\":\"f%d\","
                     "\"tags\":[{\"tag\":\"cpu\",\"op\":\"=\",\"value\":\"cpu-total\"}]},"
                     "\"reduce\":\"%s\",\"window\":\"10s\",\"warn\":{\"threshold\":%d,"
                     "\"reset\":%d},\"crit\":{\"threshold\":%d,\"reset\":%d}}",
                     m, f, m, f, red, rate ? 60 : 70, rate ? 50 : 60, rate ? 90 : 90,
                     rate ? 80 : 80);
            rule_parse_text(text, strlen(text), "bench", &rules, &n, refused, NULL);
        }
    engine_set_rules(e, rules, n, 0);
    return e;
}

/* One VM's message of a round: a line per rule, values wandering across the thresholds. */
static size_t build_message(char *out, size_t cap, int vm, int round)
{
    size_t n = 0;
    int64_t ts = 1700000000000000000LL + (int64_t)round * 1000000000LL;
    for (int m = 0; m < MEAS; m++)
        for (int f = 0; f < FIELDS; f++) {
            unsigned h = (unsigned)(vm * 7919 + m * 104729 + f * 1299709 + round * 15485863);
            double v = (m * FIELDS + f) % 4 == 3 ? round * (h % 100) : (h >> 7) % 100;
            n += (size_t)snprintf(out + n, cap - n, "m%d,cpu=cpu-total,host=vm%d f%d=%.1f %lld\n",
                                  m, vm, f, v, (long long)ts);
        }
    return n;
}

static double run(struct engine *e, char **msgs, size_t *lens, int rounds, uint64_t *lines)
{
    static struct ingest in;
    struct dsf_identity id = {"ns1", "mci1", ""};
    struct ctx c = {e, &id, 0, 0};
    static const struct ingest_ops ops = {to_engine, rejected};
    double t0 = cpu_now();
    for (int r = 0; r < rounds; r++)
        for (int vm = 0; vm < VMS; vm++) {
            snprintf(id.vm, sizeof(id.vm), "vm%d", vm);
            ingest_message(&in, "lp", msgs[r * VMS + vm], lens[r * VMS + vm], &id, &ops, &c);
        }
    *lines = c.lines;
    return cpu_now() - t0;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 30;
    if (rounds < 2)
        rounds = 2;
    size_t cap = MEAS * FIELDS * 64;
    char **msgs = calloc((size_t)rounds * VMS, sizeof(char *));
    size_t *lens = calloc((size_t)rounds * VMS, sizeof(size_t));
    for (int r = 0; r < rounds; r++)
        for (int vm = 0; vm < VMS; vm++) {
            msgs[r * VMS + vm] = malloc(cap);
            lens[r * VMS + vm] = build_message(msgs[r * VMS + vm], cap, vm, r);
        }
    struct ctx c = {0};
    struct engine *e = make_engine(&c);
    uint64_t lines, warm_lines;
    /* The first round creates the series (allocation); the steady state is what counts. */
    run(e, msgs, lens, 1, &warm_lines);
    double total = run(e, msgs + VMS, lens + VMS, rounds - 1, &lines);
    double intake = run(NULL, msgs + VMS, lens + VMS, rounds - 1, &lines);
    const struct engine_stats *st = engine_stats(e);
    printf("alarm_throughput: %zu rules, %zu series, %llu points in %d rounds, %llu transitions\n",
           engine_rule_count(e), engine_series_count(e), (unsigned long long)lines, rounds - 1,
           (unsigned long long)st->transitions);
    printf("  end to end (intake + evaluation): %.0f points/s per core (%.3f s CPU)\n",
           lines / total, total);
    printf("  intake alone (parse + validate):  %.0f points/s per core (%.3f s CPU)\n",
           lines / intake, intake);
    printf("  evaluation alone (difference):    %.0f points/s per core\n",
           total > intake ? lines / (total - intake) : 0.0);
    engine_free(e);
    for (int i = 0; i < rounds * VMS; i++)
        free(msgs[i]);
    free(msgs);
    free(lens);
    return 0;
}
