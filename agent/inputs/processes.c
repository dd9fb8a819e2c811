/*
 * processes: processes by state from /proc/[pid]/stat as Telegraf's processes measurement;
 * node_exporter's node_procs_running and node_procs_blocked from /proc/stat.
 */
#define DSF_MODULE "processes"
#include "common/log.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/input.h"
#include "agent/procfile.h"
#include "common/metrics.h"

struct processes_options {
    int enabled;
};

static const struct dsf_cfg_key processes_option_keys[] = {
    {"enabled", DSF_CFG_BOOL, "true", offsetof(struct processes_options, enabled),
     "count processes by state from /proc/[pid]/stat", 0, 0},
    DSF_CFG_END,
};

enum proc_state {
    ST_RUNNING,
    ST_SLEEPING,
    ST_BLOCKED,
    ST_ZOMBIES,
    ST_STOPPED,
    ST_DEAD,
    ST_IDLE,
    ST_PAGING,
    ST_UNKNOWN,
    ST_NSTATES
};

static const char *const state_fields[ST_NSTATES] = {
    "running", "sleeping", "blocked", "zombies", "stopped", "dead", "idle", "paging", "unknown",
};

/* After "pid (comm) " in /proc/[pid]/stat: the state is field 0, num_threads field 17. */
#define STAT_NUM_THREADS 17

struct processes_ctx {
    char proc[PATH_MAX];
    struct dirscan dir;
    struct procfile stat; /* /proc/stat, for node_procs_* */
    unsigned long long procs_running, procs_blocked;
    int have_stat;
    int failing;
    char pid_stat[4096];
};

static enum proc_state classify(char state)
{
    switch (state) {
    case 'R':
        return ST_RUNNING;
    case 'S':
        return ST_SLEEPING;
    case 'D':
        return ST_BLOCKED;
    case 'Z':
        return ST_ZOMBIES;
    case 'T':
    case 't':
        return ST_STOPPED;
    case 'X':
    case 'x':
        return ST_DEAD;
    case 'I':
        return ST_IDLE;
    case 'W':
        return ST_PAGING;
    default:
        return ST_UNKNOWN;
    }
}

/* Reads one process's stat through the open /proc directory; -1 when it has exited. */
static int read_pid_stat(struct processes_ctx *c, const char *pid)
{
    char rel[32];
    snprintf(rel, sizeof(rel), "%s/stat", pid);
    int fd = openat(c->dir.fd, rel, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, c->pid_stat, sizeof(c->pid_stat) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    c->pid_stat[n] = '\0';
    return 0;
}

/* The command name may hold spaces and parentheses: the fields start after the last ')'. */
static int parse_pid_stat(const char *text, char *state, long long *threads)
{
    const char *p = strrchr(text, ')');
    if (!p || p[1] != ' ' || !p[2])
        return -1;
    p += 2;
    *state = *p;
    for (int field = 0; field < STAT_NUM_THREADS; field++) {
        p = strchr(p, ' ');
        if (!p)
            return -1;
        p++;
    }
    *threads = strtoll(p, NULL, 10);
    return 0;
}

static void count_states(struct processes_ctx *c, long long counts[ST_NSTATES], long long *total,
                         long long *threads)
{
    const char *name;
    unsigned char type;
    while ((name = dirscan_next(&c->dir, &type))) {
        if (!isdigit((unsigned char)name[0]))
            continue;
        char state;
        long long n_threads;
        if (read_pid_stat(c, name) || parse_pid_stat(c->pid_stat, &state, &n_threads))
            continue; /* exited since the directory was listed */
        enum proc_state s = classify(state);
        if (s == ST_UNKNOWN)
            log_debug("process %s is in state '%c', counted as unknown", name, state);
        counts[s]++;
        (*total)++;
        *threads += n_threads;
    }
}

static void read_proc_stat(struct processes_ctx *c)
{
    c->have_stat = procfile_read(&c->stat) == 0 &&
                   procfile_find_u64(&c->stat, "procs_running", &c->procs_running) == 0 &&
                   procfile_find_u64(&c->stat, "procs_blocked", &c->procs_blocked) == 0;
}

static int processes_collect(void *ctx, struct dsf_batch *out, int64_t now_ns)
{
    struct processes_ctx *c = ctx;
    read_proc_stat(c);
    if (dirscan_open(&c->dir, c->proc)) {
        if (!c->failing)
            log_warn("cannot list %s: %s; check that the proc root is mounted and readable",
                     c->proc, strerror(errno));
        c->failing = 1;
        return -1;
    }
    c->failing = 0;
    long long counts[ST_NSTATES] = {0}, total = 0, threads = 0;
    count_states(c, counts, &total, &threads);
    dirscan_close(&c->dir);

    batch_begin(out, "processes", now_ns);
    for (int s = 0; s < ST_NSTATES; s++)
        batch_field_i(out, state_fields[s], counts[s]);
    batch_field_i(out, "total", total);
    batch_field_i(out, "total_threads", threads);
    batch_end(out);
    return 0;
}

static void processes_prom(void *ctx, struct dsf_buf *out)
{
    const struct processes_ctx *c = ctx;
    if (!c->have_stat)
        return;
    prom_family(out, "node_procs_running", "gauge", "Number of processes in runnable state.");
    prom_labeled_sample(out, "node_procs_running", (double)c->procs_running, NULL);
    prom_family(out, "node_procs_blocked", "gauge",
                "Number of processes blocked waiting for I/O to complete.");
    prom_labeled_sample(out, "node_procs_blocked", (double)c->procs_blocked, NULL);
}

static void processes_fini(void *ctx)
{
    struct processes_ctx *c = ctx;
    if (!c)
        return;
    procfile_close(&c->stat);
    free(c);
}

static int processes_init(void **ctx, const void *options, const struct dsf_input_env *env,
                          char *err, size_t errlen)
{
    struct processes_ctx *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->dir.fd = -1;
    snprintf(c->proc, sizeof(c->proc), "%s", env->proc);
    procfile_init(&c->stat, "%s/stat", env->proc);
    if (dirscan_open(&c->dir, c->proc)) {
        snprintf(err, errlen, "cannot list %.256s: %s (is host.proc right?)", c->proc,
                 strerror(errno));
        processes_fini(c);
        return -1;
    }
    dirscan_close(&c->dir);
    *ctx = c;
    return 0;
}

const struct dsf_input dsf_input_processes = {
    .name = "processes",
    .options = processes_option_keys,
    .options_size = sizeof(struct processes_options),
    .init = processes_init,
    .collect = processes_collect,
    .prom = processes_prom,
    .fini = processes_fini,
};
