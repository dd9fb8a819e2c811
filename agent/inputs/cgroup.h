/*
 * cgroup layouts and readers shared by the container and procstat inputs.
 *
 * A host has cgroup v1 (one hierarchy per controller), v2 (one unified hierarchy) or both
 * (systemd's hybrid: v1 controllers plus a controller-less cgroup2 tree). A group is named
 * by its path inside the hierarchy ("/system.slice/docker-<id>.scope"); the same path may
 * exist in several hierarchies, and a reader merges what each one provides.
 */
#ifndef DSF_AGENT_CGROUP_H
#define DSF_AGENT_CGROUP_H

#include <stddef.h>
#include <stdint.h>

#include "agent/input.h"
#include "common/buf.h"

enum cg_hier { CG_V2, CG_V1_CPU, CG_V1_CPUACCT, CG_V1_MEMORY, CG_V1_BLKIO, CG_V1_PIDS, CG_NHIER };

#define CG_PATH_MAX 512

struct cg_mount {
    char dir[CG_PATH_MAX];  /* where to read this hierarchy; "" when it is not mounted */
    char root[CG_PATH_MAX]; /* the hierarchy path the mount shows (mountinfo "root") */
};

struct cg_layout {
    struct cg_mount m[CG_NHIER];
    int has_v1, has_v2;
};

/* Reads <proc>/self/mountinfo and finds every hierarchy; 0, or -1 with err when no cgroup
 * filesystem is mounted. */
int cg_layout_detect(struct cg_layout *l, const struct dsf_input_env *env, char *err,
                     size_t errlen);
/* "v2", "v1" or "hybrid". */
const char *cg_layout_name(const struct cg_layout *l);
/* Joins the mount of h, a group path and an optional file name; -1 when h is not mounted
 * or the result does not fit. */
int cg_join(const struct cg_layout *l, enum cg_hier h, const char *group, const char *file,
            char *out, size_t cap);
/* Turns a path from /proc/<pid>/cgroup (relative to the hierarchy root) into one relative
 * to the mount of h; -1 when the mount does not show that group. */
int cg_from_proc_path(const struct cg_layout *l, enum cg_hier h, const char *path, char *out,
                      size_t cap);
/* Bit (1 << h) set for every hierarchy where the group's directory exists. */
unsigned cg_presence(const struct cg_layout *l, const char *group);

enum {
    CG_HAVE_CPU = 1 << 0,
    CG_HAVE_THROTTLE = 1 << 1,
    CG_HAVE_MEM = 1 << 2,
    CG_HAVE_MEMLIMIT = 1 << 3,
    CG_HAVE_MEMSTAT = 1 << 4,
    CG_HAVE_IO = 1 << 5,
    CG_HAVE_PIDS = 1 << 6,
    CG_HAVE_PIDSLIMIT = 1 << 7,
};

struct cg_stats {
    unsigned have; /* CG_HAVE_* bits: which of the fields below were read */
    uint64_t cpu_ns;
    uint64_t cpu_periods, cpu_throttled_periods, cpu_throttled_ns;
    uint64_t mem_usage, mem_limit, mem_inactive_file, mem_rss;
    uint64_t io_read, io_write;
    uint64_t pids_current, pids_limit;
};

/* Each reader fills only the groups of fields that are not in s->have yet, so calling v2
 * first and v1 second prefers v2 and lets v1 complete a hybrid host. scratch is reused. */
void cg_v2_read(const struct cg_layout *l, const char *group, struct cg_stats *s,
                struct dsf_buf *scratch);
void cg_v1_read(const struct cg_layout *l, const char *group, unsigned presence, struct cg_stats *s,
                struct dsf_buf *scratch);
/* CPU time of the processes now in the group (utime+stime+cutime+cstime from
 * <proc>/<pid>/stat), for a group no CPU-accounting hierarchy holds. */
int cg_tasks_cpu_ns(const struct cg_layout *l, enum cg_hier h, const char *group, const char *proc,
                    struct dsf_buf *scratch, uint64_t *ns);

/* Calls fn for each pid in the group's cgroup.procs, read from hierarchy h or, when h is
 * CG_NHIER, from the first hierarchy holding the group; 0, or -1 when none has it. */
int cg_for_each_pid(const struct cg_layout *l, enum cg_hier h, const char *group,
                    struct dsf_buf *scratch, void (*fn)(void *arg, int pid), void *arg);

/* Line helper for "key value" files (cpu.stat, memory.stat): the value of key, or -1. */
int cg_kv_u64(const char *text, const char *key, uint64_t *out);

#endif
