#define DSF_MODULE "writer"
#include "collector/writer.h"
#include "collector/collector.h"
#include "collector/marks.h"
#include "common/buf.h"
#include "common/http_client.h"
#include "common/influx_url.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/metrics.h"
#include "common/spool.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <zlib.h>

struct batch {
    struct batch *next;                  /* in the send queue */
    struct batch *all_next, **all_pprev; /* every batch the writer owns */
    struct writer *w;
    struct dsf_buf body;
    uint32_t lines;
    struct writer_mark **marks;
    size_t nmarks;
    int attempts;
    int64_t sent_us;
    struct event *retry;
    uint64_t spool_id; /* a replayed batch: its record is held in the spool until stored */
    double ts_sum_s;   /* sum over lines of their sample times (s): the mean gives the age */
};

struct writer {
    struct collector *c;
    struct dsf_http_client *http;
    char url[1024];
    char auth[600];
    struct batch *open;        /* being filled */
    struct batch *head, *tail; /* ready to send */
    size_t in_flight;
    uint64_t pending_bytes;
    struct event *flush_timer;
    struct dsf_buf gz;
    struct batch *all;
    int closing;
    int spool_on;
    int spooling;         /* the store failed: new batches queue on disk behind the spool */
    struct batch *replay; /* the spooled batch being sent, at most one: order is kept */
    struct spool spool;
    struct spool_record record;
    /* Batch bodies are large: reusing them spares the page faults of fresh memory. */
    struct dsf_buf spare[8];
    size_t nspare;
    struct dsf_histogram age; /* sample age when the store accepted it, per point */
};

static const double age_bounds[] = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600};

/* Sample time (s) of the first line: one message's lines share their cycle's timestamp, so
 * it stands for all of them without parsing each line again. 0 when there is none. */
static double first_sample_time(const char *lines, size_t len)
{
    const char *nl = memchr(lines, '\n', len);
    const char *end = nl ? nl : lines + len, *p = end;
    while (p > lines && p[-1] != ' ')
        p--;
    int64_t ns = 0;
    for (const char *q = p; q < end; q++) {
        if (*q < '0' || *q > '9' || ns > INT64_MAX / 10 - 10)
            return 0;
        ns = ns * 10 + (*q - '0');
    }
    return (double)ns / 1e9;
}

static void observe_age(struct writer *w, const struct batch *b)
{
    if (!b->lines || b->ts_sum_s <= 0)
        return;
    double age = (double)dsf_now_ns() / 1e9 - b->ts_sum_s / b->lines;
    dsf_histogram_observe(&w->age, age > 0 ? age : 0, b->lines);
}

static struct batch *batch_new(struct writer *w)
{
    struct batch *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->w = w;
    if (w->nspare)
        b->body = w->spare[--w->nspare];
    b->all_next = w->all;
    if (w->all)
        w->all->all_pprev = &b->all_next;
    b->all_pprev = &w->all;
    w->all = b;
    return b;
}

static void batch_free(struct batch *b)
{
    *b->all_pprev = b->all_next;
    if (b->all_next)
        b->all_next->all_pprev = b->all_pprev;
    if (b->retry)
        event_free(b->retry);
    struct writer *w = b->w;
    if (!w->closing && w->nspare < sizeof(w->spare) / sizeof(w->spare[0])) {
        buf_reset(&b->body);
        w->spare[w->nspare++] = b->body;
    } else {
        buf_free(&b->body);
    }
    free(b->marks);
    free(b);
}

static int batch_hold(struct batch *b, struct writer_mark *m)
{
    struct writer_mark **marks = realloc(b->marks, (b->nmarks + 1) * sizeof(*marks));
    if (!marks)
        return -1;
    b->marks = marks;
    marks[b->nmarks++] = m;
    m->refs++;
    return 0;
}

/* The batch's lines are stored (or refused for good): release its claims. */
static void batch_durable(struct batch *b)
{
    for (size_t i = 0; i < b->nmarks; i++) {
        struct writer_mark *m = b->marks[i];
        if (--m->refs == 0 && m->lost)
            writer_marks_abandon(&m, 1);
        else if (m->refs == 0)
            writer_marks_done(&m, 1);
    }
    b->nmarks = 0;
}

static void enqueue_front(struct writer *w, struct batch *b)
{
    b->next = w->head;
    w->head = b;
    if (!w->tail)
        w->tail = b;
}

static void enqueue(struct writer *w, struct batch *b)
{
    b->next = NULL;
    if (w->tail)
        w->tail->next = b;
    else
        w->head = b;
    w->tail = b;
}

static void pump(struct writer *w);

static int gzip_body(struct writer *w, const struct dsf_buf *in)
{
    z_stream z = {0};
    /* Level 1: line protocol still shrinks about tenfold, at a third of level 6's CPU. */
    if (deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    buf_reset(&w->gz);
    size_t bound = deflateBound(&z, in->len);
    if (buf_reserve(&w->gz, bound)) {
        deflateEnd(&z);
        return -1;
    }
    z.next_in = (Bytef *)in->data;
    z.avail_in = (uInt)in->len;
    z.next_out = (Bytef *)w->gz.data;
    z.avail_out = (uInt)bound;
    int rc = deflate(&z, Z_FINISH);
    w->gz.len = z.total_out;
    deflateEnd(&z);
    return rc == Z_STREAM_END ? 0 : -1;
}

static int64_t backoff_ms(const struct writer *w, int attempts, long retry_after_s)
{
    int64_t cap = w->c->cfg.output.max_backoff_ms;
    int64_t base = 200LL << (attempts < 16 ? attempts : 16);
    if (base > cap)
        base = cap;
    uint32_t r = 0;
    if (getrandom(&r, sizeof(r), 0) != sizeof(r))
        r = (uint32_t)dsf_mono_ms();
    int64_t ms = base / 2 + (int64_t)(r % (uint32_t)(base / 2 + 1)); /* jitter: 50-100 % */
    if (retry_after_s > 0 && retry_after_s * 1000 > ms)
        ms = retry_after_s * 1000 < cap ? retry_after_s * 1000 : cap;
    return ms;
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct batch *b = arg;
    enqueue_front(b->w, b);
    pump(b->w);
}

static void retry_later(struct batch *b, long retry_after_s)
{
    struct writer *w = b->w;
    w->c->stats.retries++;
    int64_t ms = backoff_ms(w, b->attempts, retry_after_s);
    if (!b->retry)
        b->retry = evtimer_new(w->c->base, on_retry, b);
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000 * 1000)};
    evtimer_add(b->retry, &tv);
}

/* Splits a batch the store refused into halves by lines, both sent again first. */
static void split(struct batch *b)
{
    struct writer *w = b->w;
    struct batch *first = batch_new(w), *second = batch_new(w);
    const char *p = b->body.data, *end = p + b->body.len;
    uint32_t half = b->lines / 2, seen = 0;
    const char *cut = p;
    while (cut < end && seen < half) {
        const char *nl = memchr(cut, '\n', (size_t)(end - cut));
        cut = nl ? nl + 1 : end;
        seen++;
    }
    buf_put(&first->body, p, (size_t)(cut - p));
    first->lines = seen;
    buf_put(&second->body, cut, (size_t)(end - cut));
    second->lines = b->lines - seen;
    double mean = b->lines ? b->ts_sum_s / b->lines : 0;
    first->ts_sum_s = mean * first->lines;
    second->ts_sum_s = mean * second->lines;
    for (size_t i = 0; i < b->nmarks; i++) {
        batch_hold(first, b->marks[i]);
        batch_hold(second, b->marks[i]);
        b->marks[i]->refs--; /* moved from b to the halves */
    }
    b->nmarks = 0;
    enqueue_front(w, second);
    enqueue_front(w, first);
    batch_free(b);
}

static void refuse_line(struct batch *b, const char *body)
{
    struct writer *w = b->w;
    size_t len =
        b->body.len && b->body.data[b->body.len - 1] == '\n' ? b->body.len - 1 : b->body.len;
    char reason[512];
    snprintf(reason, sizeof(reason), "the store refused the line: %.400s", body);
    pipeline_reject(w->c, "store", b->body.data, len, reason);
    batch_durable(b);
    batch_free(b);
}

static void replay_next(struct writer *w)
{
    if (!w->spool_on || w->replay || w->closing)
        return;
    if (spool_hold(&w->spool, &w->record)) {
        if (w->spooling)
            log_info("spool drained: writing straight to the store again");
        w->spooling = 0;
        return;
    }
    struct batch *b = batch_new(w);
    if (!b)
        return;
    buf_put(&b->body, w->record.data.data, w->record.data.len);
    b->lines = w->record.npoints;
    b->spool_id = w->record.id;
    b->ts_sum_s = (double)w->record.seq * b->lines;
    w->replay = b;
    enqueue_front(w, b);
    pump(w);
}

/* Spooled, or dropped by a full spool and counted there: either way the batch is done. */
static void spool_batch(struct writer *w, struct batch *b)
{
    struct collector_stats *st = &w->c->stats;
    if (!w->spooling)
        log_warn("the store is not taking writes: spooling batches to %s (cap %llu bytes)",
                 w->spool.dir, (unsigned long long)w->spool.max_bytes);
    w->spooling = 1;
    /* The record's seq carries the batch's mean sample time, for the age at its replay. */
    uint64_t mean_s = b->lines ? (uint64_t)(b->ts_sum_s / b->lines) : 0;
    if (spool_put(&w->spool, "", mean_s, b->lines, b->body.data, b->body.len, 0) == 0) {
        st->spooled_batches++;
        st->spooled_lines += b->lines;
    } else {
        log_error("a batch of %u lines could not be spooled and is lost (counted in "
                  "damselfly_collector_spool_dropped_points_total): check spool.dir's space "
                  "and spool.max_bytes",
                  b->lines);
    }
    w->pending_bytes -= b->body.len;
    batch_durable(b);
    batch_free(b);
    replay_next(w);
}

/* A replayed batch the store refuses as bad becomes an ordinary one, narrowed down in memory. */
static void unhold(struct writer *w, struct batch *b)
{
    spool_release(&w->spool, b->spool_id);
    b->spool_id = 0;
    w->replay = NULL;
    w->pending_bytes += b->body.len;
}

static void on_response(void *arg, const struct dsf_http_response *r)
{
    struct batch *b = arg;
    struct writer *w = b->w;
    struct collector_stats *st = &w->c->stats;
    w->in_flight--;
    if (w->closing)
        return; /* cancelled at shutdown: writer_free frees the batch */
    st->store_requests++;
    st->store_latency_us_sum += (uint64_t)(dsf_mono_ms() * 1000 - b->sent_us);
    if (b->spool_id && r->status >= 400 && r->status < 500 && r->status != 429 &&
        r->status != 401 && r->status != 403 && r->status != 404)
        unhold(w, b);
    if (r->status >= 200 && r->status < 300) {
        observe_age(w, b);
        st->batches_ok++;
        st->lines_out += b->lines;
        st->bytes_out += b->body.len;
        if (b->spool_id) {
            spool_release(&w->spool, b->spool_id);
            w->replay = NULL;
            st->replayed_lines += b->lines;
        } else {
            w->pending_bytes -= b->body.len;
        }
        batch_durable(b);
        batch_free(b);
        replay_next(w);
    } else if ((r->status == 400 || r->status == 413) && b->lines > 1) {
        st->partial_writes++;
        log_warn("the store refused a batch of %u lines (%ld): narrowing down the bad lines",
                 b->lines, r->status);
        split(b); /* the same bytes stay pending, in two batches */
    } else if (r->status == 400 || r->status == 413) {
        w->pending_bytes -= b->body.len;
        refuse_line(b, r->body);
    } else {
        st->batches_failed++;
        b->attempts++;
        if (r->status == 401 || r->status == 403 || r->status == 404)
            log_error("the store at %s answered %ld: %.200s (check output.* settings); retrying",
                      w->url, r->status, r->body);
        else if (b->attempts == 1 || b->attempts % 10 == 0)
            log_warn("write to %s failed (%s%ld %.200s); retrying with backoff (attempt %d)",
                     w->url, r->status ? "" : r->error, r->status, r->status ? r->body : "",
                     b->attempts);
        if (w->spool_on && !b->spool_id)
            spool_batch(w, b);
        else
            retry_later(b, r->retry_after_s);
    }
    pump(w);
    collector_after_write(w->c);
}

static void send_batch(struct writer *w, struct batch *b)
{
    const char *headers[4] = {"Content-Type: text/plain; charset=utf-8", NULL, NULL, NULL};
    size_t nh = 1;
    const struct dsf_buf *body = &b->body;
    if (w->c->cfg.output.gzip && gzip_body(w, &b->body) == 0) {
        headers[nh++] = "Content-Encoding: gzip";
        body = &w->gz;
    }
    if (w->auth[0])
        headers[nh++] = w->auth;
    struct dsf_http_request req = {
        .method = "POST",
        .url = w->url,
        .headers = headers,
        .body = body->data,
        .len = body->len,
        .timeout_ms = w->c->cfg.output.timeout_ms,
        .user = *w->c->cfg.output.username ? w->c->cfg.output.username : NULL,
        .password = w->c->cfg.output.password,
    };
    b->sent_us = dsf_mono_ms() * 1000;
    if (dsf_http_client_send(w->http, &req, on_response, b)) {
        b->attempts++;
        retry_later(b, -1);
        return;
    }
    w->in_flight++;
}

static void pump(struct writer *w)
{
    while (w->head && (int64_t)w->in_flight < w->c->cfg.output.max_in_flight) {
        struct batch *b = w->head;
        w->head = b->next;
        if (!w->head)
            w->tail = NULL;
        send_batch(w, b);
    }
}

void writer_flush(struct writer *w)
{
    if (!w->open || !w->open->lines)
        return;
    struct batch *b = w->open;
    w->open = NULL;
    if (w->spooling) {
        spool_batch(w, b);
        collector_after_write(w->c); /* spooled is durable: ack it */
        return;
    }
    enqueue(w, b);
    pump(w);
}

static void on_flush_timer(evutil_socket_t fd, short what, void *arg)
{
    writer_flush(arg);
}

static int add_lines(struct writer *w, const char *lines, size_t len, uint32_t nlines,
                     struct writer_mark *const *marks, size_t nmarks)
{
    const struct collector_config *cfg = &w->c->cfg;
    if (w->open && (w->open->lines + nlines > (uint64_t)cfg->batch.lines ||
                    w->open->body.len + len > cfg->batch.bytes))
        writer_flush(w);
    if (!w->open && !(w->open = batch_new(w)))
        return -1;
    buf_put(&w->open->body, lines, len);
    w->open->lines += nlines;
    w->open->ts_sum_s += first_sample_time(lines, len) * nlines;
    w->pending_bytes += len;
    for (size_t i = 0; i < nmarks; i++)
        batch_hold(w->open, marks[i]);
    if (w->open->lines >= (uint64_t)cfg->batch.lines || w->open->body.len >= cfg->batch.bytes)
        writer_flush(w);
    return 0;
}

/* The longest run of whole lines from the start that fits one batch (at least one line). */
static size_t batch_piece(const struct collector_config *cfg, const char *lines, size_t len,
                          uint32_t *nlines)
{
    size_t cut = 0;
    uint32_t n = 0;
    while (cut < len && n < (uint64_t)cfg->batch.lines) {
        const char *nl = memchr(lines + cut, '\n', len - cut);
        size_t next = nl ? (size_t)(nl - lines) + 1 : len;
        if (n && next > cfg->batch.bytes)
            break;
        cut = next;
        n++;
    }
    *nlines = n;
    return cut;
}

/* A message's lines stay in one batch; a write larger than a batch (an HTTP body) is cut at
 * line ends into batches of batch.lines and batch.bytes, each holding the marks, so the store
 * gets requests of the size it is configured for and a refused piece is narrowed down alone. */
int writer_add(struct writer *w, const char *lines, size_t len, uint32_t nlines,
               struct writer_mark *const *marks, size_t nmarks)
{
    const struct collector_config *cfg = &w->c->cfg;
    if (w->pending_bytes + len > cfg->batch.max_pending_bytes)
        return -1;
    if (nlines <= (uint64_t)cfg->batch.lines && len <= cfg->batch.bytes)
        return add_lines(w, lines, len, nlines, marks, nmarks);
    uint32_t taken = 0;
    for (size_t off = 0; off < len;) {
        uint32_t n;
        size_t cut = batch_piece(cfg, lines + off, len - off, &n);
        if (add_lines(w, lines + off, cut, n, marks, nmarks)) {
            if (off == 0)
                return -1;
            /* Out of memory half way: the pieces taken are stored, but the marks must not
             * claim the rest: they are abandoned once those pieces are done. */
            for (size_t i = 0; i < nmarks; i++)
                marks[i]->lost = 1;
            w->c->stats.dropped_lines += nlines - taken;
            return 0;
        }
        off += cut;
        taken += n;
    }
    return 0;
}

uint64_t writer_pending_bytes(const struct writer *w)
{
    return w->pending_bytes;
}

const struct dsf_histogram *writer_age_histogram(const struct writer *w)
{
    return &w->age;
}

const struct spool *writer_spool(const struct writer *w)
{
    return w->spool_on ? &w->spool : NULL;
}

static int open_spool(struct writer *w, char *err, size_t errlen)
{
    const struct collector_config *c = &w->c->cfg;
    if (!*c->spool.dir)
        return 0;
    if (spool_open(&w->spool, c->spool.dir, c->spool.max_bytes, c->spool.fsync, err, errlen))
        return -1;
    w->spool_on = 1;
    w->spooling = w->spool.messages > 0; /* an earlier run's batches go first */
    log_info("spool at %s (cap %llu bytes%s)", c->spool.dir, (unsigned long long)c->spool.max_bytes,
             c->spool.fsync ? ", fsync" : "");
    return 0;
}

int writer_output_target(struct collector_config *c, char *url, size_t cap, char *err,
                         size_t errlen)
{
    const struct influx_write_target t = {.url = c->output.url,
                                          .api = c->output.api,
                                          .db = c->output.db,
                                          .rp = c->output.rp,
                                          .org = c->output.org,
                                          .bucket = c->output.bucket};
    /* Compressing costs more than it saves when the store is on this machine. */
    c->output.gzip = strcmp(c->output.gzip_mode, "auto") == 0
                         ? !influx_url_is_loopback(c->output.url)
                         : strcmp(c->output.gzip_mode, "true") == 0;
    return influx_write_url(&t, url, cap, err, errlen);
}

struct writer *writer_new(struct collector *c, char *err, size_t errlen)
{
    struct writer *w = calloc(1, sizeof(*w));
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->c = c;
    struct collector_config *cfg = &c->cfg;
    if (writer_output_target(cfg, w->url, sizeof(w->url), err, errlen) ||
        open_spool(w, err, errlen) ||
        dsf_histogram_init(&w->age, age_bounds, sizeof(age_bounds) / sizeof(age_bounds[0])) ||
        !(w->http = dsf_http_client_new(c->base))) {
        free(w);
        return NULL;
    }
    if (strcmp(cfg->output.api, "v2") == 0 && *cfg->output.token)
        snprintf(w->auth, sizeof(w->auth), "Authorization: Token %s", cfg->output.token);
    w->flush_timer = event_new(c->base, -1, EV_PERSIST, on_flush_timer, w);
    struct timeval tv = {(time_t)(c->cfg.batch.interval_ms / 1000),
                         (suseconds_t)(c->cfg.batch.interval_ms % 1000 * 1000)};
    event_add(w->flush_timer, &tv);
    log_info("writing to %s (%s%s)", w->url, c->cfg.output.api, c->cfg.output.gzip ? ", gzip" : "");
    replay_next(w);
    return w;
}

void writer_free(struct writer *w)
{
    if (!w)
        return;
    w->closing = 1;
    dsf_http_client_free(w->http);
    /* What is not stored is not acked: agents and Kafka send it again to the next run. */
    while (w->all) {
        struct batch *b = w->all;
        for (size_t i = 0; i < b->nmarks; i++)
            if (--b->marks[i]->refs == 0)
                free(b->marks[i]);
        batch_free(b);
    }
    if (w->flush_timer)
        event_free(w->flush_timer);
    buf_free(&w->gz);
    buf_free(&w->record.data); /* a held record's file is found again by the next run */
    while (w->nspare)
        buf_free(&w->spare[--w->nspare]);
    dsf_histogram_free(&w->age);
    free(w);
}
