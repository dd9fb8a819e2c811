/*
 * dsf-bench-http: the request bodies of bench/collector_http.sh, made once, and the sender
 * that posts them, so InfluxDB, vmagent and the collector receive the very same bytes.
 *
 *   dsf-bench-http lp --out DIR [--bodies N] [--lines L] [--start NS]
 *       N files of L lines each (default 200 x 5000) shaped like Telegraf's cpu, mem, disk,
 *       diskio, net and system inputs on many hosts, every line a point of its own (no two
 *       share series and time), timestamps in ns from --start (default an hour ago).
 *   dsf-bench-http rw --out DIR [--bodies N] [--samples S] [--start MS]
 *       N remote_write requests (snappy block format around a protobuf WriteRequest v1, the
 *       messages of schemas/prometheus) of S series with one sample each (default 500 x
 *       2000), node_exporter's names and labels.
 *   dsf-bench-http post --url URL [--parallel P] [--header "Name: value"]... FILE...
 *       Posts every FILE once, P requests in flight (default 4); a 429 or 503 is sent again
 *       after its Retry-After (at most 1 s) and counted. Prints one JSON line: requests,
 *       retries, seconds, the sender's own CPU seconds. Exits 1 on any other answer.
 *
 * The sender runs on the project's HTTP client (libcurl multi on the event loop): one thread
 * that keeps P transfers in flight, cheap beside the servers it loads.
 */
#include "common/buf.h"
#include "common/file.h"
#include "common/http_client.h"
#include "common/loop.h"

#include <event2/event.h>
#include <snappy-c.h>

#include "schemas/prometheus/remote.pb-c.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#define MAX_HEADERS 16
#define HOSTS 500

static const char *const lp_cpu_names[] = {"cpu0", "cpu1", "cpu2", "cpu3", "cpu-total"};
static const char *const lp_disks[][3] = {{"/", "vda1", "ext4"}, {"/data", "vdb", "xfs"}};
static const char *const lp_nets[] = {"eth0", "eth1"};

/* A value that varies with where it is used, reproducible from one run to the next. */
static uint32_t mix(uint64_t a, uint64_t b)
{
    uint64_t x = a * 0x9e3779b97f4a7c15u ^ (b + 0x632be59bd9b4e5f5u);
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9u;
    return (uint32_t)(x ^ (x >> 29));
}

/* The lines one Telegraf agent on host h sends for interval t: 13 lines. */
static void render_host_interval(struct dsf_buf *out, long h, long t, int64_t ts)
{
    char tags[96]; /* Telegraf sorts the tags by key */
    snprintf(tags, sizeof(tags), "dc=dc-%ld,env=prod,host=web-%04ld", h % 4, h);
    uint32_t r = mix((uint64_t)h, (uint64_t)t);
    for (size_t c = 0; c < sizeof(lp_cpu_names) / sizeof(*lp_cpu_names); c++) {
        double user = (r + c * 7919) % 6000 / 100.0, sys = (r >> 8) % 1500 / 100.0;
        buf_printf(out,
                   "cpu,cpu=%s,%s usage_user=%.2f,usage_system=%.2f,usage_idle=%.2f,"
                   "usage_nice=0,usage_iowait=%.2f,usage_irq=0,usage_softirq=%.2f,"
                   "usage_steal=0,usage_guest=0,usage_guest_nice=0 %" PRId64 "\n",
                   lp_cpu_names[c], tags, user, sys, 100 - user - sys, (r >> 4) % 300 / 100.0,
                   (r >> 12) % 90 / 100.0, ts);
    }
    uint64_t used = 2000000000u + r % 1000000000u;
    buf_printf(out,
               "mem,%s total=8589934592i,available=%" PRIu64 "i,used=%" PRIu64 "i,free=%" PRIu64
               "i,cached=%ui,buffered=%ui,used_percent=%.3f,"
               "available_percent=%.3f %" PRId64 "\n",
               tags, 8589934592u - used, used, 8589934592u - used - 1000000000u,
               500000000u + r % 100000000u, 60000000u + r % 1000000u, used / 85899345.92,
               100 - used / 85899345.92, ts);
    for (size_t d = 0; d < 2; d++) {
        uint64_t free_b = 10000000000u + (uint64_t)(r >> d) % 5000000000u;
        buf_printf(out,
                   "disk,dc=dc-%ld,device=%s,env=prod,fstype=%s,host=web-%04ld,mode=rw,path=%s "
                   "total=53687091200i,"
                   "free=%" PRIu64 "i,used=%" PRIu64 "i,used_percent=%.3f,inodes_total=3276800i,"
                   "inodes_free=%ui,inodes_used=%ui %" PRId64 "\n",
                   h % 4, lp_disks[d][1], lp_disks[d][2], h, lp_disks[d][0], free_b,
                   53687091200u - free_b, (53687091200u - free_b) / 536870912.0,
                   3000000u + r % 200000u, 276800u - r % 200000u, ts);
        buf_printf(out,
                   "diskio,%s,name=%s reads=%ldi,writes=%ldi,read_bytes=%ldi,write_bytes=%ldi,"
                   "read_time=%ldi,write_time=%ldi,io_time=%ldi,iops_in_progress=0i %" PRId64 "\n",
                   tags, lp_disks[d][1], 1000 + t * 7, 5000 + t * 31, (1000 + t * 7) * 4096,
                   (5000 + t * 31) * 4096, t * 3, t * 11, t * 13, ts);
    }
    for (size_t n = 0; n < 2; n++)
        buf_printf(out,
                   "net,%s,interface=%s bytes_sent=%ldi,bytes_recv=%ldi,packets_sent=%ldi,"
                   "packets_recv=%ldi,err_in=0i,err_out=0i,drop_in=0i,drop_out=0i %" PRId64 "\n",
                   tags, lp_nets[n], t * 150000 + (long)(r % 9999), t * 420000 + (long)n, t * 200,
                   t * 450, ts);
    buf_printf(out,
               "system,%s load1=%.2f,load5=%.2f,load15=%.2f,n_cpus=4i,n_users=1i,"
               "uptime=%ldi %" PRId64 "\n",
               tags, r % 400 / 100.0, r % 300 / 100.0, r % 200 / 100.0, 86400 + t * 10, ts);
}

static int write_body(const char *dir, long i, const char *ext, const void *p, size_t len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/b%06ld.%s", dir, i, ext);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "dsf-bench-http: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Whole agent intervals (13 lines) per body until it holds at least `lines` lines: host by
 * host, then the next interval. Prints what it made as one JSON line. */
static int generate_lp(const char *dir, long bodies, long lines, int64_t start_ns)
{
    struct dsf_buf body = {0};
    long h = 0, t = 0, total = 0;
    size_t bytes = 0;
    int rc = 0;
    for (long i = 0; rc == 0 && i < bodies; i++) {
        buf_reset(&body);
        for (long n = 0; n < lines; n += 13) {
            render_host_interval(&body, h, t, start_ns + (int64_t)t * 10000000000);
            total += 13;
            if (++h == HOSTS)
                h = 0, t++;
        }
        bytes += body.len;
        rc = body.oom ? -1 : write_body(dir, i, "lp", body.data, body.len);
    }
    buf_free(&body);
    if (rc == 0)
        printf("{\"bodies\":%ld,\"lines\":%ld,\"bytes\":%zu}\n", bodies, total, bytes);
    return rc;
}

/* One series of a request with one sample, and the text its labels point to: protobuf-c
 * packs what the structs point at. */
struct rw_series {
    Prometheus__TimeSeries ts;
    Prometheus__Label label[5], *labelp[5];
    Prometheus__Sample sample, *samplep;
    char name[48], instance[32], cpu[8];
};

static void rw_label(struct rw_series *s, const char *name, const char *value)
{
    Prometheus__Label *l = &s->label[s->ts.n_labels];
    prometheus__label__init(l);
    l->name = (ProtobufCBinaryData){strlen(name), (uint8_t *)name};
    l->value = (ProtobufCBinaryData){strlen(value), (uint8_t *)value};
    s->labelp[s->ts.n_labels++] = l;
}

static const char *const rw_modes[] = {"idle",    "iowait", "irq",    "nice",
                                       "softirq", "steal",  "system", "user"};
static const char *const rw_memory[] = {"node_memory_Buffers_bytes", "node_memory_Cached_bytes",
                                        "node_memory_MemAvailable_bytes",
                                        "node_memory_MemFree_bytes", "node_memory_MemTotal_bytes"};
#define RW_SERIES_PER_SCRAPE 50

/* Series k (0..49) of one node_exporter scrape of instance h at scrape t, its labels in
 * Prometheus' order (by name). */
static void fill_node_series(struct rw_series *s, long h, long t, int k, int64_t ts_ms)
{
    uint32_t r = mix((uint64_t)h << 8 | (uint64_t)k, (uint64_t)t);
    prometheus__time_series__init(&s->ts);
    prometheus__sample__init(&s->sample);
    s->ts.labels = s->labelp;
    s->samplep = &s->sample;
    s->ts.samples = &s->samplep;
    s->ts.n_samples = 1;
    s->sample.timestamp = ts_ms;
    snprintf(s->instance, sizeof(s->instance), "web-%04ld:9100", h);
    rw_label(s, "__name__", ""); /* its value is the name, written below */
    if (k < 32) {
        snprintf(s->name, sizeof(s->name), "node_cpu_seconds_total");
        snprintf(s->cpu, sizeof(s->cpu), "%d", k / 8);
        rw_label(s, "cpu", s->cpu);
        s->sample.value = (double)t * 15 * (k % 8 == 0 ? 0.8 : 0.03) + r % 1000 / 1000.0;
    } else if (k < 37) {
        snprintf(s->name, sizeof(s->name), "%s", rw_memory[k - 32]);
        s->sample.value = 8589934592.0 - r % 4000000000u;
    } else if (k < 41) {
        snprintf(s->name, sizeof(s->name), "node_filesystem_%s_bytes", k < 39 ? "avail" : "size");
        rw_label(s, "device", lp_disks[k % 2][1]);
        rw_label(s, "fstype", lp_disks[k % 2][2]);
        s->sample.value = k < 39 ? 10e9 + r % 5000000000u : 53687091200.0;
    } else if (k < 45) {
        snprintf(s->name, sizeof(s->name), "node_network_%s_bytes_total",
                 k < 43 ? "receive" : "transmit");
        rw_label(s, "device", lp_nets[k % 2]);
        s->sample.value = (double)t * 150000 + r % 9999;
    } else if (k < 48) {
        snprintf(s->name, sizeof(s->name), "node_load%d", k == 45 ? 1 : k == 46 ? 5 : 15);
        s->sample.value = r % 400 / 100.0;
    } else {
        snprintf(s->name, sizeof(s->name), "node_disk_io_time_seconds_total");
        rw_label(s, "device", lp_disks[k % 2][1]);
        s->sample.value = (double)t * 0.4 + r % 100 / 100.0;
    }
    s->label[0].value = (ProtobufCBinaryData){strlen(s->name), (uint8_t *)s->name};
    rw_label(s, "instance", s->instance);
    rw_label(s, "job", "node");
    if (k < 32)
        rw_label(s, "mode", rw_modes[k % 8]);
}

/* Bodies of `samples` series, in scrape order: every series of every instance at scrape t,
 * then t + 1 (15 s later). Prints what it made as one JSON line. */
static int generate_rw(const char *dir, long bodies, long samples, int64_t start_ms)
{
    struct rw_series *series = calloc((size_t)samples, sizeof(*series));
    Prometheus__TimeSeries **tsp = calloc((size_t)samples, sizeof(*tsp));
    Prometheus__WriteRequest req = PROMETHEUS__WRITE_REQUEST__INIT;
    uint8_t *packed = NULL;
    char *compressed = NULL;
    size_t bytes = 0, raw = 0;
    int rc = series && tsp ? 0 : -1;
    req.timeseries = tsp;
    req.n_timeseries = (size_t)samples;
    for (long i = 0, pos = 0; rc == 0 && i < bodies; i++) {
        for (long s = 0; s < samples; s++, pos++) {
            long t = pos / (RW_SERIES_PER_SCRAPE * HOSTS);
            fill_node_series(&series[s], pos / RW_SERIES_PER_SCRAPE % HOSTS, t,
                             (int)(pos % RW_SERIES_PER_SCRAPE), start_ms + (int64_t)t * 15000);
            tsp[s] = &series[s].ts;
        }
        size_t len = prometheus__write_request__get_packed_size(&req);
        size_t max = snappy_max_compressed_length(len);
        free(packed);
        free(compressed);
        packed = malloc(len);
        compressed = malloc(max);
        if (!packed || !compressed)
            rc = -1;
        else if (prometheus__write_request__pack(&req, packed) != len ||
                 snappy_compress((char *)packed, len, compressed, &max) != SNAPPY_OK)
            rc = -1;
        else
            rc = write_body(dir, i, "rw", compressed, max);
        raw += len;
        bytes += max;
    }
    free(packed);
    free(compressed);
    free(tsp);
    free(series);
    if (rc == 0)
        printf("{\"bodies\":%ld,\"samples\":%ld,\"bytes\":%zu,\"raw_bytes\":%zu}\n", bodies,
               bodies * samples, bytes, raw);
    return rc;
}

struct body {
    char *data;
    size_t len;
};

struct sender {
    struct event_base *base;
    struct dsf_http_client *http;
    const char *url;
    const char *headers[MAX_HEADERS + 2];
    struct body *bodies;
    long nbodies, parallel, next, done, retries, waiting, failed;
};

struct attempt {
    struct sender *s;
    long body;
    struct event *later;
};

static void send_body(struct sender *s, long i);

static void resend(evutil_socket_t fd, short what, void *arg)
{
    struct attempt *a = arg;
    event_free(a->later);
    a->s->waiting--;
    send_body(a->s, a->body);
    free(a);
}

static int finished(const struct sender *s)
{
    return s->done == s->nbodies ||
           (s->failed && dsf_http_client_in_flight(s->http) == 0 && s->waiting == 0);
}

static void start_more(struct sender *s)
{
    while (!s->failed && s->next < s->nbodies &&
           (long)dsf_http_client_in_flight(s->http) < s->parallel)
        send_body(s, s->next++);
    if (finished(s))
        event_base_loopbreak(s->base);
}

static void on_answer(void *arg, const struct dsf_http_response *r)
{
    struct attempt *a = arg;
    struct sender *s = a->s;
    if (r->status == 429 || r->status == 503) {
        /* Backpressure is part of the path under test: wait as told, then the same body. */
        long ms = r->retry_after_s < 0 ? 50 : r->retry_after_s > 1 ? 1000 : r->retry_after_s * 1000;
        struct timeval tv = {ms / 1000, ms % 1000 * 1000};
        s->retries++;
        a->later = evtimer_new(s->base, resend, a);
        if (a->later && evtimer_add(a->later, &tv) == 0) {
            s->waiting++;
            return;
        }
        if (a->later)
            event_free(a->later);
        s->failed++;
    } else if (r->status < 200 || r->status > 299) {
        fprintf(stderr, "dsf-bench-http: body %ld to %s: %ld %.300s\n", a->body, s->url, r->status,
                r->status ? r->body : r->error);
        s->failed++;
    } else {
        s->done++;
    }
    free(a);
    start_more(s);
}

static void send_body(struct sender *s, long i)
{
    struct attempt *a = calloc(1, sizeof(*a));
    struct dsf_http_request req = {.method = "POST",
                                   .url = s->url,
                                   .headers = s->headers,
                                   .body = s->bodies[i].data,
                                   .len = s->bodies[i].len,
                                   .timeout_ms = 300000};
    if (!a) {
        s->failed++;
        return;
    }
    *a = (struct attempt){.s = s, .body = i};
    if (dsf_http_client_send(s->http, &req, on_answer, a) != 0) {
        free(a);
        s->failed++;
    }
}

static double cpu_seconds(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + (double)u.ru_stime.tv_sec +
           u.ru_stime.tv_usec / 1e6;
}

/* Reads every body first, so the figures hold the network and the server alone. */
static int post_all(struct sender *s, char **files, long n)
{
    int rc = 1;
    s->bodies = calloc((size_t)n, sizeof(*s->bodies));
    for (long i = 0; s->bodies && i < n; i++, s->nbodies++)
        if (!(s->bodies[i].data = dsf_read_file(files[i], &s->bodies[i].len))) {
            fprintf(stderr, "dsf-bench-http: cannot read %s: %s\n", files[i], strerror(errno));
            goto out;
        }
    s->base = dsf_loop_new();
    s->http = s->base ? dsf_http_client_new(s->base) : NULL;
    if (!s->bodies || !s->http)
        goto out;
    double cpu0 = cpu_seconds();
    int64_t t0 = dsf_mono_ms();
    start_more(s);
    if (!finished(s))
        event_base_dispatch(s->base);
    double secs = (dsf_mono_ms() - t0) / 1e3;
    printf("{\"requests\":%ld,\"retries\":%ld,\"failed\":%ld,\"seconds\":%.3f,"
           "\"cpu_seconds\":%.3f}\n",
           s->done, s->retries, s->failed, secs, cpu_seconds() - cpu0);
    rc = s->failed || s->done != s->nbodies;
out:
    dsf_http_client_free(s->http);
    if (s->base)
        event_base_free(s->base);
    for (long i = 0; i < s->nbodies; i++)
        free(s->bodies[i].data);
    free(s->bodies);
    return rc;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: dsf-bench-http lp --out DIR [--bodies N] [--lines L] [--start NS]\n"
            "       dsf-bench-http rw --out DIR [--bodies N] [--samples S] [--start MS]\n"
            "       dsf-bench-http post --url URL [--parallel P] [--header H]... FILE...\n");
    return 2;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", 1, 0, 'o'},      {"bodies", 1, 0, 'b'}, {"lines", 1, 0, 'l'},
        {"samples", 1, 0, 's'},  {"start", 1, 0, 't'},  {"url", 1, 0, 'u'},
        {"parallel", 1, 0, 'p'}, {"header", 1, 0, 'H'}, {0, 0, 0, 0}};
    if (argc < 2)
        return usage();
    const char *mode = argv[1], *out = NULL;
    long bodies = -1, per_body = -1, nheaders = 0;
    int64_t start = -1;
    struct sender s = {.parallel = 4};
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'o')
            out = optarg;
        else if (c == 'b')
            bodies = atol(optarg);
        else if (c == 'l' || c == 's')
            per_body = atol(optarg);
        else if (c == 't')
            start = strtoll(optarg, NULL, 10);
        else if (c == 'u')
            s.url = optarg;
        else if (c == 'p')
            s.parallel = atol(optarg);
        else if (c == 'H' && nheaders < MAX_HEADERS)
            s.headers[nheaders++] = optarg;
        else
            return usage();
    }
    int64_t hour_ago_ms = dsf_now_ns() / 1000000 - 3600000;
    if (!strcmp(mode, "lp") && out && (mkdir(out, 0755) == 0 || errno == EEXIST))
        return generate_lp(out, bodies > 0 ? bodies : 200, per_body > 0 ? per_body : 5000,
                           start >= 0 ? start : hour_ago_ms * 1000000) != 0;
    if (!strcmp(mode, "rw") && out && (mkdir(out, 0755) == 0 || errno == EEXIST))
        return generate_rw(out, bodies > 0 ? bodies : 500, per_body > 0 ? per_body : 2000,
                           start >= 0 ? start : hour_ago_ms) != 0;
    if (!strcmp(mode, "post") && s.url && s.parallel > 0 && optind < argc) {
        /* curl would wait for a 100 Continue before each body larger than 1 KB. */
        s.headers[nheaders] = "Expect:";
        return post_all(&s, argv + optind, argc - optind);
    }
    return usage();
}
