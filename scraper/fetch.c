/*
 * One GET per scrape, many in flight, on the loop's curl multi (common/curl_loop.h). The body
 * is kept whole up to scrape.max_body; the outcome is one of the scrape results.
 */
#define DSF_MODULE "fetch"
#include "common/curl_loop.h"
#include "common/loop.h"
#include "scraper/scraper.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct scrape_target *t = arg;
    size_t len = size * n;
    if (t->body.len + len > t->owner->cfg.max_body_bytes) {
        t->body_too_large = 1;
        return 0; /* ends the transfer with CURLE_WRITE_ERROR */
    }
    buf_put(&t->body, data, len);
    return t->body.oom ? 0 : len;
}

static enum scrape_result classify(struct scrape_target *t, CURLcode rc, long status)
{
    if (t->body_too_large)
        return SCRAPE_TOO_LARGE;
    switch (rc) {
    case CURLE_OK:
        return status >= 200 && status < 300 ? SCRAPE_OK : SCRAPE_HTTP_ERROR;
    case CURLE_OPERATION_TIMEDOUT:
        return SCRAPE_TIMEOUT;
    case CURLE_COULDNT_CONNECT:
        return SCRAPE_REFUSED;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
        return SCRAPE_TLS;
    default:
        return SCRAPE_ERROR;
    }
}

static void finished(void *ctx, CURL *easy, CURLcode rc)
{
    struct scraper *s = ctx;
    struct scrape_target *t = NULL;
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    dsf_curl_loop_remove(s->curl, easy);
    curl_easy_cleanup(easy);
    curl_slist_free_all(t->headers);
    t->headers = NULL;
    t->easy = NULL;
    enum scrape_result r = classify(t, rc, status);
    char detail[300];
    if (r == SCRAPE_OK) {
        convert_body(t, t->body.data ? t->body.data : "", t->body.len);
        snprintf(detail, sizeof(detail), "ok");
    } else if (r == SCRAPE_HTTP_ERROR) {
        snprintf(detail, sizeof(detail), "HTTP status %ld", status);
    } else {
        snprintf(detail, sizeof(detail), "%s", curl_easy_strerror(rc));
    }
    buf_free(&t->body); /* not kept between scrapes: many targets, each body large once */
    target_scraped(t, r, detail);
}

static int add_headers(struct scrape_target *t, CURL *e)
{
    const struct scraper *s = t->owner;
    if (t->mode == SCRAPE_PULL)
        return *s->token_header && !(t->headers = curl_slist_append(NULL, s->token_header)) ? -1
                                                                                            : 0;
    t->headers = curl_slist_append(NULL, "Accept: text/plain;version=0.0.4");
    return t->headers ? credentials_apply(s, e, &t->headers) : -1;
}

int fetch_start(struct scrape_target *t)
{
    struct scraper *s = t->owner;
    CURL *e = curl_easy_init();
    if (!e)
        return -1;
    buf_reset(&t->body);
    t->body_too_large = 0;
    t->started_ns = dsf_now_ns();
    t->started_ms = dsf_mono_ms();
    curl_easy_setopt(e, CURLOPT_URL, t->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)s->cfg.timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""); /* gzip when the exporter offers it */
    curl_easy_setopt(e, CURLOPT_USERAGENT, "damselfly-scraper/" DSF_VERSION);
    if (*s->cfg.tls_ca)
        curl_easy_setopt(e, CURLOPT_CAINFO, s->cfg.tls_ca);
    if (s->cfg.tls_insecure) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    /* The secrets may change (SIGHUP, scraper_token_refresh): each transfer gets its own list. */
    if (add_headers(t, e) < 0) {
        curl_easy_cleanup(e);
        curl_slist_free_all(t->headers);
        t->headers = NULL;
        return -1;
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    if (dsf_curl_loop_add(s->curl, e) < 0) {
        curl_easy_cleanup(e);
        curl_slist_free_all(t->headers);
        t->headers = NULL;
        return -1;
    }
    t->easy = e;
    return 0;
}

void fetch_cancel(struct scrape_target *t)
{
    if (!t->easy)
        return;
    dsf_curl_loop_remove(t->owner->curl, t->easy);
    curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->headers);
    t->headers = NULL;
    t->easy = NULL;
}

int fetch_init(struct scraper *s, char *err, size_t errlen)
{
    s->curl = dsf_curl_loop_new(s->base, finished, s);
    if (!s->curl) {
        snprintf(err, errlen, "cannot start libcurl's multi interface");
        return -1;
    }
    return 0;
}

void fetch_free(struct scraper *s)
{
    if (s->curl)
        dsf_curl_loop_free(s->curl);
    s->curl = NULL;
}
