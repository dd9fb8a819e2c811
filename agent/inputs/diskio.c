/*
 * diskio: the block device counters of /proc/diskstats as Telegraf's diskio measurement and
 * node_exporter's node_disk_* counters.
 */
#define DSF_MODULE "diskio"
#include "common/log.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "agent/input.h"
#include "agent/procfile.h"
#include "common/metrics.h"

struct diskio_options {
    int enabled;
    struct dsf_strlist devices;
    struct dsf_strlist ignore_devices;
};

static const struct dsf_cfg_key diskio_option_keys[] = {
    {"enabled", DSF_CFG_BOOL, "true", offsetof(struct diskio_options, enabled),
     "collect block device counters from /proc/diskstats", 0, 0},
    {"devices", DSF_CFG_STRLIST, NULL, offsetof(struct diskio_options, devices),
     "report only devices matching these shell patterns, e.g. sd*,nvme* (empty: all)", 0, 0},
    {"ignore_devices", DSF_CFG_STRLIST, "loop*,ram*",
     offsetof(struct diskio_options, ignore_devices),
     "devices matching these shell patterns are not reported", 0, 0},
    DSF_CFG_END,
};

/* The counters after major, minor and name in /proc/diskstats, in order. */
enum diskstat {
    DS_READS,
    DS_MERGED_READS,
    DS_SECTORS_READ,
    DS_READ_TIME_MS,
    DS_WRITES,
    DS_MERGED_WRITES,
    DS_SECTORS_WRITTEN,
    DS_WRITE_TIME_MS,
    DS_IN_PROGRESS,
    DS_IO_TIME_MS,
    DS_WEIGHTED_IO_TIME_MS,
    DS_NSTATS
};

/* /proc/diskstats counts sectors of 512 bytes whatever the device's own sector size. */
#define SECTOR_BYTES 512

struct disk_counters {
    char name[64];
    unsigned long long v[DS_NSTATS];
};

struct diskio_ctx {
    const struct diskio_options *opts;
    struct procfile diskstats;
    struct disk_counters *disks;
    size_t ndisks, cap;
    int failing;
};

static int matches_any(const struct dsf_strlist *patterns, const char *name)
{
    for (size_t i = 0; i < patterns->count; i++)
        if (fnmatch(patterns->items[i], name, 0) == 0)
            return 1;
    return 0;
}

static int wanted(const struct diskio_options *o, const char *name)
{
    if (o->devices.count && !matches_any(&o->devices, name))
        return 0;
    return !matches_any(&o->ignore_devices, name);
}

static struct disk_counters *new_disk(struct diskio_ctx *c)
{
    if (c->ndisks == c->cap) {
        size_t n = c->cap ? c->cap * 2 : 16;
        struct disk_counters *grown = realloc(c->disks, n * sizeof(*grown));
        if (!grown)
            return NULL;
        c->disks = grown;
        c->cap = n;
    }
    return &c->disks[c->ndisks++];
}

static void parse_diskstats_line(struct diskio_ctx *c, char *line)
{
    size_t n = procfile_split(&c->diskstats, line, NULL);
    char **w = c->diskstats.words;
    if (n < 3 + DS_NSTATS || strlen(w[2]) >= sizeof(c->disks[0].name) || !wanted(c->opts, w[2]))
        return;
    struct disk_counters *d = new_disk(c);
    if (!d)
        return;
    snprintf(d->name, sizeof(d->name), "%s", w[2]);
    for (int i = 0; i < DS_NSTATS; i++)
        d->v[i] = strtoull(w[3 + i], NULL, 10);
}

static void emit_diskio(const struct disk_counters *d, struct dsf_batch *out, int64_t now_ns)
{
    batch_begin(out, "diskio", now_ns);
    batch_tag(out, "name", d->name);
    batch_field_i(out, "reads", (int64_t)d->v[DS_READS]);
    batch_field_i(out, "writes", (int64_t)d->v[DS_WRITES]);
    batch_field_i(out, "read_bytes", (int64_t)(d->v[DS_SECTORS_READ] * SECTOR_BYTES));
    batch_field_i(out, "write_bytes", (int64_t)(d->v[DS_SECTORS_WRITTEN] * SECTOR_BYTES));
    batch_field_i(out, "read_time", (int64_t)d->v[DS_READ_TIME_MS]);
    batch_field_i(out, "write_time", (int64_t)d->v[DS_WRITE_TIME_MS]);
    batch_field_i(out, "io_time", (int64_t)d->v[DS_IO_TIME_MS]);
    batch_field_i(out, "weighted_io_time", (int64_t)d->v[DS_WEIGHTED_IO_TIME_MS]);
    batch_field_i(out, "iops_in_progress", (int64_t)d->v[DS_IN_PROGRESS]);
    batch_field_i(out, "merged_reads", (int64_t)d->v[DS_MERGED_READS]);
    batch_field_i(out, "merged_writes", (int64_t)d->v[DS_MERGED_WRITES]);
    batch_end(out);
}

static int diskio_collect(void *ctx, struct dsf_batch *out, int64_t now_ns)
{
    struct diskio_ctx *c = ctx;
    c->ndisks = 0;
    if (procfile_read(&c->diskstats))
        return procfile_read_failed(DSF_MODULE, c->diskstats.path, &c->failing);
    c->failing = 0;
    char *line;
    while ((line = procfile_next_line(&c->diskstats)))
        parse_diskstats_line(c, line);
    for (size_t i = 0; i < c->ndisks; i++)
        emit_diskio(&c->disks[i], out, now_ns);
    return 0;
}

static void diskio_prom(void *ctx, struct dsf_buf *out)
{
    const struct diskio_ctx *c = ctx;
    static const struct {
        const char *name, *type, *help;
        enum diskstat stat;
        double scale;
    } families[] = {
        {"node_disk_reads_completed_total", "counter",
         "The total number of reads completed successfully.", DS_READS, 1},
        {"node_disk_reads_merged_total", "counter", "The total number of reads merged.",
         DS_MERGED_READS, 1},
        {"node_disk_read_bytes_total", "counter", "The total number of bytes read successfully.",
         DS_SECTORS_READ, SECTOR_BYTES},
        {"node_disk_read_time_seconds_total", "counter",
         "The total number of seconds spent by all reads.", DS_READ_TIME_MS, 0.001},
        {"node_disk_writes_completed_total", "counter",
         "The total number of writes completed successfully.", DS_WRITES, 1},
        {"node_disk_writes_merged_total", "counter", "The number of writes merged.",
         DS_MERGED_WRITES, 1},
        {"node_disk_written_bytes_total", "counter",
         "The total number of bytes written successfully.", DS_SECTORS_WRITTEN, SECTOR_BYTES},
        {"node_disk_write_time_seconds_total", "counter",
         "This is the total number of seconds spent by all writes.", DS_WRITE_TIME_MS, 0.001},
        {"node_disk_io_now", "gauge", "The number of I/Os currently in progress.", DS_IN_PROGRESS,
         1},
        {"node_disk_io_time_seconds_total", "counter", "Total seconds spent doing I/Os.",
         DS_IO_TIME_MS, 0.001},
        {"node_disk_io_time_weighted_seconds_total", "counter",
         "The weighted # of seconds spent doing I/Os.", DS_WEIGHTED_IO_TIME_MS, 0.001},
    };
    if (!c->ndisks)
        return;
    for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
        prom_family(out, families[f].name, families[f].type, families[f].help);
        for (size_t i = 0; i < c->ndisks; i++)
            prom_labeled_sample(out, families[f].name,
                                (double)c->disks[i].v[families[f].stat] * families[f].scale,
                                "device", c->disks[i].name, NULL);
    }
}

static void diskio_fini(void *ctx)
{
    struct diskio_ctx *c = ctx;
    if (!c)
        return;
    procfile_close(&c->diskstats);
    free(c->disks);
    free(c);
}

static int diskio_init(void **ctx, const void *options, const struct dsf_input_env *env, char *err,
                       size_t errlen)
{
    struct diskio_ctx *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->opts = options;
    procfile_init(&c->diskstats, "%s/diskstats", env->proc);
    if (procfile_first_read(&c->diskstats, err, errlen)) {
        diskio_fini(c);
        return -1;
    }
    *ctx = c;
    return 0;
}

const struct dsf_input dsf_input_diskio = {
    .name = "diskio",
    .options = diskio_option_keys,
    .options_size = sizeof(struct diskio_options),
    .init = diskio_init,
    .collect = diskio_collect,
    .prom = diskio_prom,
    .fini = diskio_fini,
};
