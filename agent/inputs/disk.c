/*
 * disk: usage of every mounted filesystem (mountinfo + statvfs) as Telegraf's disk
 * measurement and node_exporter's node_filesystem_* gauges.
 */
#define DSF_MODULE "disk"
#include "common/log.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "agent/host_proc.h"
#include "agent/input.h"
#include "agent/procfile.h"
#include "common/metrics.h"

struct disk_options {
    int enabled;
    struct dsf_strlist ignore_fs;
    struct dsf_strlist mount_points;
};

static const struct dsf_cfg_key disk_option_keys[] = {
    {"enabled", DSF_CFG_BOOL, "true", offsetof(struct disk_options, enabled),
     "collect filesystem usage of the mounted filesystems", 0, 0},
    {"ignore_fs", DSF_CFG_STRLIST, "tmpfs,devtmpfs,devfs,iso9660,overlay,aufs,squashfs",
     offsetof(struct disk_options, ignore_fs), "filesystem types not to report", 0, 0},
    {"mount_points", DSF_CFG_STRLIST, NULL, offsetof(struct disk_options, mount_points),
     "report only these mount points (empty: all)", 0, 0},
    DSF_CFG_END,
};

/* Kernel-internal filesystems: no blocks to report, and a statvfs on autofs would mount it. */
static const char *const pseudo_fs[] = {
    "proc",      "sysfs",       "cgroup", "cgroup2",    "devpts",   "mqueue",    "debugfs",
    "tracefs",   "securityfs",  "pstore", "bpf",        "autofs",   "configfs",  "fusectl",
    "hugetlbfs", "binfmt_misc", "nsfs",   "rpc_pipefs", "efivarfs", "selinuxfs", "ramfs",
};

/* One reported mount; the strings point into the mountinfo read buffer. */
struct mount_usage {
    const char *path, *device, *fstype;
    int read_only;
    struct statvfs st;
};

struct disk_ctx {
    const struct disk_options *opts;
    char rootfs[PATH_MAX];
    struct procfile mountinfo;
    struct mount_usage *mounts;
    size_t nmounts, cap;
    int failing;
};

static int in_list(const struct dsf_strlist *l, const char *s)
{
    for (size_t i = 0; i < l->count; i++)
        if (strcmp(l->items[i], s) == 0)
            return 1;
    return 0;
}

static int is_pseudo_fs(const char *fstype)
{
    for (size_t i = 0; i < sizeof(pseudo_fs) / sizeof(pseudo_fs[0]); i++)
        if (strcmp(pseudo_fs[i], fstype) == 0)
            return 1;
    return 0;
}

/* A later mount on the same path hides the earlier one, whether or not it is reported. */
static void forget_path(struct disk_ctx *c, const char *path)
{
    for (size_t i = 0; i < c->nmounts; i++) {
        if (strcmp(c->mounts[i].path, path) == 0) {
            memmove(&c->mounts[i], &c->mounts[i + 1], (c->nmounts - i - 1) * sizeof(c->mounts[0]));
            c->nmounts--;
            return;
        }
    }
}

static struct mount_usage *new_slot(struct disk_ctx *c)
{
    if (c->nmounts == c->cap) {
        size_t n = c->cap ? c->cap * 2 : 32;
        struct mount_usage *grown = realloc(c->mounts, n * sizeof(*grown));
        if (!grown)
            return NULL;
        c->mounts = grown;
        c->cap = n;
    }
    return &c->mounts[c->nmounts++];
}

/* Fields: id parent major:minor root mountpoint options [optional...] - fstype source
 * superoptions. */
static void parse_mount(struct disk_ctx *c, char *line)
{
    size_t n = procfile_split(&c->mountinfo, line, NULL);
    char **w = c->mountinfo.words;
    size_t sep = 6;
    while (sep < n && strcmp(w[sep], "-") != 0)
        sep++;
    if (sep + 2 >= n)
        return;
    char *path = w[4], *device = w[sep + 2];
    const char *fstype = w[sep + 1];
    mountinfo_unescape(path);
    mountinfo_unescape(device);
    forget_path(c, path);
    if (is_pseudo_fs(fstype) || in_list(&c->opts->ignore_fs, fstype))
        return;
    if (c->opts->mount_points.count && !in_list(&c->opts->mount_points, path))
        return;

    char full[PATH_MAX];
    struct statvfs st;
    if ((size_t)snprintf(full, sizeof(full), "%s%s", c->rootfs, path) >= sizeof(full) ||
        statvfs(full, &st)) {
        log_debug("statvfs %s: %s", full, strerror(errno));
        return;
    }
    if (st.f_blocks == 0)
        return; /* a pseudo filesystem not in the list: nothing to report */
    struct mount_usage *m = new_slot(c);
    if (!m)
        return;
    int read_only =
        mount_has_option(w[5], "ro") || (sep + 3 < n && mount_has_option(w[sep + 3], "ro"));
    *m = (struct mount_usage){path, device, fstype, read_only, st};
}

static void emit_disk(const struct mount_usage *m, struct dsf_batch *out, int64_t now_ns)
{
    const unsigned long long bsize = m->st.f_bsize;
    unsigned long long total = m->st.f_blocks * bsize;
    unsigned long long free = m->st.f_bavail * bsize;
    unsigned long long used = (m->st.f_blocks - m->st.f_bfree) * bsize;
    unsigned long long inodes_used =
        m->st.f_files > m->st.f_ffree ? m->st.f_files - m->st.f_ffree : 0;
    const char *device = strncmp(m->device, "/dev/", 5) == 0 ? m->device + 5 : m->device;

    batch_begin(out, "disk", now_ns);
    batch_tag(out, "path", m->path);
    batch_tag(out, "device", device);
    batch_tag(out, "fstype", m->fstype);
    batch_tag(out, "mode", m->read_only ? "ro" : "rw");
    batch_field_i(out, "total", (int64_t)total);
    batch_field_i(out, "free", (int64_t)free);
    batch_field_i(out, "used", (int64_t)used);
    /* against used + free, not total: the blocks reserved for root are neither */
    batch_field_f(out, "used_percent",
                  used + free ? 100.0 * (double)used / (double)(used + free) : 0);
    batch_field_i(out, "inodes_total", (int64_t)m->st.f_files);
    batch_field_i(out, "inodes_free", (int64_t)m->st.f_ffree);
    batch_field_i(out, "inodes_used", (int64_t)inodes_used);
    batch_end(out);
}

static int disk_collect(void *ctx, struct dsf_batch *out, int64_t now_ns)
{
    struct disk_ctx *c = ctx;
    c->nmounts = 0;
    if (procfile_read(&c->mountinfo))
        return procfile_read_failed(DSF_MODULE, c->mountinfo.path, &c->failing);
    c->failing = 0;
    char *line;
    while ((line = procfile_next_line(&c->mountinfo)))
        parse_mount(c, line);
    for (size_t i = 0; i < c->nmounts; i++)
        emit_disk(&c->mounts[i], out, now_ns);
    return 0;
}

static void disk_prom(void *ctx, struct dsf_buf *out)
{
    const struct disk_ctx *c = ctx;
    static const struct {
        const char *name, *help;
    } families[] = {
        {"node_filesystem_size_bytes", "Filesystem size in bytes."},
        {"node_filesystem_free_bytes", "Filesystem free space in bytes."},
        {"node_filesystem_avail_bytes", "Filesystem space available to non-root users in bytes."},
        {"node_filesystem_files", "Filesystem total file nodes."},
        {"node_filesystem_files_free", "Filesystem total free file nodes."},
        {"node_filesystem_readonly", "Filesystem read-only status."},
    };
    if (!c->nmounts)
        return;
    for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
        prom_family(out, families[f].name, "gauge", families[f].help);
        for (size_t i = 0; i < c->nmounts; i++) {
            const struct mount_usage *m = &c->mounts[i];
            const double bsize = (double)m->st.f_bsize;
            const double values[] = {(double)m->st.f_blocks * bsize, (double)m->st.f_bfree * bsize,
                                     (double)m->st.f_bavail * bsize, (double)m->st.f_files,
                                     (double)m->st.f_ffree,          m->read_only};
            prom_labeled_sample(out, families[f].name, values[f], "device", m->device, "fstype",
                                m->fstype, "mountpoint", m->path, NULL);
        }
    }
}

static void disk_fini(void *ctx)
{
    struct disk_ctx *c = ctx;
    if (!c)
        return;
    procfile_close(&c->mountinfo);
    free(c->mounts);
    free(c);
}

static int disk_init(void **ctx, const void *options, const struct dsf_input_env *env, char *err,
                     size_t errlen)
{
    struct disk_ctx *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->opts = options;
    const char *rootfs = env->rootfs ? env->rootfs : "";
    snprintf(c->rootfs, sizeof(c->rootfs), "%s", rootfs);
    /* Inside a container, the agent's own mounts are the container's: pid 1 of the host's
     * proc shows the host's. Their paths are then the host's, found under host.rootfs. */
    int foreign = host_proc_is_foreign(env);
    if (foreign && !*rootfs)
        log_warn("host.proc %s is not this process's /proc but host.rootfs is empty: the "
                 "host's mount points are looked up in the agent's own file system",
                 env->proc);
    procfile_init(&c->mountinfo, "%s/%s/mountinfo", env->proc, foreign || *rootfs ? "1" : "self");
    if (procfile_first_read(&c->mountinfo, err, errlen)) {
        disk_fini(c);
        return -1;
    }
    *ctx = c;
    return 0;
}

const struct dsf_input dsf_input_disk = {
    .name = "disk",
    .options = disk_option_keys,
    .options_size = sizeof(struct disk_options),
    .init = disk_init,
    .collect = disk_collect,
    .prom = disk_prom,
    .fini = disk_fini,
};
