/*
 * The host inputs against the machine the tests run on: each value is checked against the
 * same /proc file read independently, or against libc, and every input's Prometheus text
 * goes through promtool.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/input.h"
#include "common/config.h"
#include "common/point.h"

extern const struct dsf_input dsf_input_cpu, dsf_input_mem, dsf_input_swap, dsf_input_disk,
    dsf_input_diskio, dsf_input_net, dsf_input_system, dsf_input_processes;

static const struct dsf_input *const host_inputs[] = {
    &dsf_input_cpu,    &dsf_input_mem, &dsf_input_swap,   &dsf_input_disk,
    &dsf_input_diskio, &dsf_input_net, &dsf_input_system, &dsf_input_processes,
};
#define NINPUTS (sizeof(host_inputs) / sizeof(host_inputs[0]))

/* Counts the project's own allocations (the libraries are linked with --wrap). */
static size_t allocations;
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n)
{
    allocations++;
    return __real_malloc(n);
}
void *__wrap_calloc(size_t n, size_t size)
{
    allocations++;
    return __real_calloc(n, size);
}
void *__wrap_realloc(void *p, size_t n)
{
    allocations++;
    return __real_realloc(p, n);
}

struct running {
    const struct dsf_input *def;
    char prefix[64];
    struct dsf_cfg_section sections[2];
    void *options;
    void *ctx;
    struct dsf_batch batch;
};

static const struct dsf_input_env host_env = {"/proc", "/sys", "", 2000};

/* Options are the defaults plus "key=value" overrides, as --set would give them. */
static void start(struct running *r, const struct dsf_input *def, const char *const *overrides)
{
    char err[DSF_CFG_ERRLEN];
    memset(r, 0, sizeof(*r));
    r->def = def;
    snprintf(r->prefix, sizeof(r->prefix), "inputs.%s", def->name);
    r->options = calloc(1, def->options_size);
    assert_non_null(r->options);
    r->sections[0] = (struct dsf_cfg_section){r->prefix, def->options, r->options, NULL};
    assert_int_equal(dsf_cfg_defaults(r->sections, err, sizeof(err)), 0);
    assert_int_equal(*(int *)r->options, 1); /* enabled by default */
    for (; overrides && *overrides; overrides++) {
        char assignment[256];
        snprintf(assignment, sizeof(assignment), "%s.%s", r->prefix, *overrides);
        if (dsf_cfg_set(r->sections, assignment, "test", err, sizeof(err)))
            fail_msg("%s", err);
    }
    if (def->init(&r->ctx, r->options, &host_env, err, sizeof(err)))
        fail_msg("%s init: %s", def->name, err);
}

static void collect(struct running *r)
{
    batch_reset(&r->batch);
    assert_int_equal(r->def->collect(r->ctx, &r->batch, 1000000000LL), 0);
}

static void stop(struct running *r)
{
    r->def->fini(r->ctx);
    dsf_cfg_free(r->sections);
    free(r->options);
    batch_free(&r->batch);
}

static const char *tag_of(const struct dsf_batch *b, const struct dsf_point *p, const char *key)
{
    for (uint32_t i = 0; i < p->ntags; i++)
        if (strcmp(batch_str(b, b->tags[p->tag0 + i].key), key) == 0)
            return batch_str(b, b->tags[p->tag0 + i].val);
    return NULL;
}

/* The point of this measurement whose tag has this value (any point when tag_key is NULL). */
static const struct dsf_point *find_point(const struct dsf_batch *b, const char *name,
                                          const char *tag_key, const char *tag_val)
{
    for (size_t i = 0; i < b->npoints; i++) {
        const struct dsf_point *p = &b->points[i];
        if (strcmp(batch_str(b, p->name), name) != 0)
            continue;
        const char *v = tag_key ? tag_of(b, p, tag_key) : NULL;
        if (!tag_key || (v && strcmp(v, tag_val) == 0))
            return p;
    }
    return NULL;
}

static const struct dsf_field *find_field(const struct dsf_batch *b, const struct dsf_point *p,
                                          const char *key)
{
    for (uint32_t i = 0; i < p->nfields; i++)
        if (strcmp(batch_str(b, b->fields[p->field0 + i].key), key) == 0)
            return &b->fields[p->field0 + i];
    return NULL;
}

static int64_t int_field(const struct dsf_batch *b, const struct dsf_point *p, const char *key)
{
    const struct dsf_field *f = find_field(b, p, key);
    if (!f)
        fail_msg("field %s missing", key);
    assert_int_equal(f->type, DSF_V_INT);
    return f->v.i;
}

static double float_field(const struct dsf_batch *b, const struct dsf_point *p, const char *key)
{
    const struct dsf_field *f = find_field(b, p, key);
    if (!f)
        fail_msg("field %s missing", key);
    assert_int_equal(f->type, DSF_V_FLOAT);
    return f->v.f;
}

/* A "Key: value" line of a /proc file, read with stdio rather than the agent's reader. */
static long long proc_value(const char *path, const char *key)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[512];
    long long v = -1;
    size_t n = strlen(key);
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, key, n) == 0 && (line[n] == ':' || line[n] == ' '))
            v = atoll(line + n + 1);
    fclose(f);
    if (v < 0)
        fail_msg("%s has no %s", path, key);
    return v;
}

static long long lo_bytes_received(void)
{
    FILE *f = fopen("/proc/net/dev", "r");
    assert_non_null(f);
    char line[512];
    long long v = -1;
    while (fgets(line, sizeof(line), f)) {
        char name[32];
        long long bytes;
        if (sscanf(line, " %31[^:]: %lld", name, &bytes) == 2 && strcmp(name, "lo") == 0)
            v = bytes;
    }
    fclose(f);
    return v;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void cpu_usage_appears_on_second_collection_and_sums_to_100(void **state)
{
    struct running r;
    start(&r, &dsf_input_cpu, NULL);
    collect(&r);
    assert_null(find_point(&r.batch, "cpu", NULL, NULL));

    sleep_ms(300);
    collect(&r);
    const struct dsf_point *total = find_point(&r.batch, "cpu", "cpu", "cpu-total");
    assert_non_null(total);
    static const char *const fields[] = {
        "usage_user", "usage_system",  "usage_idle",  "usage_nice",  "usage_iowait",
        "usage_irq",  "usage_softirq", "usage_steal", "usage_guest", "usage_guest_nice",
    };
    double sum = 0;
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        sum += float_field(&r.batch, total, fields[i]);
    assert_true(sum > 99.5 && sum < 100.5);
    assert_non_null(find_point(&r.batch, "cpu", "cpu", "cpu0"));
    stop(&r);
}

static void cpu_total_and_percpu_can_be_turned_off(void **state)
{
    struct running r;
    start(&r, &dsf_input_cpu, (const char *const[]){"totalcpu=false", NULL});
    collect(&r);
    sleep_ms(300);
    collect(&r);
    assert_null(find_point(&r.batch, "cpu", "cpu", "cpu-total"));
    assert_non_null(find_point(&r.batch, "cpu", "cpu", "cpu0"));
    stop(&r);

    start(&r, &dsf_input_cpu, (const char *const[]){"percpu=false", NULL});
    collect(&r);
    sleep_ms(300);
    collect(&r);
    assert_non_null(find_point(&r.batch, "cpu", "cpu", "cpu-total"));
    assert_null(find_point(&r.batch, "cpu", "cpu", "cpu0"));
    stop(&r);
}

static void mem_total_matches_meminfo(void **state)
{
    struct running r;
    start(&r, &dsf_input_mem, NULL);
    collect(&r);
    const struct dsf_point *p = find_point(&r.batch, "mem", NULL, NULL);
    assert_non_null(p);
    int64_t total = int_field(&r.batch, p, "total");
    assert_int_equal(total, proc_value("/proc/meminfo", "MemTotal") * 1024);
    assert_int_equal(int_field(&r.batch, p, "used") + int_field(&r.batch, p, "available"), total);
    assert_true(int_field(&r.batch, p, "cached") >= 0);
    double used_pct = float_field(&r.batch, p, "used_percent");
    double avail_pct = float_field(&r.batch, p, "available_percent");
    assert_true(used_pct > 0 && used_pct < 100);
    assert_true(used_pct + avail_pct > 99.99 && used_pct + avail_pct < 100.01);
    stop(&r);
}

static void swap_matches_meminfo(void **state)
{
    struct running r;
    start(&r, &dsf_input_swap, NULL);
    long long pages_in_before = proc_value("/proc/vmstat", "pswpin");
    collect(&r);
    long long pages_in_after = proc_value("/proc/vmstat", "pswpin");
    const struct dsf_point *p = find_point(&r.batch, "swap", NULL, NULL);
    assert_non_null(p);
    int64_t total = int_field(&r.batch, p, "total");
    assert_int_equal(total, proc_value("/proc/meminfo", "SwapTotal") * 1024);
    assert_int_equal(int_field(&r.batch, p, "used") + int_field(&r.batch, p, "free"), total);
    int64_t bytes_in = int_field(&r.batch, p, "in");
    assert_true(bytes_in >= pages_in_before * sysconf(_SC_PAGESIZE) &&
                bytes_in <= pages_in_after * sysconf(_SC_PAGESIZE));
    assert_true(int_field(&r.batch, p, "out") >= 0);
    float_field(&r.batch, p, "used_percent");
    stop(&r);
}

static void disk_reports_root_with_consistent_sizes(void **state)
{
    struct running r;
    /* with no type ignored, "/" is reported even where it is an overlay (containers) */
    start(&r, &dsf_input_disk, (const char *const[]){"ignore_fs=", NULL});
    collect(&r);
    const struct dsf_point *root = find_point(&r.batch, "disk", "path", "/");
    assert_non_null(root);
    int64_t total = int_field(&r.batch, root, "total");
    assert_true(total > 0);
    assert_true(int_field(&r.batch, root, "used") + int_field(&r.batch, root, "free") <= total);
    assert_true(int_field(&r.batch, root, "inodes_used") <=
                int_field(&r.batch, root, "inodes_total"));
    const char *mode = tag_of(&r.batch, root, "mode");
    assert_non_null(mode);
    assert_true(strcmp(mode, "rw") == 0 || strcmp(mode, "ro") == 0);
    assert_non_null(tag_of(&r.batch, root, "fstype"));
    assert_null(find_point(&r.batch, "disk", "fstype", "proc"));
    assert_null(find_point(&r.batch, "disk", "fstype", "sysfs"));
    stop(&r);

    start(&r, &dsf_input_disk, NULL);
    collect(&r);
    assert_null(find_point(&r.batch, "disk", "fstype", "tmpfs"));
    stop(&r);
}

static void diskio_skips_loop_devices(void **state)
{
    struct running r;
    start(&r, &dsf_input_diskio, NULL);
    collect(&r);
    for (size_t i = 0; i < r.batch.npoints; i++) {
        const char *name = tag_of(&r.batch, &r.batch.points[i], "name");
        assert_non_null(name);
        assert_true(strncmp(name, "loop", 4) != 0 && strncmp(name, "ram", 3) != 0);
        int_field(&r.batch, &r.batch.points[i], "read_bytes");
        int_field(&r.batch, &r.batch.points[i], "io_time");
    }
    stop(&r);
}

static void net_lo_bytes_match_proc_net_dev(void **state)
{
    struct running r;
    start(&r, &dsf_input_net, NULL);
    collect(&r);
    assert_null(find_point(&r.batch, "net", "interface", "lo"));
    stop(&r);

    start(&r, &dsf_input_net, (const char *const[]){"ignore_lo=false", NULL});
    long long before = lo_bytes_received();
    collect(&r);
    long long after = lo_bytes_received();
    const struct dsf_point *lo = find_point(&r.batch, "net", "interface", "lo");
    assert_non_null(lo);
    int64_t recv = int_field(&r.batch, lo, "bytes_recv");
    assert_true(recv >= before && recv <= after);
    int_field(&r.batch, lo, "drop_out");
    stop(&r);
}

static void system_counts_online_cpus(void **state)
{
    struct running r;
    start(&r, &dsf_input_system, NULL);
    collect(&r);
    const struct dsf_point *p = find_point(&r.batch, "system", NULL, NULL);
    assert_non_null(p);
    assert_int_equal(int_field(&r.batch, p, "n_cpus"), sysconf(_SC_NPROCESSORS_ONLN));
    assert_true(int_field(&r.batch, p, "n_users") >= 0);
    double uptime = 0;
    FILE *f = fopen("/proc/uptime", "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%lf", &uptime), 1);
    fclose(f);
    int64_t reported = int_field(&r.batch, p, "uptime");
    assert_true(reported > 0 && reported <= (int64_t)uptime && reported >= (int64_t)uptime - 2);
    assert_true(float_field(&r.batch, p, "load1") >= 0);
    stop(&r);
}

static void processes_counts_at_least_this_one(void **state)
{
    struct running r;
    start(&r, &dsf_input_processes, NULL);
    collect(&r);
    const struct dsf_point *p = find_point(&r.batch, "processes", NULL, NULL);
    assert_non_null(p);
    int64_t total = int_field(&r.batch, p, "total");
    assert_true(total >= 1);
    assert_true(int_field(&r.batch, p, "running") >= 1); /* this process, while it reads */
    assert_true(int_field(&r.batch, p, "total_threads") >= total);
    stop(&r);
}

/* InfluxDB 1.x has no unsigned integers: no input may produce one. */
static void no_input_writes_unsigned_fields(void **state)
{
    for (size_t i = 0; i < NINPUTS; i++) {
        struct running r;
        start(&r, host_inputs[i], NULL);
        collect(&r);
        sleep_ms(50);
        collect(&r);
        for (size_t f = 0; f < r.batch.nfields; f++)
            assert_int_not_equal(r.batch.fields[f].type, DSF_V_UINT);
        stop(&r);
    }
}

/* promtool flags node_exporter's own meminfo names (node_memory_MemTotal_bytes) as not
 * snake_case; that is the name users query, so only that remark is accepted. */
static void assert_promtool_accepts(const char *text, const char *input)
{
    if (system("command -v promtool >/dev/null 2>&1") != 0)
        skip();
    char in[] = "/tmp/dsf-prom-in-XXXXXX", report[] = "/tmp/dsf-prom-out-XXXXXX";
    int fd_in = mkstemp(in), fd_report = mkstemp(report);
    assert_true(fd_in >= 0 && fd_report >= 0);
    assert_int_equal(write(fd_in, text, strlen(text)), (ssize_t)strlen(text));
    close(fd_in);
    close(fd_report);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "promtool check metrics < %s > %s 2>&1", in, report);
    int status = system(cmd);
    assert_true(WIFEXITED(status));

    FILE *f = fopen(report, "r");
    assert_non_null(f);
    char line[512];
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "node_memory_", 12) != 0 || !strstr(line, "'camelCase'"))
            fail_msg("%s: promtool: %s", input, line);
    fclose(f);
    unlink(in);
    unlink(report);
    assert_true(WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 3); /* 3: remarks only */
}

/* promtool does not notice a series written twice; Prometheus rejects the scrape. */
static void assert_no_duplicate_series(const char *text, const char *input)
{
    const char *lines[4096];
    size_t n = 0;
    for (const char *p = text; *p && n < 4096; p = strchr(p, '\n') + 1) {
        if (*p != '#')
            lines[n++] = p;
        if (!strchr(p, '\n'))
            break;
    }
    for (size_t i = 0; i < n; i++) {
        size_t key_len = strcspn(lines[i], " ");
        for (size_t j = i + 1; j < n; j++)
            if (strncmp(lines[i], lines[j], key_len) == 0 && lines[j][key_len] == ' ')
                fail_msg("%s: series %.*s written twice", input, (int)key_len, lines[i]);
    }
}

static void prom_output_passes_promtool(void **state)
{
    for (size_t i = 0; i < NINPUTS; i++) {
        struct running r;
        start(&r, host_inputs[i], NULL);
        collect(&r);
        sleep_ms(50);
        collect(&r);
        struct dsf_buf text = {0};
        r.def->prom(r.ctx, &text);
        buf_cstr(&text);
        if (r.def != &dsf_input_diskio || find_point(&r.batch, "diskio", NULL, NULL))
            assert_true(text.len > 0);
        assert_no_duplicate_series(text.data ? text.data : "", r.def->name);
        if (text.len)
            assert_promtool_accepts(text.data, r.def->name);
        buf_free(&text);
        stop(&r);
    }
}

static void prom_names_follow_node_exporter(void **state)
{
    struct running r;
    start(&r, &dsf_input_mem, NULL);
    collect(&r);
    struct dsf_buf text = {0};
    r.def->prom(r.ctx, &text);
    buf_cstr(&text);
    assert_non_null(strstr(text.data, "\nnode_memory_MemTotal_bytes "));
    assert_non_null(strstr(text.data, "\nnode_memory_Active_anon_bytes "));
    buf_free(&text);
    stop(&r);

    start(&r, &dsf_input_cpu, NULL);
    collect(&r);
    r.def->prom(r.ctx, &text);
    buf_cstr(&text);
    assert_non_null(strstr(text.data, "# TYPE node_cpu_seconds_total counter\n"));
    assert_non_null(strstr(text.data, "node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} "));
    buf_free(&text);
    stop(&r);
}

/* Once arrays and buffers have grown to the host's size, a cycle allocates nothing. */
static void steady_state_collection_allocates_nothing(void **state)
{
    struct running runs[NINPUTS];
    for (size_t i = 0; i < NINPUTS; i++) {
        start(&runs[i], host_inputs[i], NULL);
        for (int warmup = 0; warmup < 3; warmup++) {
            sleep_ms(30); /* cpu emits only once ticks have elapsed */
            collect(&runs[i]);
        }
    }
    for (size_t i = 0; i < NINPUTS; i++) {
        size_t before = allocations;
        for (int cycle = 0; cycle < 3; cycle++) {
            sleep_ms(30);
            collect(&runs[i]);
        }
        if (allocations != before)
            fail_msg("%s allocated %zu times in 3 cycles", host_inputs[i]->name,
                     allocations - before);
    }
    for (size_t i = 0; i < NINPUTS; i++)
        stop(&runs[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cpu_usage_appears_on_second_collection_and_sums_to_100),
        cmocka_unit_test(cpu_total_and_percpu_can_be_turned_off),
        cmocka_unit_test(mem_total_matches_meminfo),
        cmocka_unit_test(swap_matches_meminfo),
        cmocka_unit_test(disk_reports_root_with_consistent_sizes),
        cmocka_unit_test(diskio_skips_loop_devices),
        cmocka_unit_test(net_lo_bytes_match_proc_net_dev),
        cmocka_unit_test(system_counts_online_cpus),
        cmocka_unit_test(processes_counts_at_least_this_one),
        cmocka_unit_test(no_input_writes_unsigned_fields),
        cmocka_unit_test(prom_output_passes_promtool),
        cmocka_unit_test(prom_names_follow_node_exporter),
        cmocka_unit_test(steady_state_collection_allocates_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
