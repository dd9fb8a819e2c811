/*
 * HTTP client on the event loop: libcurl's multi interface driven by libevent's socket and
 * timer callbacks, so many requests are in flight at once without threads. Used to write to
 * the time-series store and to call webhooks and APIs.
 */
#ifndef DSF_HTTP_CLIENT_H
#define DSF_HTTP_CLIENT_H

#include <stddef.h>

struct event_base;
struct dsf_http_client;

struct dsf_http_response {
    long status;      /* 0 when no answer came (network error or timeout) */
    const char *body; /* NUL-terminated */
    size_t len;
    const char *error;  /* libcurl's message when status is 0 */
    long retry_after_s; /* Retry-After header in seconds, -1 if none */
};

typedef void (*dsf_http_done)(void *arg, const struct dsf_http_response *r);

struct dsf_http_request {
    const char *method; /* GET, POST, PUT, PATCH, DELETE */
    const char *url;
    const char *const *headers; /* "Name: value", NULL-terminated, may be NULL */
    const void *body;           /* copied */
    size_t len;
    long timeout_ms;
    const char *user, *password; /* basic auth, or NULL */
    const char *ca_file;         /* extra trust, or NULL */
    int insecure;                /* skip TLS verification (tests only) */
};

struct dsf_http_client *dsf_http_client_new(struct event_base *base);
/* Starts a request; done runs on the loop when it ends (always exactly once, also when the
 * client is freed first, then with status 0 and error "cancelled"). 0, or -1 on a bad
 * request (done is not called). */
int dsf_http_client_send(struct dsf_http_client *c, const struct dsf_http_request *req,
                         dsf_http_done done, void *arg);
size_t dsf_http_client_in_flight(const struct dsf_http_client *c);
void dsf_http_client_free(struct dsf_http_client *c);

#endif
