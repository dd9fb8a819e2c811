/*
 * swap: sizes from /proc/meminfo and the bytes swapped in and out since boot from
 * /proc/vmstat, as Telegraf's swap measurement. The sizes are already node_memory_Swap*
 * gauges of the mem input; the pages swapped are node_exporter's node_vmstat_pswp*.
 */
#define DSF_MODULE "swap"
#include "common/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/input.h"
#include "agent/procfile.h"
#include "common/metrics.h"

struct swap_options {
    int enabled;
};

static const struct dsf_cfg_key swap_option_keys[] = {
    {"enabled", DSF_CFG_BOOL, "true", offsetof(struct swap_options, enabled),
     "collect swap usage from /proc/meminfo and /proc/vmstat", 0, 0},
    DSF_CFG_END,
};

struct swap_ctx {
    struct procfile meminfo, vmstat;
    unsigned long long page_size;
    unsigned long long pages_in, pages_out; /* last readings, for prom */
    int have_reading;
    int failing;
};

static int read_failed(struct swap_ctx *c, const struct procfile *pf, const char *what)
{
    if (!c->failing)
        log_warn("cannot read %s from %s: %s; check that the proc root is mounted and readable",
                 what, pf->path, errno ? strerror(errno) : "key missing");
    c->failing = 1;
    c->have_reading = 0;
    return -1;
}

static int swap_collect(void *ctx, struct dsf_batch *out, int64_t now_ns)
{
    struct swap_ctx *c = ctx;
    unsigned long long total_kb, free_kb;
    errno = 0;
    if (procfile_read(&c->meminfo) || procfile_find_u64(&c->meminfo, "SwapTotal", &total_kb) ||
        procfile_find_u64(&c->meminfo, "SwapFree", &free_kb))
        return read_failed(c, &c->meminfo, "SwapTotal and SwapFree");
    errno = 0;
    if (procfile_read(&c->vmstat) || procfile_find_u64(&c->vmstat, "pswpin", &c->pages_in) ||
        procfile_find_u64(&c->vmstat, "pswpout", &c->pages_out))
        return read_failed(c, &c->vmstat, "pswpin and pswpout");
    c->failing = 0;
    c->have_reading = 1;

    unsigned long long total = total_kb * 1024, free = free_kb * 1024;
    unsigned long long used = total > free ? total - free : 0;
    batch_begin(out, "swap", now_ns);
    batch_field_i(out, "total", (int64_t)total);
    batch_field_i(out, "used", (int64_t)used);
    batch_field_i(out, "free", (int64_t)free);
    batch_field_f(out, "used_percent", total ? 100.0 * (double)used / (double)total : 0);
    batch_field_i(out, "in", (int64_t)(c->pages_in * c->page_size));
    batch_field_i(out, "out", (int64_t)(c->pages_out * c->page_size));
    batch_end(out);
    return 0;
}

static void swap_prom(void *ctx, struct dsf_buf *out)
{
    const struct swap_ctx *c = ctx;
    if (!c->have_reading)
        return;
    /* node_exporter exports /proc/vmstat untyped, under the kernel's names */
    prom_family(out, "node_vmstat_pswpin", "untyped", "/proc/vmstat information field pswpin.");
    prom_labeled_sample(out, "node_vmstat_pswpin", (double)c->pages_in, NULL);
    prom_family(out, "node_vmstat_pswpout", "untyped", "/proc/vmstat information field pswpout.");
    prom_labeled_sample(out, "node_vmstat_pswpout", (double)c->pages_out, NULL);
}

static void swap_fini(void *ctx)
{
    struct swap_ctx *c = ctx;
    if (!c)
        return;
    procfile_close(&c->meminfo);
    procfile_close(&c->vmstat);
    free(c);
}

static int swap_init(void **ctx, const void *options, const struct dsf_input_env *env, char *err,
                     size_t errlen)
{
    struct swap_ctx *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    long page = sysconf(_SC_PAGESIZE);
    c->page_size = page > 0 ? (unsigned long long)page : 4096;
    procfile_init(&c->meminfo, "%s/meminfo", env->proc);
    procfile_init(&c->vmstat, "%s/vmstat", env->proc);
    struct procfile *missing = NULL;
    if (procfile_read(&c->meminfo))
        missing = &c->meminfo;
    else if (procfile_read(&c->vmstat))
        missing = &c->vmstat;
    if (missing) {
        procfile_cannot_read(missing->path, err, errlen);
        swap_fini(c);
        return -1;
    }
    *ctx = c;
    return 0;
}

const struct dsf_input dsf_input_swap = {
    .name = "swap",
    .options = swap_option_keys,
    .options_size = sizeof(struct swap_options),
    .init = swap_init,
    .collect = swap_collect,
    .prom = swap_prom,
    .fini = swap_fini,
};
