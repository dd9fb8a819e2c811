/*
 * The cgroup v1 reader. Each controller is its own hierarchy (cpu and cpuacct are often
 * co-mounted): cpuacct.usage (nanoseconds), cpu.stat (nr_periods, nr_throttled,
 * throttled_time in nanoseconds), memory.usage_in_bytes, memory.limit_in_bytes,
 * memory.stat (total_rss, total_inactive_file: the hierarchical totals),
 * blkio.throttle.io_service_bytes ("8:0 Read 123" lines), pids.current, pids.max.
 */
#include "agent/inputs/cgroup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/procfile.h"

/* The kernel's "no limit" is PAGE_COUNTER_MAX pages, just under 2^63 bytes. */
#define V1_UNLIMITED (1ULL << 62)

static int v1_file(const struct cg_layout *l, enum cg_hier h, const char *group, const char *file,
                   struct dsf_buf *scratch)
{
    char path[2 * CG_PATH_MAX];
    return cg_join(l, h, group, file, path, sizeof(path)) ? -1 : read_file_buf(path, scratch);
}

static int v1_u64(const struct cg_layout *l, enum cg_hier h, const char *group, const char *file,
                  uint64_t *out)
{
    char path[2 * CG_PATH_MAX];
    unsigned long long v;
    if (cg_join(l, h, group, file, path, sizeof(path)) || read_u64_file(path, &v))
        return -1;
    *out = v;
    return 0;
}

static void v1_cpu(const struct cg_layout *l, const char *group, unsigned presence,
                   struct cg_stats *s, struct dsf_buf *scratch)
{
    if (!(s->have & CG_HAVE_CPU) && (presence & (1u << CG_V1_CPUACCT)) &&
        !v1_u64(l, CG_V1_CPUACCT, group, "cpuacct.usage", &s->cpu_ns))
        s->have |= CG_HAVE_CPU;
    if (!(presence & (1u << CG_V1_CPU)) || (s->have & CG_HAVE_THROTTLE) ||
        v1_file(l, CG_V1_CPU, group, "cpu.stat", scratch))
        return;
    if (!cg_kv_u64(scratch->data, "nr_periods", &s->cpu_periods) &&
        !cg_kv_u64(scratch->data, "nr_throttled", &s->cpu_throttled_periods) &&
        !cg_kv_u64(scratch->data, "throttled_time", &s->cpu_throttled_ns))
        s->have |= CG_HAVE_THROTTLE;
}

static void v1_memory(const struct cg_layout *l, const char *group, struct cg_stats *s,
                      struct dsf_buf *scratch)
{
    if (v1_u64(l, CG_V1_MEMORY, group, "memory.usage_in_bytes", &s->mem_usage))
        return;
    s->have |= CG_HAVE_MEM;
    if (!v1_u64(l, CG_V1_MEMORY, group, "memory.limit_in_bytes", &s->mem_limit) &&
        s->mem_limit < V1_UNLIMITED)
        s->have |= CG_HAVE_MEMLIMIT;
    if (!v1_file(l, CG_V1_MEMORY, group, "memory.stat", scratch) &&
        !cg_kv_u64(scratch->data, "total_inactive_file", &s->mem_inactive_file) &&
        !cg_kv_u64(scratch->data, "total_rss", &s->mem_rss))
        s->have |= CG_HAVE_MEMSTAT;
}

/* Docker reads the _recursive file so that I/O of nested groups counts; older kernels
 * only have the plain one. */
static void v1_io(const struct cg_layout *l, const char *group, struct cg_stats *s,
                  struct dsf_buf *scratch)
{
    if (v1_file(l, CG_V1_BLKIO, group, "blkio.throttle.io_service_bytes_recursive", scratch) &&
        v1_file(l, CG_V1_BLKIO, group, "blkio.throttle.io_service_bytes", scratch))
        return;
    s->io_read = s->io_write = 0;
    for (const char *p = scratch->data; (p = strchr(p, ' ')); p++) {
        if (strncmp(p + 1, "Read ", 5) == 0)
            s->io_read += strtoull(p + 6, NULL, 10);
        else if (strncmp(p + 1, "Write ", 6) == 0)
            s->io_write += strtoull(p + 7, NULL, 10);
    }
    s->have |= CG_HAVE_IO;
}

static void v1_pids(const struct cg_layout *l, const char *group, struct cg_stats *s)
{
    if (v1_u64(l, CG_V1_PIDS, group, "pids.current", &s->pids_current))
        return;
    s->have |= CG_HAVE_PIDS;
    if (!v1_u64(l, CG_V1_PIDS, group, "pids.max", &s->pids_limit) && s->pids_limit != UINT64_MAX)
        s->have |= CG_HAVE_PIDSLIMIT;
}

void cg_v1_read(const struct cg_layout *l, const char *group, unsigned presence, struct cg_stats *s,
                struct dsf_buf *scratch)
{
    if (!(s->have & CG_HAVE_CPU) || !(s->have & CG_HAVE_THROTTLE))
        v1_cpu(l, group, presence, s, scratch);
    if (!(s->have & CG_HAVE_MEM) && (presence & (1u << CG_V1_MEMORY)))
        v1_memory(l, group, s, scratch);
    if (!(s->have & CG_HAVE_IO) && (presence & (1u << CG_V1_BLKIO)))
        v1_io(l, group, s, scratch);
    if (!(s->have & CG_HAVE_PIDS) && (presence & (1u << CG_V1_PIDS)))
        v1_pids(l, group, s);
}

struct tasks_sum {
    const char *proc;
    uint64_t ticks;
};

/* utime, stime, cutime and cstime are fields 14-17 of /proc/<pid>/stat; counting from the
 * state after the command name (which may hold blanks), they are the 12th to 15th. */
static void add_task_ticks(void *arg, int pid)
{
    struct tasks_sum *sum = arg;
    char path[64], text[1024];
    snprintf(path, sizeof(path), "%s/%d/stat", sum->proc, pid);
    if (read_small_file(path, text, sizeof(text)))
        return; /* exited since cgroup.procs was read */
    char *p = strrchr(text, ')');
    if (!p)
        return;
    p++;
    for (int field = 3; field <= 17 && p; field++) {
        if (field >= 14)
            sum->ticks += strtoull(p, NULL, 10);
        p = strchr(p + 1, ' ');
    }
}

int cg_tasks_cpu_ns(const struct cg_layout *l, enum cg_hier h, const char *group, const char *proc,
                    struct dsf_buf *scratch, uint64_t *ns)
{
    struct tasks_sum sum = {proc, 0};
    if (cg_for_each_pid(l, h, group, scratch, add_task_ticks, &sum))
        return -1;
    long hz = sysconf(_SC_CLK_TCK);
    *ns = sum.ticks * (uint64_t)(1000000000 / (hz > 0 ? hz : 100));
    return 0;
}
