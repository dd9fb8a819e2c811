/*
 * mem: /proc/meminfo as Telegraf's mem measurement, and every meminfo key as node_exporter's
 * node_memory_<Key>[_bytes] gauges.
 */
#define DSF_MODULE "mem"
#include "common/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/input.h"
#include "agent/procfile.h"
#include "common/metrics.h"

struct mem_options {
    int enabled;
};

static const struct dsf_cfg_key mem_option_keys[] = {
    {"enabled", DSF_CFG_BOOL, "true", offsetof(struct mem_options, enabled),
     "collect memory usage from /proc/meminfo", 0, 0},
    DSF_CFG_END,
};

/* Telegraf fields that are a meminfo value as is (in bytes, or a count for huge pages). */
static const struct {
    const char *key, *field;
} direct_fields[] = {
    {"MemTotal", "total"},
    {"MemFree", "free"},
    {"Buffers", "buffered"},
    {"Active", "active"},
    {"Inactive", "inactive"},
    {"Shmem", "shared"},
    {"Slab", "slab"},
    {"SReclaimable", "sreclaimable"},
    {"SUnreclaim", "sunreclaim"},
    {"Dirty", "dirty"},
    {"Writeback", "write_back"},
    {"WritebackTmp", "write_back_tmp"},
    {"Mapped", "mapped"},
    {"PageTables", "page_tables"},
    {"SwapCached", "swap_cached"},
    {"SwapTotal", "swap_total"},
    {"SwapFree", "swap_free"},
    {"CommitLimit", "commit_limit"},
    {"Committed_AS", "committed_as"},
    {"VmallocTotal", "vmalloc_total"},
    {"VmallocUsed", "vmalloc_used"},
    {"VmallocChunk", "vmalloc_chunk"},
    {"HighTotal", "high_total"},
    {"HighFree", "high_free"},
    {"LowTotal", "low_total"},
    {"LowFree", "low_free"},
    {"HugePages_Total", "huge_pages_total"},
    {"HugePages_Free", "huge_pages_free"},
    {"Hugepagesize", "huge_page_size"},
};

/* One meminfo line of the last read; key points into the read buffer. */
struct meminfo_entry {
    const char *key;
    unsigned long long value; /* bytes when in_bytes, else a count */
    int in_bytes;
};

struct mem_ctx {
    struct procfile meminfo;
    struct meminfo_entry *entries;
    size_t nentries, cap;
    int failing;
};

static int add_entry(struct mem_ctx *c, const char *key, unsigned long long value, int in_bytes)
{
    if (c->nentries == c->cap) {
        size_t n = c->cap ? c->cap * 2 : 64;
        struct meminfo_entry *grown = realloc(c->entries, n * sizeof(*grown));
        if (!grown)
            return -1;
        c->entries = grown;
        c->cap = n;
    }
    c->entries[c->nentries++] = (struct meminfo_entry){key, value, in_bytes};
    return 0;
}

/* "MemTotal:       16318412 kB" and "HugePages_Total:       0" */
static int parse_meminfo(struct mem_ctx *c)
{
    c->nentries = 0;
    char *line;
    while ((line = procfile_next_line(&c->meminfo))) {
        if (procfile_split(&c->meminfo, line, ":") < 2)
            continue;
        char **w = c->meminfo.words;
        int in_bytes = c->meminfo.nwords >= 3 && strcmp(w[2], "kB") == 0;
        unsigned long long v = strtoull(w[1], NULL, 10);
        if (add_entry(c, w[0], in_bytes ? v * 1024 : v, in_bytes))
            return -1;
    }
    return 0;
}

static int meminfo_value(const struct mem_ctx *c, const char *key, unsigned long long *out)
{
    for (size_t i = 0; i < c->nentries; i++) {
        if (strcmp(c->entries[i].key, key) == 0) {
            *out = c->entries[i].value;
            return 0;
        }
    }
    *out = 0;
    return -1;
}

static unsigned long long meminfo_or_zero(const struct mem_ctx *c, const char *key)
{
    unsigned long long v;
    meminfo_value(c, key, &v);
    return v;
}

static unsigned long long available_bytes(const struct mem_ctx *c)
{
    unsigned long long v;
    if (meminfo_value(c, "MemAvailable", &v) == 0)
        return v;
    /* kernels before 3.14 have no MemAvailable: approximate it as Telegraf's library does */
    return meminfo_or_zero(c, "MemFree") + meminfo_or_zero(c, "Buffers") +
           meminfo_or_zero(c, "Cached");
}

static void emit_mem(const struct mem_ctx *c, struct dsf_batch *out, int64_t now_ns)
{
    unsigned long long total = meminfo_or_zero(c, "MemTotal");
    unsigned long long available = available_bytes(c);
    unsigned long long used = total > available ? total - available : 0;

    batch_begin(out, "mem", now_ns);
    for (size_t i = 0; i < sizeof(direct_fields) / sizeof(direct_fields[0]); i++)
        batch_field_i(out, direct_fields[i].field,
                      (int64_t)meminfo_or_zero(c, direct_fields[i].key));
    batch_field_i(out, "available", (int64_t)available);
    batch_field_i(out, "used", (int64_t)used);
    /* reclaimable slab is cache the kernel gives back under pressure, as Telegraf counts it */
    batch_field_i(out, "cached",
                  (int64_t)(meminfo_or_zero(c, "Cached") + meminfo_or_zero(c, "SReclaimable")));
    batch_field_f(out, "used_percent", total ? 100.0 * (double)used / (double)total : 0);
    batch_field_f(out, "available_percent", total ? 100.0 * (double)available / (double)total : 0);
    batch_end(out);
}

static int mem_collect(void *ctx, struct dsf_batch *out, int64_t now_ns)
{
    struct mem_ctx *c = ctx;
    if (procfile_read(&c->meminfo) || parse_meminfo(c)) {
        c->nentries = 0;
        return procfile_read_failed(DSF_MODULE, c->meminfo.path, &c->failing);
    }
    c->failing = 0;
    emit_mem(c, out, now_ns);
    return 0;
}

/* node_exporter's naming: "Active(anon)" becomes "Active_anon"; values with a unit get
 * "_bytes". */
static void prom_memory_name(const struct meminfo_entry *e, char *name, size_t cap)
{
    size_t n = (size_t)snprintf(name, cap, "node_memory_");
    for (const char *k = e->key; *k && n + 1 < cap; k++) {
        if (*k == ')')
            continue;
        int valid = (*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') ||
                    (*k >= '0' && *k <= '9') || *k == '_';
        name[n++] = valid ? *k : '_';
    }
    name[n] = '\0';
    if (e->in_bytes)
        snprintf(name + n, cap - n, "_bytes");
}

static void mem_prom(void *ctx, struct dsf_buf *out)
{
    const struct mem_ctx *c = ctx;
    for (size_t i = 0; i < c->nentries; i++) {
        const struct meminfo_entry *e = &c->entries[i];
        char name[128], help[160];
        prom_memory_name(e, name, sizeof(name));
        snprintf(help, sizeof(help), "Memory information field %s.", name + strlen("node_memory_"));
        prom_family(out, name, "gauge", help);
        prom_labeled_sample(out, name, (double)e->value, NULL);
    }
}

static void mem_fini(void *ctx)
{
    struct mem_ctx *c = ctx;
    if (!c)
        return;
    procfile_close(&c->meminfo);
    free(c->entries);
    free(c);
}

static int mem_init(void **ctx, const void *options, const struct dsf_input_env *env, char *err,
                    size_t errlen)
{
    struct mem_ctx *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    procfile_init(&c->meminfo, "%s/meminfo", env->proc);
    if (procfile_first_read(&c->meminfo, err, errlen)) {
        mem_fini(c);
        return -1;
    }
    *ctx = c;
    return 0;
}

const struct dsf_input dsf_input_mem = {
    .name = "mem",
    .options = mem_option_keys,
    .options_size = sizeof(struct mem_options),
    .init = mem_init,
    .collect = mem_collect,
    .prom = mem_prom,
    .fini = mem_fini,
};
