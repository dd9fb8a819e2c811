/*
 * cpu: Telegraf's usage_* percentages from the deltas of /proc/stat between two cycles, and
 * node_exporter's node_cpu_seconds_total from the raw jiffies.
 */
#define DSF_MODULE "cpu"
#include "common/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/input.h"
#include "agent/procfile.h"
#include "common/metrics.h"

struct cpu_options {
    int enabled;
    int percpu;
    int totalcpu;
};

static const struct dsf_cfg_key cpu_option_keys[] = {
    {"enabled", DSF_CFG_BOOL, "true", offsetof(struct cpu_options, enabled),
     "collect CPU usage from /proc/stat", 0, 0},
    {"percpu", DSF_CFG_BOOL, "true", offsetof(struct cpu_options, percpu),
     "emit one point per CPU (tag cpu=cpuN)", 0, 0},
    {"totalcpu", DSF_CFG_BOOL, "true", offsetof(struct cpu_options, totalcpu),
     "emit the point for all CPUs together (tag cpu=cpu-total)", 0, 0},
    DSF_CFG_END,
};

/* The columns of a cpu line in /proc/stat, in order. */
enum cpu_mode {
    CPU_USER,
    CPU_NICE,
    CPU_SYSTEM,
    CPU_IDLE,
    CPU_IOWAIT,
    CPU_IRQ,
    CPU_SOFTIRQ,
    CPU_STEAL,
    CPU_GUEST,
    CPU_GUEST_NICE,
    CPU_NMODES
};

static const char *const mode_names[CPU_NMODES] = {
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice",
};
static const char *const usage_fields[CPU_NMODES] = {
    "usage_user", "usage_nice",    "usage_system", "usage_idle",  "usage_iowait",
    "usage_irq",  "usage_softirq", "usage_steal",  "usage_guest", "usage_guest_nice",
};

/* A CPU that goes offline drops out of /proc/stat; the cycle it was last seen in tells
 * whether its previous reading is the one just before this one. */
struct cpu_times {
    char name[16]; /* "cpu" for the total, "cpuN" */
    unsigned long long now[CPU_NMODES], before[CPU_NMODES];
    unsigned long long seen_cycle;
};

struct cpu_ctx {
    const struct cpu_options *opts;
    struct procfile stat;
    struct cpu_times *cpus; /* [0] is the total, [n + 1] is cpun */
    size_t ncpus;
    unsigned long long cycle;
    double ticks_per_second;
    int failing;
};

/* Larger CPU numbers than this are taken as a parse error rather than grown into. */
#define CPU_MAX_INDEX 65536

static struct cpu_times *cpu_slot(struct cpu_ctx *c, const char *name)
{
    size_t index = 0;
    if (name[3]) {
        char *end;
        unsigned long n = strtoul(name + 3, &end, 10);
        if (*end || n >= CPU_MAX_INDEX)
            return NULL;
        index = n + 1;
    }
    if (index >= c->ncpus) {
        size_t n = index + 1 > c->ncpus * 2 ? index + 1 : c->ncpus * 2;
        struct cpu_times *grown = realloc(c->cpus, n * sizeof(*grown));
        if (!grown)
            return NULL;
        memset(grown + c->ncpus, 0, (n - c->ncpus) * sizeof(*grown));
        c->cpus = grown;
        c->ncpus = n;
    }
    struct cpu_times *t = &c->cpus[index];
    snprintf(t->name, sizeof(t->name), "%s", name);
    return t;
}

static void emit_usage(struct dsf_batch *out, int64_t now_ns, const char *tag,
                       const struct cpu_times *t)
{
    double delta[CPU_NMODES], total = 0;
    for (int m = 0; m < CPU_NMODES; m++)
        delta[m] = (double)t->now[m] - (double)t->before[m];
    /* guest time is already counted in user (and guest_nice in nice) */
    for (int m = CPU_USER; m <= CPU_STEAL; m++)
        total += delta[m];
    if (total <= 0)
        return; /* no tick elapsed, or the counters were reset */
    delta[CPU_USER] -= delta[CPU_GUEST];
    delta[CPU_NICE] -= delta[CPU_GUEST_NICE];

    batch_begin(out, "cpu", now_ns);
    batch_tag(out, "cpu", tag);
    for (int m = 0; m < CPU_NMODES; m++)
        batch_field_f(out, usage_fields[m], 100.0 * delta[m] / total);
    batch_end(out);
}

static void parse_cpu_line(struct cpu_ctx *c, struct dsf_batch *out, int64_t now_ns)
{
    struct cpu_times *t = cpu_slot(c, c->stat.words[0]);
    if (!t) {
        log_debug("skipping unexpected line '%s' in %s", c->stat.words[0], c->stat.path);
        return;
    }
    memcpy(t->before, t->now, sizeof(t->now));
    for (size_t m = 0; m < CPU_NMODES; m++)
        t->now[m] = m + 1 < c->stat.nwords ? strtoull(c->stat.words[m + 1], NULL, 10) : 0;
    int had_previous = t->seen_cycle && t->seen_cycle + 1 == c->cycle;
    t->seen_cycle = c->cycle;

    int is_total = t == &c->cpus[0];
    if (!had_previous || !(is_total ? c->opts->totalcpu : c->opts->percpu))
        return;
    emit_usage(out, now_ns, is_total ? "cpu-total" : t->name, t);
}

static int cpu_collect(void *ctx, struct dsf_batch *out, int64_t now_ns)
{
    struct cpu_ctx *c = ctx;
    c->cycle++;
    if (procfile_read(&c->stat))
        return procfile_read_failed(DSF_MODULE, c->stat.path, &c->failing);
    c->failing = 0;
    char *line;
    while ((line = procfile_next_line(&c->stat)) && strncmp(line, "cpu", 3) == 0) {
        if (procfile_split(&c->stat, line, NULL) >= 2)
            parse_cpu_line(c, out, now_ns);
    }
    return 0;
}

static void prom_cpu_family(const struct cpu_ctx *c, struct dsf_buf *out, const char *family,
                            const char *help, enum cpu_mode first, enum cpu_mode last,
                            const char *const *labels)
{
    prom_family(out, family, "counter", help);
    for (size_t i = 1; i < c->ncpus; i++) {
        const struct cpu_times *t = &c->cpus[i];
        if (t->seen_cycle != c->cycle)
            continue;
        for (enum cpu_mode m = first; m <= last; m++)
            prom_labeled_sample(out, family, (double)t->now[m] / c->ticks_per_second, "cpu",
                                t->name + 3, "mode", labels[m - first], NULL);
    }
}

static void cpu_prom(void *ctx, struct dsf_buf *out)
{
    const struct cpu_ctx *c = ctx;
    if (!c->cycle || c->failing)
        return;
    /* node_exporter reports user and nice with guest time included, as the kernel does */
    prom_cpu_family(c, out, "node_cpu_seconds_total", "Seconds the CPUs spent in each mode.",
                    CPU_USER, CPU_STEAL, mode_names);
    static const char *const guest_labels[] = {"user", "nice"};
    prom_cpu_family(c, out, "node_cpu_guest_seconds_total",
                    "Seconds the CPUs spent in guests (VMs) for each mode.", CPU_GUEST,
                    CPU_GUEST_NICE, guest_labels);
}

static void cpu_fini(void *ctx)
{
    struct cpu_ctx *c = ctx;
    if (!c)
        return;
    procfile_close(&c->stat);
    free(c->cpus);
    free(c);
}

static int cpu_init(void **ctx, const void *options, const struct dsf_input_env *env, char *err,
                    size_t errlen)
{
    struct cpu_ctx *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->opts = options;
    long hz = sysconf(_SC_CLK_TCK);
    c->ticks_per_second = hz > 0 ? (double)hz : 100.0;
    procfile_init(&c->stat, "%s/stat", env->proc);
    if (procfile_first_read(&c->stat, err, errlen)) {
        cpu_fini(c);
        return -1;
    }
    *ctx = c;
    return 0;
}

const struct dsf_input dsf_input_cpu = {
    .name = "cpu",
    .options = cpu_option_keys,
    .options_size = sizeof(struct cpu_options),
    .init = cpu_init,
    .collect = cpu_collect,
    .prom = cpu_prom,
    .fini = cpu_fini,
};
