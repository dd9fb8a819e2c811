/*
 * Per-process metrics with the names of Telegraf's procstat input, for the processes the
 * user selects (by name or command line pattern, pid file or cgroup) and, optionally, for
 * the top N CPU users of the last interval.
 *
 * CPU percentages need the previous reading of each process: the readings of one cycle are
 * kept sorted by pid and searched in the next. A process is the same one only when its
 * start time is too, so a recycled pid does not inherit someone else's CPU time.
 */
#define DSF_MODULE "procstat"
#include "common/log.h"

#include <linux/capability.h>
#include <regex.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/input.h"
#include "agent/inputs/cgroup.h"
#include "agent/procfile.h"
#include "common/metrics.h"
#include "common/regex.h"

struct procstat_options {
    int enabled;
    struct dsf_strlist patterns, pid_files, cgroups;
    int64_t top_n;
    int pid_tag;
};

static const struct dsf_cfg_key procstat_keys[] = {
    {"enabled", DSF_CFG_BOOL, "false", offsetof(struct procstat_options, enabled),
     "Report CPU, memory, threads, files and I/O of selected processes", 0, 0},
    {"patterns", DSF_CFG_STRLIST, NULL, offsetof(struct procstat_options, patterns),
     "Select processes whose name or command line contains, or matches as an extended "
     "regex, one of these",
     0, 0},
    {"pid_files", DSF_CFG_STRLIST, NULL, offsetof(struct procstat_options, pid_files),
     "Select the processes whose pid these files hold", 0, 0},
    {"cgroups", DSF_CFG_STRLIST, NULL, offsetof(struct procstat_options, cgroups),
     "Select the processes in these cgroups (paths inside the hierarchy)", 0, 0},
    {"top_n", DSF_CFG_INT, "0", offsetof(struct procstat_options, top_n),
     "Also report the N processes that used the most CPU over the last interval (0: off)", 0, 1000},
    {"pid_tag", DSF_CFG_BOOL, "false", offsetof(struct procstat_options, pid_tag),
     "Make pid a tag rather than a field (one series per process: beware of cardinality)", 0, 0},
    DSF_CFG_END,
};

/* One pattern: matched as a substring, and as a regex when it compiles as one. */
struct pattern {
    char *text;
    regex_t re;
    int is_regex;
};

struct sample {
    int pid;
    uint64_t start_ticks, cpu_ticks;
};

struct report {
    int pid;
    const char *sel_key, *sel_val; /* the selector that matched, owned by the context */
    char name[17];
    int has_cpu_pct, has_fds, has_io;
    double cpu_pct;
    uint64_t cpu_ticks, start_ticks, rss, vms, threads, fds, read_bytes, write_bytes;
};

struct procstat_ctx {
    char proc[256];
    struct pattern *patterns;
    size_t npatterns;
    struct dsf_strlist pid_files, cgroups;
    char top_label[24];
    size_t top_n;
    int pid_tag, have_layout;
    struct cg_layout layout;
    long hz, page_size;
    int64_t btime_ns;
    /* Readings of this cycle and of the last one, sorted by pid, swapped every cycle. */
    struct sample *cur, *prev;
    size_t ncur, nprev, cap_samples;
    int64_t cur_mono_ns, prev_mono_ns;
    struct report *reports;
    size_t nreports, cap_reports;
    struct sample *top; /* top_n slots: the best CPU users so far in this cycle */
    uint64_t *top_delta;
    size_t ntop;
    struct dsf_buf scratch;
};

/* ------------------------------------------------------------------ /proc readers */

struct stat_line {
    char name[17];
    uint64_t cpu_ticks, threads, start_ticks, vms, rss_pages;
};

/* The command name sits in parentheses and may hold anything, so fields are counted from
 * the last ')': field 3 (the state letter) follows it, numbers start at field 4. */
static int parse_stat(char *text, struct stat_line *st)
{
    char *open = strchr(text, '('), *close = strrchr(text, ')');
    if (!open || !close || close < open || close[1] != ' ' || !close[2])
        return -1;
    snprintf(st->name, sizeof(st->name), "%.*s", (int)(close - open - 1), open + 1);
    uint64_t f[25] = {0};
    char *p = close + 3;
    for (int i = 4; i <= 24; i++) {
        char *end;
        f[i] = strtoull(p, &end, 10);
        if (end == p)
            break;
        p = end;
    }
    st->cpu_ticks = f[14] + f[15];
    st->threads = f[20];
    st->start_ticks = f[22];
    st->vms = f[23];
    st->rss_pages = f[24];
    return 0;
}

static int read_stat(const struct procstat_ctx *c, int pid, struct stat_line *st)
{
    char path[300], text[1024];
    snprintf(path, sizeof(path), "%s/%d/stat", c->proc, pid);
    return read_small_file(path, text, sizeof(text)) ? -1 : parse_stat(text, st);
}

/* The command line with its NUL separators turned into blanks, in scratch. */
static const char *read_cmdline(struct procstat_ctx *c, int pid)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/%d/cmdline", c->proc, pid);
    if (read_file_buf(path, &c->scratch))
        return "";
    for (size_t i = 0; i + 1 < c->scratch.len; i++)
        if (!c->scratch.data[i])
            c->scratch.data[i] = ' ';
    return c->scratch.data;
}

static int count_fds(const struct procstat_ctx *c, int pid, uint64_t *out)
{
    char path[300];
    struct dirscan ds;
    snprintf(path, sizeof(path), "%s/%d/fd", c->proc, pid);
    if (dirscan_open(&ds, path))
        return -1; /* EACCES without CAP_DAC_READ_SEARCH/CAP_SYS_PTRACE for others' */
    *out = 0;
    while (dirscan_next(&ds, NULL))
        (*out)++;
    dirscan_close(&ds);
    return 0;
}

static int read_io(const struct procstat_ctx *c, int pid, struct report *r)
{
    char path[300], text[512];
    snprintf(path, sizeof(path), "%s/%d/io", c->proc, pid);
    if (read_small_file(path, text, sizeof(text)))
        return -1;
    return cg_kv_u64(text, "read_bytes:", &r->read_bytes) ||
                   cg_kv_u64(text, "write_bytes:", &r->write_bytes)
               ? -1
               : 0;
}

static int64_t read_btime_ns(const char *proc, struct dsf_buf *scratch)
{
    char path[300];
    uint64_t btime = 0;
    snprintf(path, sizeof(path), "%s/stat", proc);
    if (read_file_buf(path, scratch) == 0) {
        const char *p = strstr(scratch->data, "\nbtime ");
        if (p)
            btime = strtoull(p + 7, NULL, 10);
    }
    return (int64_t)btime * 1000000000;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------------ samples and reports */

/* Tables grow only when there are more processes than ever before: a steady host does not
 * allocate. */

static int add_sample(struct procstat_ctx *c, int pid, const struct stat_line *st)
{
    if (c->ncur == c->cap_samples) {
        /* Both arrays keep one capacity, so that they can be swapped. */
        size_t cap = c->cap_samples ? 2 * c->cap_samples : 256;
        struct sample *cur = realloc(c->cur, cap * sizeof(*cur));
        if (cur)
            c->cur = cur;
        struct sample *prev = cur ? realloc(c->prev, cap * sizeof(*prev)) : NULL;
        if (!prev) {
            log_error("out of memory growing the process table to %zu entries", cap);
            return -1;
        }
        c->prev = prev;
        c->cap_samples = cap;
    }
    c->cur[c->ncur++] = (struct sample){pid, st->start_ticks, st->cpu_ticks};
    return 0;
}

/* /proc lists pids in ascending order; pids added from pid files or cgroups are few. */
static void sort_samples(struct sample *s, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        struct sample x = s[i];
        size_t j = i;
        for (; j > 0 && s[j - 1].pid > x.pid; j--)
            s[j] = s[j - 1];
        s[j] = x;
    }
}

static const struct sample *find_prev(const struct procstat_ctx *c, int pid, uint64_t start)
{
    size_t lo = 0, hi = c->nprev;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c->prev[mid].pid < pid)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < c->nprev && c->prev[lo].pid == pid && c->prev[lo].start_ticks == start)
        return &c->prev[lo];
    return NULL;
}

static void add_report(struct procstat_ctx *c, int pid, const char *key, const char *val)
{
    if (c->nreports == c->cap_reports) {
        size_t cap = c->cap_reports ? 2 * c->cap_reports : 16;
        struct report *grown = realloc(c->reports, cap * sizeof(*grown));
        if (!grown) {
            log_error("out of memory growing the report table to %zu entries", cap);
            return;
        }
        c->reports = grown;
        c->cap_reports = cap;
    }
    struct report *r = &c->reports[c->nreports++];
    memset(r, 0, sizeof(*r));
    r->pid = pid;
    r->sel_key = key;
    r->sel_val = val;
}

/* ------------------------------------------------------------------ selection */

static int pattern_matches(const struct pattern *p, const char *name, const char *cmdline)
{
    if (strstr(name, p->text) || strstr(cmdline, p->text))
        return 1;
    return p->is_regex &&
           (regexec(&p->re, name, 0, NULL, 0) == 0 || regexec(&p->re, cmdline, 0, NULL, 0) == 0);
}

/* Keeps the top_n largest CPU deltas seen so far, largest first. Processes that used no
 * CPU, or appeared since the last cycle, do not qualify. */
static void consider_top(struct procstat_ctx *c, int pid, const struct stat_line *st)
{
    const struct sample *prev = find_prev(c, pid, st->start_ticks);
    if (!prev || st->cpu_ticks <= prev->cpu_ticks)
        return;
    uint64_t delta = st->cpu_ticks - prev->cpu_ticks;
    size_t i;
    if (c->ntop < c->top_n)
        i = c->ntop++;
    else if (delta > c->top_delta[c->top_n - 1])
        i = c->top_n - 1;
    else
        return;
    for (; i > 0 && c->top_delta[i - 1] < delta; i--) {
        c->top[i] = c->top[i - 1];
        c->top_delta[i] = c->top_delta[i - 1];
    }
    c->top[i] = (struct sample){pid, st->start_ticks, st->cpu_ticks};
    c->top_delta[i] = delta;
}

static void scan_all(struct procstat_ctx *c)
{
    struct dirscan ds;
    if (dirscan_open(&ds, c->proc)) {
        log_error("cannot list %s: %m", c->proc);
        return;
    }
    for (const char *name; (name = dirscan_next(&ds, NULL));) {
        char *end;
        long pid = strtol(name, &end, 10);
        struct stat_line st;
        if (*end || pid <= 0 || read_stat(c, (int)pid, &st))
            continue;
        add_sample(c, (int)pid, &st);
        if (c->top_n)
            consider_top(c, (int)pid, &st);
        if (!c->npatterns)
            continue;
        const char *cmdline = read_cmdline(c, (int)pid);
        for (size_t i = 0; i < c->npatterns; i++)
            if (pattern_matches(&c->patterns[i], st.name, cmdline))
                add_report(c, (int)pid, "pattern", c->patterns[i].text);
    }
    dirscan_close(&ds);
}

static void select_pid_files(struct procstat_ctx *c)
{
    for (size_t i = 0; i < c->pid_files.count; i++) {
        char text[32];
        long pid;
        if (read_small_file(c->pid_files.items[i], text, sizeof(text)) ||
            (pid = strtol(text, NULL, 10)) <= 0) {
            log_debug("no pid in %s", c->pid_files.items[i]);
            continue;
        }
        add_report(c, (int)pid, "pidfile", c->pid_files.items[i]);
    }
}

struct cgroup_sel {
    struct procstat_ctx *c;
    const char *group;
};

static void add_cgroup_pid(void *arg, int pid)
{
    struct cgroup_sel *sel = arg;
    add_report(sel->c, pid, "cgroup", sel->group);
}

static void select_cgroups(struct procstat_ctx *c)
{
    for (size_t i = 0; i < c->cgroups.count; i++) {
        struct cgroup_sel sel = {c, c->cgroups.items[i]};
        if (c->have_layout &&
            !cg_for_each_pid(&c->layout, CG_NHIER, sel.group, &c->scratch, add_cgroup_pid, &sel))
            continue;
        log_debug("cgroup %s not found", sel.group);
    }
}

/* ------------------------------------------------------------------ collection */

/* Fills a report from /proc; 0, or -1 when the process is gone. */
static int fill_report(struct procstat_ctx *c, struct report *r, int sampled)
{
    struct stat_line st;
    if (read_stat(c, r->pid, &st))
        return -1;
    if (!sampled)
        add_sample(c, r->pid, &st);
    memcpy(r->name, st.name, sizeof(r->name));
    r->cpu_ticks = st.cpu_ticks;
    r->start_ticks = st.start_ticks;
    r->threads = st.threads;
    r->vms = st.vms;
    r->rss = st.rss_pages * (uint64_t)c->page_size;
    const struct sample *prev = find_prev(c, r->pid, st.start_ticks);
    int64_t dt = c->cur_mono_ns - c->prev_mono_ns;
    r->has_cpu_pct = prev && dt > 0 && st.cpu_ticks >= prev->cpu_ticks;
    if (r->has_cpu_pct)
        r->cpu_pct =
            100.0 * (double)(st.cpu_ticks - prev->cpu_ticks) / (double)c->hz * 1e9 / (double)dt;
    r->has_fds = count_fds(c, r->pid, &r->fds) == 0;
    r->has_io = read_io(c, r->pid, r) == 0;
    return 0;
}

static void emit(const struct procstat_ctx *c, const struct report *r, struct dsf_batch *out,
                 int64_t now_ns)
{
    batch_begin(out, "procstat", now_ns);
    batch_tag(out, "process_name", r->name);
    batch_tag(out, r->sel_key, r->sel_val);
    char pid[16];
    snprintf(pid, sizeof(pid), "%d", r->pid);
    if (c->pid_tag)
        batch_tag(out, "pid", pid);
    else
        batch_field_i(out, "pid", r->pid);
    if (r->has_cpu_pct)
        batch_field_f(out, "cpu_usage", r->cpu_pct);
    batch_field_i(out, "memory_rss", (int64_t)r->rss);
    batch_field_i(out, "memory_vms", (int64_t)r->vms);
    batch_field_i(out, "num_threads", (int64_t)r->threads);
    if (r->has_fds)
        batch_field_i(out, "num_fds", (int64_t)r->fds);
    if (r->has_io) {
        batch_field_i(out, "read_bytes", (int64_t)r->read_bytes);
        batch_field_i(out, "write_bytes", (int64_t)r->write_bytes);
    }
    batch_field_i(out, "created_at",
                  c->btime_ns + (int64_t)(r->start_ticks * (1000000000ULL / (uint64_t)c->hz)));
    batch_end(out);
}

static int procstat_collect(void *vctx, struct dsf_batch *out, int64_t now_ns)
{
    struct procstat_ctx *c = vctx;
    c->ncur = c->nreports = c->ntop = 0;
    c->cur_mono_ns = mono_ns();
    int full = c->npatterns || c->top_n;
    if (full)
        scan_all(c);
    select_pid_files(c);
    select_cgroups(c);
    for (size_t i = 0; i < c->ntop; i++)
        add_report(c, c->top[i].pid, "top", c->top_label);
    size_t kept = 0;
    for (size_t i = 0; i < c->nreports; i++)
        if (fill_report(c, &c->reports[i], full) == 0)
            c->reports[kept++] = c->reports[i];
    c->nreports = kept;
    for (size_t i = 0; i < c->nreports; i++)
        emit(c, &c->reports[i], out, now_ns);
    sort_samples(c->cur, c->ncur);
    struct sample *t = c->prev;
    c->prev = c->cur;
    c->cur = t;
    c->nprev = c->ncur;
    c->prev_mono_ns = c->cur_mono_ns;
    return 0;
}

/* ------------------------------------------------------------------ Prometheus */

static void prom_labeled(struct dsf_buf *out, const char *name, const struct report *r, double v)
{
    char pid[16];
    snprintf(pid, sizeof(pid), "%d", r->pid);
    prom_labeled_sample(out, name, v, "process_name", r->name, "pid", pid, r->sel_key, r->sel_val,
                        NULL);
}

enum prom_what { P_CPU, P_RSS, P_VMS, P_THREADS, P_FDS, P_READ, P_WRITE, P_START };

static const struct {
    const char *name, *type, *help;
} prom_rows[] = {
    [P_CPU] = {"damselfly_procstat_cpu_seconds_total", "counter", "User and system CPU time."},
    [P_RSS] = {"damselfly_procstat_memory_rss_bytes", "gauge", "Resident memory."},
    [P_VMS] = {"damselfly_procstat_memory_vms_bytes", "gauge", "Virtual memory size."},
    [P_THREADS] = {"damselfly_procstat_threads", "gauge", "Threads of the process."},
    [P_FDS] = {"damselfly_procstat_open_fds", "gauge", "Open file descriptors."},
    [P_READ] = {"damselfly_procstat_read_bytes_total", "counter", "Bytes read from storage."},
    [P_WRITE] = {"damselfly_procstat_write_bytes_total", "counter", "Bytes written to storage."},
    [P_START] = {"damselfly_procstat_start_time_seconds", "gauge",
                 "Start time of the process since the epoch."},
};

static int prom_sample(const struct procstat_ctx *c, const struct report *r, enum prom_what w,
                       double *v)
{
    switch (w) {
    case P_CPU:
        *v = (double)r->cpu_ticks / (double)c->hz;
        return 1;
    case P_RSS:
        *v = (double)r->rss;
        return 1;
    case P_VMS:
        *v = (double)r->vms;
        return 1;
    case P_THREADS:
        *v = (double)r->threads;
        return 1;
    case P_FDS:
        *v = (double)r->fds;
        return r->has_fds;
    case P_READ:
        *v = (double)r->read_bytes;
        return r->has_io;
    case P_WRITE:
        *v = (double)r->write_bytes;
        return r->has_io;
    case P_START:
        *v = (double)c->btime_ns / 1e9 + (double)r->start_ticks / (double)c->hz;
        return 1;
    }
    return 0;
}

static void procstat_prom(void *vctx, struct dsf_buf *out)
{
    const struct procstat_ctx *c = vctx;
    for (int w = P_CPU; w <= P_START; w++) {
        int header = 0;
        for (size_t i = 0; i < c->nreports; i++) {
            double v;
            if (!prom_sample(c, &c->reports[i], (enum prom_what)w, &v))
                continue;
            if (!header++)
                prom_family(out, prom_rows[w].name, prom_rows[w].type, prom_rows[w].help);
            prom_labeled(out, prom_rows[w].name, &c->reports[i], v);
        }
    }
}

/* ------------------------------------------------------------------ lifecycle */

static uint64_t procstat_capabilities(const void *options)
{
    const struct procstat_options *o = options;
    if (!o->enabled)
        return 0;
    /* Other users' /proc/<pid>/fd needs DAC_READ_SEARCH; their /proc/<pid>/io (and fd, on
     * kernels that check ptrace access) needs SYS_PTRACE. */
    return (1ULL << CAP_DAC_READ_SEARCH) | (1ULL << CAP_SYS_PTRACE);
}

static void procstat_fini(void *vctx)
{
    struct procstat_ctx *c = vctx;
    if (!c)
        return;
    for (size_t i = 0; i < c->npatterns; i++) {
        if (c->patterns[i].is_regex)
            regfree(&c->patterns[i].re);
        free(c->patterns[i].text);
    }
    free(c->patterns);
    dsf_strlist_free(&c->pid_files);
    dsf_strlist_free(&c->cgroups);
    free(c->cur);
    free(c->prev);
    free(c->reports);
    free(c->top);
    free(c->top_delta);
    buf_free(&c->scratch);
    free(c);
}

static int copy_list(struct dsf_strlist *dst, const struct dsf_strlist *src)
{
    dst->items = calloc(src->count ? src->count : 1, sizeof(char *));
    if (!dst->items)
        return -1;
    for (; dst->count < src->count; dst->count++)
        if (!(dst->items[dst->count] = strdup(src->items[dst->count])))
            return -1;
    return 0;
}

static int compile_patterns(struct procstat_ctx *c, const struct dsf_strlist *src, char *err,
                            size_t errlen)
{
    c->patterns = calloc(src->count ? src->count : 1, sizeof(*c->patterns));
    if (!c->patterns)
        return snprintf(err, errlen, "out of memory"), -1;
    for (; c->npatterns < src->count; c->npatterns++) {
        struct pattern *p = &c->patterns[c->npatterns];
        if (!src->items[c->npatterns][0])
            return snprintf(err, errlen, "inputs.procstat.patterns: empty pattern"), -1;
        if (!(p->text = strdup(src->items[c->npatterns])))
            return snprintf(err, errlen, "out of memory"), -1;
        /* Not every name is a valid regex ("a[1"): such a pattern is a plain substring. One
         * that would cost too much to compile is a mistake to report. */
        char why[DSF_CFG_ERRLEN - 32];
        int rc = dsf_regex_compile(&p->re, p->text, 0, why, sizeof(why));
        if (rc == DSF_REGEX_REFUSED) {
            free(p->text);
            return snprintf(err, errlen, "inputs.procstat.patterns: %s", why), -1;
        }
        p->is_regex = rc == 0;
    }
    return 0;
}

static int procstat_init(void **out, const void *options, const struct dsf_input_env *env,
                         char *err, size_t errlen)
{
    const struct procstat_options *o = options;
    struct procstat_ctx *c = calloc(1, sizeof(*c));
    if (!c)
        return snprintf(err, errlen, "out of memory"), -1;
    snprintf(c->proc, sizeof(c->proc), "%s", env->proc);
    c->hz = sysconf(_SC_CLK_TCK) > 0 ? sysconf(_SC_CLK_TCK) : 100;
    c->page_size = sysconf(_SC_PAGESIZE) > 0 ? sysconf(_SC_PAGESIZE) : 4096;
    c->pid_tag = o->pid_tag;
    c->top_n = o->top_n > 0 ? (size_t)o->top_n : 0;
    snprintf(c->top_label, sizeof(c->top_label), "%zu", c->top_n);
    if (compile_patterns(c, &o->patterns, err, errlen))
        goto fail;
    if (copy_list(&c->pid_files, &o->pid_files) || copy_list(&c->cgroups, &o->cgroups) ||
        (c->top_n && (!(c->top = calloc(c->top_n, sizeof(*c->top))) ||
                      !(c->top_delta = calloc(c->top_n, sizeof(*c->top_delta)))))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (c->cgroups.count) {
        char why[DSF_CFG_ERRLEN];
        c->have_layout = cg_layout_detect(&c->layout, env, why, sizeof(why)) == 0;
        if (!c->have_layout)
            log_warn("cgroup selection disabled: %s", why);
    }
    if (!c->npatterns && !c->pid_files.count && !c->cgroups.count && !c->top_n)
        log_warn("no patterns, pid_files, cgroups or top_n: nothing to report");
    c->btime_ns = read_btime_ns(c->proc, &c->scratch);
    *out = c;
    return 0;
fail:
    procstat_fini(c);
    return -1;
}

const struct dsf_input dsf_input_procstat = {
    .name = "procstat",
    .options = procstat_keys,
    .options_size = sizeof(struct procstat_options),
    .init = procstat_init,
    .collect = procstat_collect,
    .prom = procstat_prom,
    .capabilities = procstat_capabilities,
    .fini = procstat_fini,
};
