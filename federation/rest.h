/*
 * A small blocking REST client on libcurl's easy interface, shared by the Tumblebug and
 * Kubernetes drivers: one base URL, one way to authenticate, TLS material from files or
 * from memory (kubeconfig *-data fields), a timeout per attempt and bounded retries with
 * exponential backoff and jitter.
 *
 * Every failure is reported as one line that names the call, the status and the body:
 *   PATCH https://10.0.0.1:6443/api/v1/nodes/n1: 404: {"kind":"Status",...}
 *   GET http://tb:1323/tumblebug/ns/ns1/mci/m1: timed out after 2000 ms (3 attempts)
 */
#ifndef DSF_FED_REST_H
#define DSF_FED_REST_H

#include "common/buf.h"
#include "federation/federation.h"

#include <stddef.h>

struct fed_rest_config {
    const char *base_url; /* "https://10.0.0.1:6443"; paths are appended to it */
    const char *basic_user, *basic_password;
    const char *bearer_token;
    /* TLS: a PEM file or PEM bytes in memory for each of CA, client certificate, key. */
    const char *ca_file, *cert_file, *key_file;
    const char *ca_pem, *cert_pem, *key_pem;
    size_t ca_pem_len, cert_pem_len, key_pem_len;
    int insecure;            /* skip server certificate verification */
    long timeout_ms;         /* whole attempt; default 10000 */
    long connect_timeout_ms; /* default 5000 (capped by timeout_ms) */
    int max_attempts;        /* default 4; 1 = no retry */
    long backoff_ms;         /* first retry delay before jitter; default 200 */
    long backoff_max_ms;     /* default 5000 */
    size_t max_body;         /* largest response kept; default 64 MiB */
    const char *user_agent;  /* default "damselfly-federation/<version>" */
    int direct;              /* never through a proxy from the environment (loopback) */
};

/* Call flags. */
enum {
    FED_REST_NO_RETRY_429 = 1 << 0, /* the caller handles 429 itself (eviction, PDBs) */
    /* Not idempotent (creates, scale-out): retry only when the request surely never reached
     * the server (connection refused, name not resolved) or was refused with 429. */
    FED_REST_UNSAFE = 1 << 1,
    FED_REST_NO_RETRY = 1 << 2, /* one attempt whatever happens */
};

struct fed_rest_call {
    const char *method;       /* GET, POST, PUT, PATCH, DELETE */
    const char *path;         /* appended to base_url, query included, already escaped */
    const char *content_type; /* default "application/json" when there is a body */
    const char *body;         /* NUL-terminated, or NULL */
    int flags;
    long timeout_ms; /* 0: the client's default */
};

struct fed_rest_result {
    long status;         /* HTTP status; 0 when no response arrived */
    struct dsf_buf body; /* response body (NUL-terminated through buf_cstr) */
    int attempts;
    int timed_out;    /* the last attempt ran out of time */
    char reason[320]; /* why no answer arrived ("" when one did) */
};

struct fed_rest;

struct fed_rest *fed_rest_new(const struct fed_rest_config *cfg, char *err, size_t errlen);
void fed_rest_free(struct fed_rest *r);

/*
 * Performs the call with retries. Returns 0 for a 2xx answer. Otherwise -1 with the one-line
 * error in err (may be NULL); res->status and res->body still hold the last answer (status 0 when
 * the server never answered), so callers can branch on 404 or 429. res is reset first; free it with
 * fed_rest_result_free. Thread-safe: calls on one client are serialised.
 */
int fed_rest_do(struct fed_rest *r, const struct fed_rest_call *call, struct fed_rest_result *res,
                char *err, size_t errlen);
void fed_rest_result_free(struct fed_rest_result *res);

/* Frees a password, token or key after overwriting its n bytes: no copy of it is left in
 * freed memory. */
void fed_free_secret(char *p, size_t n);

/* The base URL the client was made with (for messages). */
const char *fed_rest_base(const struct fed_rest *r);

/* Appends s percent-encoded as one path segment or query value (RFC 3986 unreserved kept). */
void fed_rest_escape(struct dsf_buf *b, const char *s);

/* Writes "METHOD URL: STATUS: BODY" for an answer the caller rejects (body shortened,
 * control characters replaced). */
void fed_rest_describe(const struct fed_rest *r, const struct fed_rest_call *call,
                       const struct fed_rest_result *res, char *err, size_t errlen);

/* "METHOD URL" (or "METHOD path" when the URL does not fit) for fed_error.call. */
void fed_rest_call_name(const struct fed_rest *r, const struct fed_rest_call *call, char *out,
                        size_t len);
/*
 * Fills a fed_error from a failed call and returns -1: call "METHOD URL", the HTTP status
 * and the body (shortened), or the network reason. 404 is FED_ENOTFOUND, a timeout
 * FED_ETIMEOUT, anything else FED_EBACKEND.
 */
int fed_rest_fail(struct fed_error *err, const struct fed_rest *r, const struct fed_rest_call *call,
                  const struct fed_rest_result *res);

#endif
