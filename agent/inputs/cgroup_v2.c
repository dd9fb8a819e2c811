/*
 * The cgroup layout (which hierarchies are mounted where, from mountinfo) and the cgroup v2
 * reader. v2 files: cpu.stat (usage_usec in microseconds; nr_periods, nr_throttled and
 * throttled_usec only with the cpu controller), memory.current, memory.max, memory.stat
 * (anon, inactive_file), io.stat (rbytes=, wbytes= per device), pids.current, pids.max.
 */
#define DSF_MODULE "container"
#include "common/log.h"

#include "agent/inputs/cgroup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent/procfile.h"

static int path_under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return n && strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/*
 * Where to read a mount point from this process. The DaemonSet sees the host's /sys at
 * env->sys: a mount already under it is the host's view and wins; a mount under /sys is
 * this container's own view, read through env->sys; anything else sits under rootfs.
 * Returns the rank of the choice (higher is better) or -1 when the path does not fit.
 */
static int locate(const struct dsf_input_env *env, const char *mnt, char *out, size_t cap)
{
    int n, rank;
    if (strcmp(env->sys, "/sys") != 0 && path_under(mnt, env->sys)) {
        n = snprintf(out, cap, "%s", mnt);
        rank = 2;
    } else if (path_under(mnt, "/sys")) {
        n = snprintf(out, cap, "%s%s", env->sys, mnt + 4);
        rank = 1;
    } else {
        n = snprintf(out, cap, "%s%s", env->rootfs ? env->rootfs : "", mnt);
        rank = 0;
    }
    return (n < 0 || (size_t)n >= cap) ? -1 : rank;
}

static void take_mount(struct cg_layout *l, int *ranks, enum cg_hier h, const char *dir,
                       const char *root, int rank)
{
    if (rank <= ranks[h])
        return;
    ranks[h] = rank;
    snprintf(l->m[h].dir, sizeof(l->m[h].dir), "%s", dir);
    /* A root outside this cgroup namespace ("/../..") cannot be mapped: treat it as "/". */
    snprintf(l->m[h].root, sizeof(l->m[h].root), "%s", strstr(root, "..") ? "/" : root);
}

static void parse_mount_line(struct cg_layout *l, int *ranks, struct procfile *pf, char *line,
                             const struct dsf_input_env *env)
{
    size_t n = procfile_split(pf, line, NULL), sep = 6;
    while (sep < n && strcmp(pf->words[sep], "-") != 0)
        sep++;
    if (n < 5 || sep + 3 >= n)
        return;
    const char *fstype = pf->words[sep + 1], *super = pf->words[sep + 3];
    int v2 = strcmp(fstype, "cgroup2") == 0;
    if (!v2 && strcmp(fstype, "cgroup") != 0)
        return;
    char *root = pf->words[3], *mnt = pf->words[4], dir[CG_PATH_MAX];
    mountinfo_unescape(root);
    mountinfo_unescape(mnt);
    int rank = locate(env, mnt, dir, sizeof(dir));
    if (rank < 0)
        return;
    if (v2) {
        take_mount(l, ranks, CG_V2, dir, root, rank);
        return;
    }
    static const struct {
        const char *opt;
        enum cg_hier h;
    } ctrls[] = {{"cpu", CG_V1_CPU},
                 {"cpuacct", CG_V1_CPUACCT},
                 {"memory", CG_V1_MEMORY},
                 {"blkio", CG_V1_BLKIO},
                 {"pids", CG_V1_PIDS}};
    for (size_t i = 0; i < sizeof(ctrls) / sizeof(ctrls[0]); i++)
        if (mount_has_option(super, ctrls[i].opt))
            take_mount(l, ranks, ctrls[i].h, dir, root, rank);
}

int cg_layout_detect(struct cg_layout *l, const struct dsf_input_env *env, char *err, size_t errlen)
{
    memset(l, 0, sizeof(*l));
    struct procfile pf;
    procfile_init(&pf, "%s/self/mountinfo", env->proc);
    if (procfile_read(&pf)) {
        snprintf(err, errlen, "cannot read %s: %s", pf.path, strerror(errno));
        procfile_close(&pf);
        return -1;
    }
    int ranks[CG_NHIER];
    for (int h = 0; h < CG_NHIER; h++)
        ranks[h] = -1;
    for (char *line; (line = procfile_next_line(&pf));)
        parse_mount_line(l, ranks, &pf, line, env);
    procfile_close(&pf);
    l->has_v2 = l->m[CG_V2].dir[0] != '\0';
    for (int h = CG_V1_CPU; h < CG_NHIER; h++)
        l->has_v1 |= l->m[h].dir[0] != '\0';
    static const char *const names[CG_NHIER] = {"cgroup2", "cpu",   "cpuacct",
                                                "memory",  "blkio", "pids"};
    for (int h = 0; h < CG_NHIER; h++)
        if (l->m[h].dir[0])
            log_debug("%s hierarchy at %s (root %s)", names[h], l->m[h].dir, l->m[h].root);
    if (!l->has_v1 && !l->has_v2) {
        snprintf(err, errlen, "no cgroup or cgroup2 filesystem in %s/self/mountinfo", env->proc);
        return -1;
    }
    return 0;
}

const char *cg_layout_name(const struct cg_layout *l)
{
    return l->has_v1 ? (l->has_v2 ? "hybrid" : "v1") : "v2";
}

int cg_join(const struct cg_layout *l, enum cg_hier h, const char *group, const char *file,
            char *out, size_t cap)
{
    if (!l->m[h].dir[0])
        return -1;
    if (strcmp(group, "/") == 0)
        group = "";
    int n = snprintf(out, cap, "%s%s%s%s", l->m[h].dir, group, file ? "/" : "", file ? file : "");
    return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

int cg_from_proc_path(const struct cg_layout *l, enum cg_hier h, const char *path, char *out,
                      size_t cap)
{
    const char *root = l->m[h].root;
    if (!l->m[h].dir[0])
        return -1;
    if (strcmp(root, "/") != 0) {
        if (!path_under(path, root))
            return -1;
        path += strlen(root);
    }
    int n = snprintf(out, cap, "%s", *path ? path : "/");
    return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

unsigned cg_presence(const struct cg_layout *l, const char *group)
{
    unsigned mask = 0;
    char path[2 * CG_PATH_MAX];
    struct stat st;
    for (int h = 0; h < CG_NHIER; h++)
        if (!cg_join(l, (enum cg_hier)h, group, NULL, path, sizeof(path)) && !stat(path, &st) &&
            S_ISDIR(st.st_mode))
            mask |= 1u << h;
    return mask;
}

int cg_kv_u64(const char *text, const char *key, uint64_t *out)
{
    size_t n = strlen(key);
    for (const char *p = text; p && *p;) {
        if (strncmp(p, key, n) == 0 && p[n] == ' ') {
            *out = strtoull(p + n + 1, NULL, 10);
            return 0;
        }
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    return -1;
}

int cg_for_each_pid(const struct cg_layout *l, enum cg_hier only, const char *group,
                    struct dsf_buf *scratch, void (*fn)(void *arg, int pid), void *arg)
{
    char path[2 * CG_PATH_MAX];
    for (int h = 0; h < CG_NHIER; h++) {
        if ((only != CG_NHIER && h != (int)only) ||
            cg_join(l, (enum cg_hier)h, group, "cgroup.procs", path, sizeof(path)) ||
            read_file_buf(path, scratch))
            continue;
        for (char *p = scratch->data, *end; *p; p = end) {
            long pid = strtol(p, &end, 10);
            if (end == p)
                break;
            if (pid > 0)
                fn(arg, (int)pid);
        }
        return 0;
    }
    return -1;
}

/* Reads <group>/<file> of the unified hierarchy into scratch. */
static int v2_file(const struct cg_layout *l, const char *group, const char *file,
                   struct dsf_buf *scratch)
{
    char path[2 * CG_PATH_MAX];
    return cg_join(l, CG_V2, group, file, path, sizeof(path)) ? -1 : read_file_buf(path, scratch);
}

static int v2_u64(const struct cg_layout *l, const char *group, const char *file, uint64_t *out)
{
    char path[2 * CG_PATH_MAX];
    unsigned long long v;
    if (cg_join(l, CG_V2, group, file, path, sizeof(path)) || read_u64_file(path, &v))
        return -1;
    *out = v;
    return 0;
}

static void v2_cpu(const struct cg_layout *l, const char *group, struct cg_stats *s,
                   struct dsf_buf *scratch)
{
    uint64_t usec;
    if (v2_file(l, group, "cpu.stat", scratch) || cg_kv_u64(scratch->data, "usage_usec", &usec))
        return;
    s->cpu_ns = usec * 1000;
    s->have |= CG_HAVE_CPU;
    uint64_t throttled_usec;
    if (!cg_kv_u64(scratch->data, "nr_periods", &s->cpu_periods) &&
        !cg_kv_u64(scratch->data, "nr_throttled", &s->cpu_throttled_periods) &&
        !cg_kv_u64(scratch->data, "throttled_usec", &throttled_usec)) {
        s->cpu_throttled_ns = throttled_usec * 1000;
        s->have |= CG_HAVE_THROTTLE;
    }
}

static void v2_memory(const struct cg_layout *l, const char *group, struct cg_stats *s,
                      struct dsf_buf *scratch)
{
    if (v2_u64(l, group, "memory.current", &s->mem_usage))
        return;
    s->have |= CG_HAVE_MEM;
    if (!v2_u64(l, group, "memory.max", &s->mem_limit) && s->mem_limit != UINT64_MAX)
        s->have |= CG_HAVE_MEMLIMIT;
    if (!v2_file(l, group, "memory.stat", scratch) &&
        !cg_kv_u64(scratch->data, "inactive_file", &s->mem_inactive_file) &&
        !cg_kv_u64(scratch->data, "anon", &s->mem_rss))
        s->have |= CG_HAVE_MEMSTAT;
}

/* io.stat: "8:0 rbytes=1 wbytes=2 rios=3 ..." per device; absent devices mean no I/O. */
static void v2_io(const struct cg_layout *l, const char *group, struct cg_stats *s,
                  struct dsf_buf *scratch)
{
    if (v2_file(l, group, "io.stat", scratch))
        return;
    s->io_read = s->io_write = 0;
    for (const char *p = scratch->data; (p = strchr(p, ' ')); p++) {
        if (strncmp(p + 1, "rbytes=", 7) == 0)
            s->io_read += strtoull(p + 8, NULL, 10);
        else if (strncmp(p + 1, "wbytes=", 7) == 0)
            s->io_write += strtoull(p + 8, NULL, 10);
    }
    s->have |= CG_HAVE_IO;
}

static void v2_pids(const struct cg_layout *l, const char *group, struct cg_stats *s)
{
    if (v2_u64(l, group, "pids.current", &s->pids_current))
        return;
    s->have |= CG_HAVE_PIDS;
    if (!v2_u64(l, group, "pids.max", &s->pids_limit) && s->pids_limit != UINT64_MAX)
        s->have |= CG_HAVE_PIDSLIMIT;
}

void cg_v2_read(const struct cg_layout *l, const char *group, struct cg_stats *s,
                struct dsf_buf *scratch)
{
    if (!(s->have & CG_HAVE_CPU))
        v2_cpu(l, group, s, scratch);
    if (!(s->have & CG_HAVE_MEM))
        v2_memory(l, group, s, scratch);
    if (!(s->have & CG_HAVE_IO))
        v2_io(l, group, s, scratch);
    if (!(s->have & CG_HAVE_PIDS))
        v2_pids(l, group, s);
}
