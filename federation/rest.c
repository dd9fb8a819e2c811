#define DSF_MODULE "fed-rest"
#include "federation/rest.h"
#include "common/log.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ERR_BODY_MAX 400

struct fed_rest {
    CURL *easy;
    pthread_mutex_t mu;
    char *base, *user, *password, *auth_header, *user_agent;
    char *ca_file, *cert_file, *key_file;
    char *ca_pem, *cert_pem, *key_pem;
    size_t ca_pem_len, cert_pem_len, key_pem_len;
    int insecure, max_attempts, direct;
    long timeout_ms, connect_timeout_ms, backoff_ms, backoff_max_ms;
    size_t max_body;
    uint64_t rng;
    char curl_err[CURL_ERROR_SIZE];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static char *dup_mem(const char *p, size_t n)
{
    if (!p || !n)
        return NULL;
    char *d = malloc(n);
    if (d)
        memcpy(d, p, n);
    return d;
}

static long or_default(long v, long def)
{
    return v > 0 ? v : def;
}

static int copy_tls(struct fed_rest *r, const struct fed_rest_config *cfg)
{
    r->ca_file = dup_or_null(cfg->ca_file);
    r->cert_file = dup_or_null(cfg->cert_file);
    r->key_file = dup_or_null(cfg->key_file);
    r->ca_pem = dup_mem(cfg->ca_pem, cfg->ca_pem_len);
    r->cert_pem = dup_mem(cfg->cert_pem, cfg->cert_pem_len);
    r->key_pem = dup_mem(cfg->key_pem, cfg->key_pem_len);
    r->ca_pem_len = r->ca_pem ? cfg->ca_pem_len : 0;
    r->cert_pem_len = r->cert_pem ? cfg->cert_pem_len : 0;
    r->key_pem_len = r->key_pem ? cfg->key_pem_len : 0;
    if ((cfg->ca_file && !r->ca_file) || (cfg->cert_file && !r->cert_file) ||
        (cfg->key_file && !r->key_file) || (cfg->ca_pem_len && !r->ca_pem) ||
        (cfg->cert_pem_len && !r->cert_pem) || (cfg->key_pem_len && !r->key_pem))
        return -1;
    return 0;
}

static int copy_auth(struct fed_rest *r, const struct fed_rest_config *cfg)
{
    if (cfg->bearer_token && cfg->bearer_token[0]) {
        if (asprintf(&r->auth_header, "Authorization: Bearer %s", cfg->bearer_token) < 0) {
            r->auth_header = NULL;
            return -1;
        }
    }
    r->user = dup_or_null(cfg->basic_user);
    r->password = dup_or_null(cfg->basic_password ? cfg->basic_password : "");
    if (cfg->basic_user && !r->user)
        return -1;
    const char *ua = cfg->user_agent ? cfg->user_agent : "damselfly-federation/" DSF_VERSION;
    r->user_agent = strdup(ua);
    return r->user_agent ? 0 : -1;
}

static void copy_limits(struct fed_rest *r, const struct fed_rest_config *cfg)
{
    r->insecure = cfg->insecure;
    r->timeout_ms = or_default(cfg->timeout_ms, 10000);
    r->connect_timeout_ms = or_default(cfg->connect_timeout_ms, 5000);
    if (r->connect_timeout_ms > r->timeout_ms)
        r->connect_timeout_ms = r->timeout_ms;
    r->max_attempts = cfg->max_attempts > 0 ? cfg->max_attempts : 4;
    r->backoff_ms = or_default(cfg->backoff_ms, 200);
    r->backoff_max_ms = or_default(cfg->backoff_max_ms, 5000);
    r->max_body = cfg->max_body ? cfg->max_body : (size_t)64 << 20;
    r->direct = cfg->direct;
}

struct fed_rest *fed_rest_new(const struct fed_rest_config *cfg, char *err, size_t errlen)
{
    if (!cfg->base_url || strncmp(cfg->base_url, "http", 4) != 0) {
        snprintf(err, errlen, "REST client: base URL '%s' is not http:// or https://",
                 cfg->base_url ? cfg->base_url : "");
        return NULL;
    }
    if (cfg->bearer_token && strpbrk(cfg->bearer_token, "\r\n")) {
        /* It would end the Authorization header and start another. */
        snprintf(err, errlen, "REST client for %s: the bearer token contains a line break",
                 cfg->base_url);
        return NULL;
    }
    pthread_once(&curl_once, curl_init_once);
    struct fed_rest *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(err, errlen, "REST client: out of memory");
        return NULL;
    }
    pthread_mutex_init(&r->mu, NULL);
    r->base = strdup(cfg->base_url);
    if (r->base) {
        /* Paths start with '/': keep exactly one slash between base and path. */
        size_t n = strlen(r->base);
        while (n > 0 && r->base[n - 1] == '/')
            r->base[--n] = '\0';
    }
    r->easy = curl_easy_init();
    if (!r->base || !r->easy || copy_tls(r, cfg) || copy_auth(r, cfg)) {
        snprintf(err, errlen, "REST client for %s: out of memory", cfg->base_url);
        fed_rest_free(r);
        return NULL;
    }
    copy_limits(r, cfg);
    r->rng = (uint64_t)time(NULL) ^ ((uint64_t)(uintptr_t)r << 16) ^ 0x9e3779b97f4a7c15ULL;
    return r;
}

void fed_free_secret(char *p, size_t n)
{
    if (p && n)
        explicit_bzero(p, n);
    free(p);
}

void fed_rest_free(struct fed_rest *r)
{
    if (!r)
        return;
    if (r->easy)
        curl_easy_cleanup(r->easy);
    pthread_mutex_destroy(&r->mu);
    free(r->base);
    free(r->user);
    fed_free_secret(r->password, r->password ? strlen(r->password) : 0);
    fed_free_secret(r->auth_header, r->auth_header ? strlen(r->auth_header) : 0);
    free(r->user_agent);
    free(r->ca_file);
    free(r->cert_file);
    free(r->key_file);
    free(r->ca_pem);
    free(r->cert_pem);
    fed_free_secret(r->key_pem, r->key_pem_len);
    free(r);
}

const char *fed_rest_base(const struct fed_rest *r)
{
    return r->base;
}

void fed_rest_result_free(struct fed_rest_result *res)
{
    buf_free(&res->body);
    res->status = 0;
}

/* ---- one attempt ---- */

struct sink {
    struct dsf_buf *body;
    size_t max;
    int too_large;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct sink *s = arg;
    size_t len = size * n;
    if (s->body->len + len > s->max) {
        s->too_large = 1;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    buf_put(s->body, p, len);
    return s->body->oom ? 0 : len;
}

static void set_blob(CURL *e, CURLoption opt, char *data, size_t len)
{
    struct curl_blob blob = {.data = data, .len = len, .flags = CURL_BLOB_NOCOPY};
    curl_easy_setopt(e, opt, &blob);
}

static void set_tls(struct fed_rest *r)
{
    CURL *e = r->easy;
    if (r->ca_pem)
        set_blob(e, CURLOPT_CAINFO_BLOB, r->ca_pem, r->ca_pem_len);
    else if (r->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, r->ca_file);
    if (r->cert_pem)
        set_blob(e, CURLOPT_SSLCERT_BLOB, r->cert_pem, r->cert_pem_len);
    else if (r->cert_file)
        curl_easy_setopt(e, CURLOPT_SSLCERT, r->cert_file);
    if (r->key_pem)
        set_blob(e, CURLOPT_SSLKEY_BLOB, r->key_pem, r->key_pem_len);
    else if (r->key_file)
        curl_easy_setopt(e, CURLOPT_SSLKEY, r->key_file);
    if (r->cert_pem || r->cert_file)
        curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
    if (r->insecure) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
}

static void set_auth(struct fed_rest *r)
{
    if (!r->user)
        return;
    curl_easy_setopt(r->easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(r->easy, CURLOPT_USERNAME, r->user);
    curl_easy_setopt(r->easy, CURLOPT_PASSWORD, r->password);
}

static struct curl_slist *make_headers(struct fed_rest *r, const struct fed_rest_call *c)
{
    struct curl_slist *h = NULL, *t;
    char ct[160];
    snprintf(ct, sizeof(ct), "Content-Type: %s",
             c->content_type ? c->content_type : "application/json");
    /* Without a body, "Content-Type:" stops libcurl from announcing a form. */
    const char *lines[] = {"Accept: application/json", c->body ? ct : "Content-Type:",
                           /* libcurl would otherwise wait a second for "100 Continue" */
                           "Expect:", r->auth_header};
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        if (!lines[i])
            continue;
        t = curl_slist_append(h, lines[i]);
        if (!t) {
            curl_slist_free_all(h);
            return NULL;
        }
        h = t;
    }
    return h;
}

static void set_method(CURL *e, const struct fed_rest_call *c)
{
    if (c->body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(c->body));
    } else if (!strcmp(c->method, "POST") || !strcmp(c->method, "PUT") ||
               !strcmp(c->method, "PATCH")) {
        /* A body-less POST must still send Content-Length: 0. */
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
    }
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, c->method);
}

static CURLcode perform_once(struct fed_rest *r, const struct fed_rest_call *c, const char *url,
                             long timeout_ms, struct fed_rest_result *res, struct sink *sink)
{
    CURL *e = r->easy;
    struct curl_slist *headers = make_headers(r, c);
    if (!headers)
        return CURLE_OUT_OF_MEMORY;
    curl_easy_reset(e); /* keeps the connection cache: TLS sessions are reused */
    r->curl_err[0] = '\0';
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->curl_err);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     r->connect_timeout_ms < timeout_ms ? r->connect_timeout_ms : timeout_ms);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    if (r->direct)
        curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(e, CURLOPT_USERAGENT, r->user_agent);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, sink);
    set_method(e, c);
    set_auth(r);
    set_tls(r);
    CURLcode rc = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &res->status);
    curl_slist_free_all(headers);
    return rc;
}

/* ---- retry policy ---- */

static int network_retryable(CURLcode rc, int unsafe)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return 1; /* the request never left: safe to repeat whatever it does */
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return !unsafe;
    default:
        return 0;
    }
}

static int should_retry(int flags, CURLcode rc, long status)
{
    if (flags & FED_REST_NO_RETRY)
        return 0;
    if (rc != CURLE_OK)
        return network_retryable(rc, flags & FED_REST_UNSAFE);
    if (status == 429)
        return !(flags & FED_REST_NO_RETRY_429);
    return status >= 500 && !(flags & FED_REST_UNSAFE);
}

static uint64_t next_rand(struct fed_rest *r)
{
    /* xorshift64*: jitter only, not security */
    r->rng ^= r->rng >> 12;
    r->rng ^= r->rng << 25;
    r->rng ^= r->rng >> 27;
    return r->rng * 2685821657736338717ULL;
}

static long backoff_delay(struct fed_rest *r, int attempt)
{
    long d = r->backoff_ms;
    for (int i = 1; i < attempt && d < r->backoff_max_ms; i++)
        d *= 2;
    if (d > r->backoff_max_ms)
        d = r->backoff_max_ms;
    /* "Equal jitter": at least half the delay, so retries from many clients spread out
     * without ever hammering the server right away. */
    long half = d / 2;
    curl_off_t retry_after = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RETRY_AFTER, &retry_after);
    long wait = half + (long)(next_rand(r) % (uint64_t)(half + 1));
    if (retry_after > 0 && retry_after * 1000 > wait)
        wait =
            retry_after * 1000 < r->backoff_max_ms ? (long)retry_after * 1000 : r->backoff_max_ms;
    return wait;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* ---- messages ---- */

static void shorten(char *out, size_t cap, const char *in, size_t len)
{
    size_t o = 0;
    size_t lim = len < ERR_BODY_MAX ? len : ERR_BODY_MAX;
    for (size_t i = 0; i < lim && o + 1 < cap; i++) {
        unsigned char ch = (unsigned char)in[i];
        out[o++] = ch == '\n' || ch == '\r' || ch == '\t' ? ' ' : ch < 0x20 ? '?' : (char)ch;
    }
    if (len > lim && o + 4 < cap) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* The answer's body, shortened ("(empty body)" when there is none), and how many attempts
 * it took when more than one: the part of an error message that describes an answer. */
static const char *answer_text(const struct fed_rest_result *res, char *out, size_t len)
{
    char body[ERR_BODY_MAX + 8];
    if (res->body.len)
        shorten(body, sizeof(body), res->body.data, res->body.len);
    else
        snprintf(body, sizeof(body), "(empty body)");
    char tail[48] = "";
    if (res->attempts > 1)
        snprintf(tail, sizeof(tail), " (after %d attempts)", res->attempts);
    snprintf(out, len, "%s%s", body, tail);
    return out;
}

static void describe_answer(const char *url, const struct fed_rest_call *c,
                            const struct fed_rest_result *res, char *err, size_t errlen)
{
    if (!err)
        return;
    char body[ERR_BODY_MAX + 64];
    snprintf(err, errlen, "%s %s: %ld: %s", c->method, url, res->status,
             answer_text(res, body, sizeof(body)));
}

static void describe_failure(struct fed_rest *r, const char *url, const struct fed_rest_call *c,
                             CURLcode rc, long timeout_ms, const struct sink *sink,
                             struct fed_rest_result *res, char *err, size_t errlen)
{
    char what[CURL_ERROR_SIZE + 64];
    res->timed_out = rc == CURLE_OPERATION_TIMEDOUT;
    if (res->timed_out)
        snprintf(what, sizeof(what), "timed out after %ld ms", timeout_ms);
    else if (sink->too_large)
        snprintf(what, sizeof(what), "response larger than %zu bytes", r->max_body);
    else
        snprintf(what, sizeof(what), "%s", r->curl_err[0] ? r->curl_err : curl_easy_strerror(rc));
    char tail[48] = "";
    if (res->attempts > 1)
        snprintf(tail, sizeof(tail), " (%d attempts)", res->attempts);
    snprintf(res->reason, sizeof(res->reason), "%s%s", what, tail);
    if (err)
        snprintf(err, errlen, "%s %s: %s", c->method, url, res->reason);
}

void fed_rest_describe(const struct fed_rest *r, const struct fed_rest_call *call,
                       const struct fed_rest_result *res, char *err, size_t errlen)
{
    char *url = NULL;
    if (asprintf(&url, "%s%s", r->base, call->path) < 0)
        url = NULL;
    describe_answer(url ? url : call->path, call, res, err, errlen);
    free(url);
}

void fed_rest_call_name(const struct fed_rest *r, const struct fed_rest_call *call, char *out,
                        size_t len)
{
    int n = snprintf(out, len, "%s %s%s", call->method, r->base, call->path);
    if (n < 0 || (size_t)n >= len)
        snprintf(out, len, "%s %s", call->method, call->path);
}

int fed_rest_fail(struct fed_error *err, const struct fed_rest *r, const struct fed_rest_call *call,
                  const struct fed_rest_result *res)
{
    char name[sizeof(((struct fed_error *)0)->call)];
    fed_rest_call_name(r, call, name, sizeof(name));
    if (!res->status)
        return fed_fail(err, res->timed_out ? FED_ETIMEOUT : FED_EBACKEND, name, 0, "%s",
                        res->reason[0] ? res->reason : "no answer");
    char body[ERR_BODY_MAX + 64];
    return fed_fail(err, res->status == 404 ? FED_ENOTFOUND : FED_EBACKEND, name, (int)res->status,
                    "%s", answer_text(res, body, sizeof(body)));
}

/* ---- the call ---- */

static int run_attempts(struct fed_rest *r, const struct fed_rest_call *c, const char *url,
                        struct fed_rest_result *res, char *err, size_t errlen)
{
    long timeout_ms = c->timeout_ms > 0 ? c->timeout_ms : r->timeout_ms;
    int max = (c->flags & FED_REST_NO_RETRY) ? 1 : r->max_attempts;
    for (int attempt = 1;; attempt++) {
        buf_reset(&res->body);
        res->status = 0;
        res->attempts = attempt;
        res->timed_out = 0;
        res->reason[0] = '\0';
        struct sink sink = {.body = &res->body, .max = r->max_body};
        CURLcode rc = perform_once(r, c, url, timeout_ms, res, &sink);
        if (rc != CURLE_OK)
            res->status = 0; /* a half-read answer is no answer */
        if (rc == CURLE_OK && res->status >= 200 && res->status < 300)
            return 0;
        if (attempt >= max || !should_retry(c->flags, rc, res->status)) {
            if (rc != CURLE_OK)
                describe_failure(r, url, c, rc, timeout_ms, &sink, res, err, errlen);
            else
                describe_answer(url, c, res, err, errlen);
            return -1;
        }
        long wait = backoff_delay(r, attempt);
        log_debug("%s %s: %s, retry %d/%d in %ld ms", c->method, url,
                  rc != CURLE_OK ? curl_easy_strerror(rc) : "server error", attempt, max - 1, wait);
        sleep_ms(wait);
    }
}

int fed_rest_do(struct fed_rest *r, const struct fed_rest_call *c, struct fed_rest_result *res,
                char *err, size_t errlen)
{
    buf_reset(&res->body);
    res->status = 0;
    res->attempts = 0;
    res->timed_out = 0;
    res->reason[0] = '\0';
    char *url = NULL;
    if (!c->method || !c->path || c->path[0] != '/' ||
        asprintf(&url, "%s%s", r->base, c->path) < 0) {
        snprintf(res->reason, sizeof(res->reason), "bad request path");
        if (err)
            snprintf(err, errlen, "%s %s%s: bad request path", c->method ? c->method : "?", r->base,
                     c->path ? c->path : "");
        return -1;
    }
    pthread_mutex_lock(&r->mu);
    int rc = run_attempts(r, c, url, res, err, errlen);
    pthread_mutex_unlock(&r->mu);
    if (rc == 0)
        log_debug("%s %s: %ld (%zu bytes)", c->method, url, res->status, res->body.len);
    free(url);
    return rc;
}

/* ---- helpers ---- */

void fed_rest_escape(struct dsf_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            buf_putc(b, (char)ch);
        } else {
            buf_putc(b, '%');
            buf_putc(b, hex[ch >> 4]);
            buf_putc(b, hex[ch & 15]);
        }
    }
}
