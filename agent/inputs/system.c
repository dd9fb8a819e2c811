/*
 * system: load averages, CPU count, logged-in users and uptime as Telegraf's system
 * measurement; node_exporter's node_load* and node_boot_time_seconds.
 */
#define DSF_MODULE "system"
#include "common/log.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <utmpx.h>

#include "agent/input.h"
#include "agent/procfile.h"
#include "common/metrics.h"

struct system_options {
    int enabled;
};

static const struct dsf_cfg_key system_option_keys[] = {
    {"enabled", DSF_CFG_BOOL, "true", offsetof(struct system_options, enabled),
     "collect load, CPU count, users and uptime", 0, 0},
    DSF_CFG_END,
};

struct system_reading {
    double load[3];
    long long n_cpus, n_users, uptime_s;
    unsigned long long boot_time_s;
};

struct system_ctx {
    struct procfile loadavg, uptime, stat;
    struct system_reading last;
    int have_reading;
    int failing;
};

static int read_loadavg(struct system_ctx *c, struct system_reading *r)
{
    if (procfile_read(&c->loadavg))
        return -1;
    char *line = procfile_next_line(&c->loadavg);
    if (!line || procfile_split(&c->loadavg, line, NULL) < 3) {
        errno = EINVAL;
        return -1;
    }
    for (int i = 0; i < 3; i++)
        r->load[i] = strtod(c->loadavg.words[i], NULL);
    return 0;
}

static int read_uptime(struct system_ctx *c, struct system_reading *r)
{
    if (procfile_read(&c->uptime))
        return -1;
    r->uptime_s = (long long)strtod(c->uptime.data.data, NULL);
    return 0;
}

/* Online CPUs are the "cpuN" lines; the boot time is "btime". */
static int read_stat(struct system_ctx *c, struct system_reading *r)
{
    if (procfile_read(&c->stat))
        return -1;
    if (procfile_find_u64(&c->stat, "btime", &r->boot_time_s)) {
        errno = EINVAL;
        return -1;
    }
    r->n_cpus = 0;
    char *line;
    while ((line = procfile_next_line(&c->stat)) && strncmp(line, "cpu", 3) == 0)
        if (line[3] >= '0' && line[3] <= '9')
            r->n_cpus++;
    return 0;
}

/* Returns the file that could not be read, or NULL. */
static const struct procfile *read_system(struct system_ctx *c, struct system_reading *r)
{
    if (read_loadavg(c, r))
        return &c->loadavg;
    if (read_uptime(c, r))
        return &c->uptime;
    if (read_stat(c, r))
        return &c->stat;
    return NULL;
}

static long long count_users(void)
{
    long long n = 0;
    setutxent();
    const struct utmpx *u;
    while ((u = getutxent()))
        if (u->ut_type == USER_PROCESS)
            n++;
    endutxent();
    return n;
}

static int system_collect(void *ctx, struct dsf_batch *out, int64_t now_ns)
{
    struct system_ctx *c = ctx;
    struct system_reading r = {0};
    const struct procfile *failed = read_system(c, &r);
    if (failed) {
        c->have_reading = 0;
        return procfile_read_failed(DSF_MODULE, failed->path, &c->failing);
    }
    c->failing = 0;
    r.n_users = count_users();
    c->last = r;
    c->have_reading = 1;

    batch_begin(out, "system", now_ns);
    batch_field_f(out, "load1", r.load[0]);
    batch_field_f(out, "load5", r.load[1]);
    batch_field_f(out, "load15", r.load[2]);
    batch_field_i(out, "n_cpus", r.n_cpus);
    batch_field_i(out, "n_users", r.n_users);
    batch_field_i(out, "uptime", r.uptime_s);
    batch_end(out);
    return 0;
}

static void system_prom(void *ctx, struct dsf_buf *out)
{
    const struct system_ctx *c = ctx;
    if (!c->have_reading)
        return;
    static const char *const load_names[] = {"node_load1", "node_load5", "node_load15"};
    static const char *const load_help[] = {"1m load average.", "5m load average.",
                                            "15m load average."};
    for (int i = 0; i < 3; i++) {
        prom_family(out, load_names[i], "gauge", load_help[i]);
        prom_labeled_sample(out, load_names[i], c->last.load[i], NULL);
    }
    prom_family(out, "node_boot_time_seconds", "gauge", "Node boot time, in unixtime.");
    prom_labeled_sample(out, "node_boot_time_seconds", (double)c->last.boot_time_s, NULL);
}

static void system_fini(void *ctx)
{
    struct system_ctx *c = ctx;
    if (!c)
        return;
    procfile_close(&c->loadavg);
    procfile_close(&c->uptime);
    procfile_close(&c->stat);
    free(c);
}

static int system_init(void **ctx, const void *options, const struct dsf_input_env *env, char *err,
                       size_t errlen)
{
    struct system_ctx *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    procfile_init(&c->loadavg, "%s/loadavg", env->proc);
    procfile_init(&c->uptime, "%s/uptime", env->proc);
    procfile_init(&c->stat, "%s/stat", env->proc);
    struct system_reading probe;
    const struct procfile *failed = read_system(c, &probe);
    if (failed) {
        procfile_cannot_read(failed->path, err, errlen);
        system_fini(c);
        return -1;
    }
    /* the users logged in to the host are in the host's utmp, not the container's */
    if (env->rootfs && *env->rootfs) {
        char utmp[PATH_MAX];
        snprintf(utmp, sizeof(utmp), "%s%s", env->rootfs, _PATH_UTMPX);
        utmpxname(utmp);
    }
    *ctx = c;
    return 0;
}

const struct dsf_input dsf_input_system = {
    .name = "system",
    .options = system_option_keys,
    .options_size = sizeof(struct system_options),
    .init = system_init,
    .collect = system_collect,
    .prom = system_prom,
    .fini = system_fini,
};
