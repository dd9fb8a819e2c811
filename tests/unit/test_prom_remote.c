/* remote_write bodies built here the way senders build them: a WriteRequest packed with
 * protobuf-c, compressed with snappy's block format. */
#include <setjmp.h>
#include <snappy-c.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "prom_test.h"
#include "schemas/prometheus/remote.pb-c.h"

#define MAX_DECODED (8u << 20)

static ProtobufCBinaryData bin(const char *s)
{
    return (ProtobufCBinaryData){strlen(s), (uint8_t *)s};
}

/* A series of "name=value" labels (NULL-terminated) and n samples value i at ts 1000 + i. */
struct series {
    Prometheus__TimeSeries ts;
    Prometheus__Label label[8], *labels[8];
    Prometheus__Sample sample[4], *samples[4];
};

static void series_init(struct series *s, const char *const *pairs, size_t n)
{
    prometheus__time_series__init(&s->ts);
    for (size_t i = 0; pairs[2 * i]; i++) {
        prometheus__label__init(&s->label[i]);
        s->label[i].name = bin(pairs[2 * i]);
        s->label[i].value = bin(pairs[2 * i + 1]);
        s->labels[i] = &s->label[i];
        s->ts.n_labels = i + 1;
    }
    for (size_t i = 0; i < n; i++) {
        prometheus__sample__init(&s->sample[i]);
        s->sample[i].value = (double)i + 0.5;
        s->sample[i].timestamp = 1000 + (int64_t)i;
        s->samples[i] = &s->sample[i];
    }
    s->ts.labels = s->labels;
    s->ts.samples = s->samples;
    s->ts.n_samples = n;
}

static void compress(const uint8_t *raw, size_t n, struct dsf_buf *out)
{
    size_t cap = snappy_max_compressed_length(n);
    buf_reset(out);
    buf_reserve(out, cap);
    assert_int_equal(snappy_compress((const char *)raw, n, out->data, &cap), SNAPPY_OK);
    out->len = cap;
}

static void pack_request(Prometheus__TimeSeries **series, size_t n, int with_metadata,
                         struct dsf_buf *out)
{
    Prometheus__WriteRequest req = PROMETHEUS__WRITE_REQUEST__INIT;
    Prometheus__MetricMetadata meta = PROMETHEUS__METRIC_METADATA__INIT, *metas[] = {&meta};
    meta.type = PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER;
    meta.metric_family_name = "node_cpu_seconds_total";
    meta.help = "Seconds the CPUs spent in each mode.";
    req.timeseries = series;
    req.n_timeseries = n;
    if (with_metadata) {
        req.metadata = metas;
        req.n_metadata = 1;
    }
    size_t len = prometheus__write_request__get_packed_size(&req);
    uint8_t *raw = malloc(len + 1);
    prometheus__write_request__pack(&req, raw);
    compress(raw, len, out);
    free(raw);
}

static int decode(const struct dsf_buf *body, struct seen *seen, char *err)
{
    return prom_remote_write_decode(body->data, body->len, MAX_DECODED, &seen_ops, seen, err, 256);
}

static void series_become_lines(void **state)
{
    (void)state;
    struct series a, b;
    series_init(&a,
                (const char *const[]){"__name__", "node_cpu_seconds_total", "cpu", "0", "mode",
                                      "idle", "job", "node", "empty", "", NULL},
                2);
    series_init(&b, (const char *const[]){"instance", "h:9100", "__name__", "up", NULL}, 1);
    Prometheus__TimeSeries *all[] = {&a.ts, &b.ts};
    struct dsf_buf body = {0};
    pack_request(all, 2, 1, &body);
    struct seen seen = {0};
    char err[256] = "";
    assert_int_equal(decode(&body, &seen, err), 0);
    assert_int_equal(seen.samples, 3);
    assert_int_equal(seen.rejects, 0);
    assert_string_equal(buf_cstr(&seen.lines),
                        "node_cpu_seconds_total,cpu=0,mode=idle,job=node value=0.5 1000000000\n"
                        "node_cpu_seconds_total,cpu=0,mode=idle,job=node value=1.5 1001000000\n"
                        "up,instance=h:9100 value=0.5 1000000000\n");
    buf_free(&seen.lines);
    buf_free(&body);
}

static void bad_series_are_rejected_alone(void **state)
{
    (void)state;
    struct series good, nameless, twice, newline;
    series_init(&good, (const char *const[]){"__name__", "up", NULL}, 1);
    series_init(&nameless, (const char *const[]){"job", "x", NULL}, 2);
    series_init(&twice, (const char *const[]){"__name__", "up", "a", "1", "a", "2", NULL}, 1);
    series_init(&newline, (const char *const[]){"__name__", "up", "a", "x\ny", NULL}, 1);
    Prometheus__TimeSeries *all[] = {&good.ts, &nameless.ts, &twice.ts, &newline.ts};
    struct dsf_buf body = {0};
    struct seen seen = {0};
    char err[256];
    pack_request(all, 3, 0, &body);
    assert_int_equal(decode(&body, &seen, err), 0);
    assert_int_equal(seen.samples, 1);
    assert_int_equal(seen.rejects, 3); /* two samples of the nameless series, one duplicate */
    assert_string_equal(seen.last_reason, "duplicate label name");
    buf_free(&seen.lines);
    memset(&seen, 0, sizeof(seen));
    pack_request(all + 1, 1, 0, &body);
    assert_int_equal(decode(&body, &seen, err), 0);
    assert_string_equal(seen.last_reason, "series without __name__");
    buf_free(&seen.lines);
    memset(&seen, 0, sizeof(seen));
    pack_request(all + 3, 1, 0, &body);
    assert_int_equal(decode(&body, &seen, err), 0);
    assert_int_equal(seen.unrendered, 1);
    assert_string_equal(seen.last_reason, "line break or NUL in a label");
    buf_free(&seen.lines);
    buf_free(&body);
}

/* Fields a newer sender adds (exemplars in a series, a field of a later version in the
 * request) are skipped. */
static void unknown_fields_are_tolerated(void **state)
{
    (void)state;
    struct series s;
    series_init(&s, (const char *const[]){"__name__", "up", NULL}, 1);
    uint8_t raw[256];
    size_t ts_len = prometheus__time_series__pack(&s.ts, raw + 2);
    memcpy(raw + 2 + ts_len, "\x1a\x03\x01\x02\x03", 5); /* field 3: an exemplar */
    ts_len += 5;
    raw[0] = 0x0a; /* field 1: a series */
    raw[1] = (uint8_t)ts_len;
    memcpy(raw + 2 + ts_len, "\x78\x01", 2); /* field 15, a varint */
    struct dsf_buf body = {0};
    compress(raw, 2 + ts_len + 2, &body);
    struct seen seen = {0};
    char err[256];
    assert_int_equal(decode(&body, &seen, err), 0);
    assert_int_equal(seen.samples, 1);
    assert_string_equal(buf_cstr(&seen.lines), "up value=0.5 1000000000\n");
    buf_free(&seen.lines);
    buf_free(&body);
}

static void refused_bodies_pass_nothing(void **state)
{
    (void)state;
    struct series s;
    series_init(&s, (const char *const[]){"__name__", "up", NULL}, 3);
    Prometheus__TimeSeries *all[] = {&s.ts, &s.ts, &s.ts};
    struct dsf_buf body = {0};
    struct seen seen = {0};
    char err[256];
    pack_request(all, 3, 1, &body);
    /* Truncated snappy. */
    assert_int_equal(prom_remote_write_decode(body.data, body.len - 3, MAX_DECODED, &seen_ops,
                                              &seen, err, sizeof(err)),
                     -1);
    assert_string_equal(err, "body is not snappy-compressed (block format)");
    /* Not snappy at all, and nothing. */
    assert_int_equal(prom_remote_write_decode("\xff\xff\xff\xff\xff\xff", 6, MAX_DECODED, &seen_ops,
                                              &seen, err, sizeof(err)),
                     -1);
    assert_int_equal(
        prom_remote_write_decode("", 0, MAX_DECODED, &seen_ops, &seen, err, sizeof(err)), -1);
    /* Beyond the cap: refused on the stated length. */
    assert_int_equal(
        prom_remote_write_decode(body.data, body.len, 10, &seen_ops, &seen, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "beyond the cap of 10"));
    /* Valid snappy around an invalid protobuf: a series cut short in the middle. */
    uint8_t raw[64];
    size_t n = prometheus__time_series__pack(&s.ts, raw + 2);
    raw[0] = 0x0a;
    raw[1] = (uint8_t)(n + 10);
    compress(raw, n + 2, &body);
    assert_int_equal(decode(&body, &seen, err), -1);
    assert_string_equal(err, "body is not a protobuf WriteRequest");
    compress((const uint8_t *)"garbage, not protobuf", 21, &body);
    assert_int_equal(decode(&body, &seen, err), -1);
    assert_int_equal(seen.samples + seen.rejects, 0);
    /* An empty request is a request. */
    compress((const uint8_t *)"", 0, &body);
    assert_int_equal(decode(&body, &seen, err), 0);
    assert_int_equal(seen.samples + seen.rejects, 0);
    buf_free(&body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(series_become_lines),
        cmocka_unit_test(bad_series_are_rejected_alone),
        cmocka_unit_test(unknown_fields_are_tolerated),
        cmocka_unit_test(refused_bodies_pass_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
