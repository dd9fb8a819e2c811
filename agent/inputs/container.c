/*
 * Container metrics from cgroups, with the names of Telegraf's docker input and cAdvisor:
 * every cgroup that looks like a container (docker, containerd, CRI-O, podman, Kubernetes
 * pods and their containers), the agent's own cgroup, and the cgroups the user lists.
 *
 * The tree is walked every rescan_interval cycles, not every cycle: on a busy node it holds
 * thousands of directories, while the set of containers changes far more slowly than the
 * readings. Between walks a vanished group is simply skipped.
 */
#define DSF_MODULE "container"
#include "common/log.h"

#include <dirent.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "agent/input.h"
#include "agent/inputs/cgroup.h"
#include "agent/procfile.h"
#include "common/metrics.h"

struct container_options {
    int enabled;
    struct dsf_strlist cgroups;
    int64_t rescan_interval;
};

static const struct dsf_cfg_key container_keys[] = {
    {"enabled", DSF_CFG_BOOL, "true", offsetof(struct container_options, enabled),
     "Report CPU, memory, I/O and pids of every container cgroup on this host", 0, 0},
    {"cgroups", DSF_CFG_STRLIST, NULL, offsetof(struct container_options, cgroups),
     "More cgroups to report, as paths inside the hierarchy (e.g. /system.slice/app.service)", 0,
     0},
    {"rescan_interval", DSF_CFG_INT, "5", offsetof(struct container_options, rescan_interval),
     "Cycles between two walks of the cgroup tree that look for new containers", 1, 1000000},
    DSF_CFG_END,
};

enum runtime { RT_DOCKER, RT_CONTAINERD, RT_KUBERNETES, RT_PODMAN, RT_OTHER };
static const char *const runtime_names[] = {"docker", "containerd", "kubernetes", "podman",
                                            "other"};

enum kind { K_NONE, K_CONTAINER, K_POD };

/* Deep enough for kubepods.slice/kubepods-burstable.slice/<pod>.slice/<container>.scope
 * under a nested runtime; deeper trees are not container layouts we know. */
#define WALK_DEPTH 10
#define SHORT_ID 12

struct container {
    char group[CG_PATH_MAX];
    char id[SHORT_ID + 1]; /* "" when not recognisable: the group path is the id */
    char pod_uid[40];
    enum runtime rt;
    uint32_t hash;
    unsigned presence; /* hierarchies holding the group, from the last walk */
    int seen, valid;
    struct cg_stats st;
    uint64_t working_set;
    uint64_t prev_cpu_ns;
    int64_t prev_mono_ns;
    int has_prev, has_pct;
    double cpu_pct;
};

struct container_ctx {
    char proc[256];
    struct cg_layout layout;
    struct container *items;
    size_t n, cap;
    struct dsf_strlist extra;
    int64_t rescan_every;
    uint64_t cycles;
    struct dsf_buf scratch;
};

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* ------------------------------------------------------------------ recognising paths */

static int is_hex(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
}

static size_t hex_run(const char *s)
{
    size_t n = 0;
    while (is_hex(s[n]))
        n++;
    return n;
}

/* "docker-<id>.scope", "cri-containerd-<id>.scope", "<64 hex>"...: the id, or NULL. */
static const char *container_id_in(const char *base, const char *parent, enum runtime *rt)
{
    static const struct {
        const char *prefix;
        enum runtime rt;
    } prefixes[] = {{"docker-", RT_DOCKER},
                    {"cri-containerd-", RT_CONTAINERD},
                    {"crio-", RT_OTHER},
                    {"libpod-", RT_PODMAN},
                    {"nerdctl-", RT_CONTAINERD}};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        size_t n = strlen(prefixes[i].prefix);
        if (strncmp(base, prefixes[i].prefix, n) != 0)
            continue;
        size_t hex = hex_run(base + n);
        const char *rest = base + n + hex;
        if (hex >= SHORT_ID && (!*rest || strcmp(rest, ".scope") == 0)) {
            *rt = prefixes[i].rt;
            return base + n;
        }
    }
    if (hex_run(base) == 64 && !base[64]) {
        *rt = strcmp(parent, "docker") == 0          ? RT_DOCKER
              : strcmp(parent, "libpod_parent") == 0 ? RT_PODMAN
                                                     : RT_OTHER;
        return base;
    }
    return NULL;
}

/* "pod<uid>" (cgroupfs driver) or "kubepods-<qos>-pod<uid_with_underscores>.slice"
 * (systemd driver): copies the uid with dashes; 0 when base is not a pod directory. */
static int pod_uid_in(const char *base, char *uid, size_t cap)
{
    const char *p = NULL;
    if (strncmp(base, "pod", 3) == 0)
        p = base + 3;
    else if (strncmp(base, "kubepods-", 9) == 0 && (p = strstr(base + 8, "-pod")))
        p += 4;
    if (!p)
        return 0;
    size_t n = strcspn(p, ".");
    if (n < 32 || n >= cap || (p[n] && strcmp(p + n, ".slice") != 0))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = p[i] == '_' ? '-' : p[i];
        if (ch != '-' && !is_hex(ch))
            return 0;
        uid[i] = ch;
    }
    uid[n] = '\0';
    return 1;
}

/* Classifies a group path from its last components and any kubepods ancestor. */
static enum kind classify(const char *group, struct container *c)
{
    char copy[CG_PATH_MAX], *parent = "", *base = "", *save = NULL;
    int kube = 0;
    snprintf(copy, sizeof(copy), "%s", group);
    c->pod_uid[0] = c->id[0] = '\0';
    c->rt = RT_OTHER;
    for (char *part = strtok_r(copy, "/", &save); part; part = strtok_r(NULL, "/", &save)) {
        kube |= strncmp(part, "kubepods", 8) == 0;
        if (kube && !c->pod_uid[0])
            pod_uid_in(part, c->pod_uid, sizeof(c->pod_uid));
        parent = base;
        base = part;
    }
    const char *id = container_id_in(base, parent, &c->rt);
    if (id) {
        snprintf(c->id, sizeof(c->id), "%.*s", SHORT_ID, id);
        if (kube)
            c->rt = RT_KUBERNETES;
        return K_CONTAINER;
    }
    if (kube && c->pod_uid[0] && pod_uid_in(base, c->pod_uid, sizeof(c->pod_uid))) {
        c->rt = RT_KUBERNETES;
        return K_POD;
    }
    return K_NONE;
}

/* ------------------------------------------------------------------ the container list */

static struct container *find(struct container_ctx *c, const char *group, uint32_t hash)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->items[i].hash == hash && strcmp(c->items[i].group, group) == 0)
            return &c->items[i];
    return NULL;
}

/* Marks the group seen, adding it when new; NULL only when out of memory. */
static struct container *upsert(struct container_ctx *c, const char *group)
{
    uint32_t hash = fnv1a(group);
    struct container *it = find(c, group, hash);
    if (!it) {
        if (c->n == c->cap) {
            size_t cap = c->cap ? 2 * c->cap : 16;
            struct container *grown = realloc(c->items, cap * sizeof(*grown));
            if (!grown) {
                log_error("out of memory growing the container list to %zu", cap);
                return NULL;
            }
            c->items = grown;
            c->cap = cap;
        }
        it = &c->items[c->n++];
        memset(it, 0, sizeof(*it));
        snprintf(it->group, sizeof(it->group), "%s", group);
        it->hash = hash;
        classify(group, it);
        log_debug("watching %s (%s)", group, runtime_names[it->rt]);
    }
    it->seen = 1;
    return it;
}

static void walk(struct container_ctx *c, const char *mount, char *rel, size_t len, int depth)
{
    char dir[2 * CG_PATH_MAX];
    struct dirscan ds;
    snprintf(dir, sizeof(dir), "%s%s", mount, rel);
    if (dirscan_open(&ds, dir))
        return; /* removed while walking */
    unsigned char type;
    struct stat st;
    for (const char *name; (name = dirscan_next(&ds, &type));) {
        int n = snprintf(rel + len, CG_PATH_MAX - len, "/%s", name);
        if (n < 0 || (size_t)n >= CG_PATH_MAX - len)
            continue;
        if (type != DT_DIR &&
            (type != DT_UNKNOWN || snprintf(dir, sizeof(dir), "%s%s", mount, rel) < 0 ||
             stat(dir, &st) || !S_ISDIR(st.st_mode)))
            continue;
        struct container probe;
        enum kind k = classify(rel, &probe);
        if (k != K_NONE)
            upsert(c, rel);
        if (k != K_CONTAINER && depth < WALK_DEPTH)
            walk(c, mount, rel, len + (size_t)n, depth + 1);
    }
    rel[len] = '\0';
    dirscan_close(&ds);
}

/* The agent's own groups, from lines "<id>:<controllers>:<path>" of /proc/self/cgroup. */
static void add_own_groups(struct container_ctx *c)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/self/cgroup", c->proc);
    if (read_file_buf(path, &c->scratch))
        return;
    static const struct {
        const char *name;
        enum cg_hier h;
    } ctrls[] = {{"", CG_V2},
                 {"cpu", CG_V1_CPU},
                 {"cpuacct", CG_V1_CPUACCT},
                 {"memory", CG_V1_MEMORY},
                 {"blkio", CG_V1_BLKIO},
                 {"pids", CG_V1_PIDS}};
    char *save = NULL;
    for (char *line = strtok_r(c->scratch.data, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *list = strchr(line, ':'), *group = list ? strchr(list + 1, ':') : NULL;
        if (!group)
            continue;
        *group++ = '\0';
        char padded[256], token[32], own[CG_PATH_MAX];
        snprintf(padded, sizeof(padded), ",%s,", list + 1); /* ",cpu,cpuacct," or ",," */
        for (size_t i = 0; i < sizeof(ctrls) / sizeof(ctrls[0]); i++) {
            snprintf(token, sizeof(token), ",%s,", ctrls[i].name);
            if (!strstr(padded, token) ||
                cg_from_proc_path(&c->layout, ctrls[i].h, group, own, sizeof(own)) ||
                strcmp(own, "/") == 0)
                continue;
            upsert(c, own);
        }
    }
}

static void rescan(struct container_ctx *c)
{
    for (size_t i = 0; i < c->n; i++)
        c->items[i].seen = 0;
    const struct cg_layout *l = &c->layout;
    char rel[CG_PATH_MAX] = "";
    if (l->has_v2)
        walk(c, l->m[CG_V2].dir, rel, 0, 0);
    /* Runtimes create a container's group in every v1 hierarchy alike: one walk finds it. */
    static const enum cg_hier v1_walk[] = {CG_V1_CPUACCT, CG_V1_CPU, CG_V1_MEMORY};
    for (size_t i = 0; i < sizeof(v1_walk) / sizeof(v1_walk[0]); i++)
        if (l->m[v1_walk[i]].dir[0]) {
            walk(c, l->m[v1_walk[i]].dir, rel, 0, 0);
            break;
        }
    add_own_groups(c);
    for (size_t i = 0; i < c->extra.count; i++)
        upsert(c, c->extra.items[i]);
    size_t kept = 0;
    for (size_t i = 0; i < c->n; i++) {
        struct container *it = &c->items[i];
        it->presence = it->seen ? cg_presence(l, it->group) : 0;
        if (!it->presence) {
            log_debug("no longer watching %s", it->group);
            continue;
        }
        if (kept != i)
            c->items[kept] = *it;
        kept++;
    }
    c->n = kept;
}

/* ------------------------------------------------------------------ reading */

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A group only in hierarchies without CPU accounting (say, just memory) still reports
 * CPU: the time of the processes it holds now. */
static void cpu_from_tasks(struct container_ctx *c, struct container *it)
{
    for (int h = 0; h < CG_NHIER; h++)
        if ((it->presence & (1u << h)) && !cg_tasks_cpu_ns(&c->layout, (enum cg_hier)h, it->group,
                                                           c->proc, &c->scratch, &it->st.cpu_ns)) {
            it->st.have |= CG_HAVE_CPU;
            return;
        }
}

static void update_cpu_percent(struct container *it)
{
    int64_t now = mono_ns();
    it->has_pct = it->has_prev && now > it->prev_mono_ns && it->st.cpu_ns >= it->prev_cpu_ns;
    if (it->has_pct)
        it->cpu_pct =
            100.0 * (double)(it->st.cpu_ns - it->prev_cpu_ns) / (double)(now - it->prev_mono_ns);
    it->prev_cpu_ns = it->st.cpu_ns;
    it->prev_mono_ns = now;
    it->has_prev = 1;
}

static void read_container(struct container_ctx *c, struct container *it)
{
    memset(&it->st, 0, sizeof(it->st));
    if (it->presence & (1u << CG_V2))
        cg_v2_read(&c->layout, it->group, &it->st, &c->scratch);
    if (it->presence & ~(1u << CG_V2))
        cg_v1_read(&c->layout, it->group, it->presence, &it->st, &c->scratch);
    if (!(it->st.have & CG_HAVE_CPU))
        cpu_from_tasks(c, it);
    it->valid = it->st.have != 0;
    if (it->st.have & CG_HAVE_CPU)
        update_cpu_percent(it);
    else
        it->has_prev = it->has_pct = 0;
    uint64_t inactive = (it->st.have & CG_HAVE_MEMSTAT) ? it->st.mem_inactive_file : 0;
    it->working_set = it->st.mem_usage > inactive ? it->st.mem_usage - inactive : 0;
}

/* ------------------------------------------------------------------ output */

static int64_t clamp_i64(uint64_t v)
{
    return v > INT64_MAX ? INT64_MAX : (int64_t)v;
}

static void emit(struct dsf_batch *out, const struct container *it, int64_t now_ns)
{
    const struct cg_stats *s = &it->st;
    batch_begin(out, "container", now_ns);
    batch_tag(out, "container_id", it->id[0] ? it->id : it->group);
    batch_tag(out, "cgroup", it->group);
    batch_tag(out, "runtime", runtime_names[it->rt]);
    if (it->pod_uid[0])
        batch_tag(out, "pod_uid", it->pod_uid);
    if (s->have & CG_HAVE_CPU)
        batch_field_i(out, "cpu_usage_nanoseconds", clamp_i64(s->cpu_ns));
    if (it->has_pct)
        batch_field_f(out, "cpu_usage_percent", it->cpu_pct);
    if (s->have & CG_HAVE_THROTTLE) {
        batch_field_i(out, "cpu_periods", clamp_i64(s->cpu_periods));
        batch_field_i(out, "cpu_throttled_periods", clamp_i64(s->cpu_throttled_periods));
        batch_field_i(out, "cpu_throttled_nanoseconds", clamp_i64(s->cpu_throttled_ns));
    }
    if (s->have & CG_HAVE_MEM) {
        batch_field_i(out, "memory_usage", clamp_i64(s->mem_usage));
        batch_field_i(out, "memory_working_set", clamp_i64(it->working_set));
    }
    if ((s->have & CG_HAVE_MEM) && (s->have & CG_HAVE_MEMLIMIT)) {
        batch_field_i(out, "memory_limit", clamp_i64(s->mem_limit));
        if (s->mem_limit)
            batch_field_f(out, "memory_usage_percent",
                          100.0 * (double)it->working_set / (double)s->mem_limit);
    }
    if (s->have & CG_HAVE_MEMSTAT)
        batch_field_i(out, "memory_rss", clamp_i64(s->mem_rss));
    if (s->have & CG_HAVE_IO) {
        batch_field_i(out, "io_read_bytes", clamp_i64(s->io_read));
        batch_field_i(out, "io_write_bytes", clamp_i64(s->io_write));
    }
    if (s->have & CG_HAVE_PIDS)
        batch_field_i(out, "pids_current", clamp_i64(s->pids_current));
    if (s->have & CG_HAVE_PIDSLIMIT)
        batch_field_i(out, "pids_limit", clamp_i64(s->pids_limit));
    batch_end(out);
}

static int container_collect(void *vctx, struct dsf_batch *out, int64_t now_ns)
{
    struct container_ctx *c = vctx;
    if (c->cycles++ % (uint64_t)c->rescan_every == 0)
        rescan(c);
    for (size_t i = 0; i < c->n; i++) {
        struct container *it = &c->items[i];
        read_container(c, it);
        if (it->valid)
            emit(out, it, now_ns);
    }
    return 0;
}

static const struct prom_row {
    const char *name, *type, *help;
    unsigned need; /* CG_HAVE_* bits */
    size_t offset; /* of a uint64_t in struct container */
    double scale;
} prom_rows[] = {
    {"damselfly_container_cpu_usage_seconds_total", "counter", "CPU time used by the cgroup.",
     CG_HAVE_CPU, offsetof(struct container, st.cpu_ns), 1e-9},
    {"damselfly_container_cpu_periods_total", "counter", "CFS enforcement periods elapsed.",
     CG_HAVE_THROTTLE, offsetof(struct container, st.cpu_periods), 1},
    {"damselfly_container_cpu_throttled_periods_total", "counter",
     "CFS periods in which the cgroup was throttled.", CG_HAVE_THROTTLE,
     offsetof(struct container, st.cpu_throttled_periods), 1},
    {"damselfly_container_cpu_throttled_seconds_total", "counter",
     "Time the cgroup spent throttled.", CG_HAVE_THROTTLE,
     offsetof(struct container, st.cpu_throttled_ns), 1e-9},
    {"damselfly_container_memory_usage_bytes", "gauge", "Memory charged to the cgroup.",
     CG_HAVE_MEM, offsetof(struct container, st.mem_usage), 1},
    {"damselfly_container_memory_working_set_bytes", "gauge",
     "Memory usage minus inactive file cache.", CG_HAVE_MEM,
     offsetof(struct container, working_set), 1},
    {"damselfly_container_memory_limit_bytes", "gauge", "Memory limit of the cgroup.",
     CG_HAVE_MEM | CG_HAVE_MEMLIMIT, offsetof(struct container, st.mem_limit), 1},
    {"damselfly_container_memory_rss_bytes", "gauge", "Anonymous memory of the cgroup.",
     CG_HAVE_MEMSTAT, offsetof(struct container, st.mem_rss), 1},
    {"damselfly_container_io_read_bytes_total", "counter", "Bytes read from block devices.",
     CG_HAVE_IO, offsetof(struct container, st.io_read), 1},
    {"damselfly_container_io_write_bytes_total", "counter", "Bytes written to block devices.",
     CG_HAVE_IO, offsetof(struct container, st.io_write), 1},
    {"damselfly_container_pids", "gauge", "Processes and threads in the cgroup.", CG_HAVE_PIDS,
     offsetof(struct container, st.pids_current), 1},
    {"damselfly_container_pids_limit", "gauge", "Maximum processes and threads in the cgroup.",
     CG_HAVE_PIDSLIMIT, offsetof(struct container, st.pids_limit), 1},
};

/* pod_uid only for pods: its NULL key ends the labels early otherwise. */
static void prom_sample(struct dsf_buf *out, const char *name, const struct container *it, double v)
{
    prom_labeled_sample(out, name, v, "container_id", it->id[0] ? it->id : it->group, "cgroup",
                        it->group, "runtime", runtime_names[it->rt],
                        it->pod_uid[0] ? "pod_uid" : NULL, it->pod_uid, NULL);
}

static void container_prom(void *vctx, struct dsf_buf *out)
{
    struct container_ctx *c = vctx;
    for (size_t r = 0; r < sizeof(prom_rows) / sizeof(prom_rows[0]); r++) {
        const struct prom_row *row = &prom_rows[r];
        int header = 0;
        for (size_t i = 0; i < c->n; i++) {
            const struct container *it = &c->items[i];
            if (!it->valid || (it->st.have & row->need) != row->need)
                continue;
            if (!header++)
                prom_family(out, row->name, row->type, row->help);
            uint64_t v;
            memcpy(&v, (const char *)it + row->offset, sizeof(v));
            prom_sample(out, row->name, it, (double)v * row->scale);
        }
    }
}

/* ------------------------------------------------------------------ lifecycle */

static void container_fini(void *vctx)
{
    struct container_ctx *c = vctx;
    if (!c)
        return;
    free(c->items);
    dsf_strlist_free(&c->extra);
    buf_free(&c->scratch);
    free(c);
}

static int copy_groups(struct container_ctx *c, const struct dsf_strlist *groups, char *err,
                       size_t errlen)
{
    c->extra.items = calloc(groups->count ? groups->count : 1, sizeof(char *));
    if (!c->extra.items)
        return snprintf(err, errlen, "out of memory"), -1;
    for (size_t i = 0; i < groups->count; i++) {
        const char *g = groups->items[i];
        if (g[0] != '/' || strlen(g) >= CG_PATH_MAX) {
            snprintf(err, errlen,
                     "inputs.container.cgroups: '%s' is not a path inside the cgroup hierarchy "
                     "(it must start with '/' and be shorter than %d bytes)",
                     g, CG_PATH_MAX);
            return -1;
        }
        if (!(c->extra.items[c->extra.count] = strdup(g)))
            return snprintf(err, errlen, "out of memory"), -1;
        c->extra.count++;
    }
    return 0;
}

static int container_init(void **out, const void *options, const struct dsf_input_env *env,
                          char *err, size_t errlen)
{
    const struct container_options *o = options;
    struct container_ctx *c = calloc(1, sizeof(*c));
    if (!c)
        return snprintf(err, errlen, "out of memory"), -1;
    snprintf(c->proc, sizeof(c->proc), "%s", env->proc);
    c->rescan_every = o->rescan_interval > 0 ? o->rescan_interval : 5;
    if (copy_groups(c, &o->cgroups, err, errlen) ||
        cg_layout_detect(&c->layout, env, err, errlen)) {
        container_fini(c);
        return -1;
    }
    const struct cg_layout *l = &c->layout;
    log_info("cgroup layout %s (unified: %s, cpuacct: %s, memory: %s)", cg_layout_name(l),
             l->has_v2 ? l->m[CG_V2].dir : "none",
             l->m[CG_V1_CPUACCT].dir[0] ? l->m[CG_V1_CPUACCT].dir : "none",
             l->m[CG_V1_MEMORY].dir[0] ? l->m[CG_V1_MEMORY].dir : "none");
    *out = c;
    return 0;
}

const struct dsf_input dsf_input_container = {
    .name = "container",
    .options = container_keys,
    .options_size = sizeof(struct container_options),
    .init = container_init,
    .collect = container_collect,
    .prom = container_prom,
    .fini = container_fini,
};
