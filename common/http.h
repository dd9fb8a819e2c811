/*
 * HTTP server glue on libevent's evhttp: listen address parsing, optional TLS, and
 * authentication in front of the routes: a bearer token or basic auth for every route but
 * the public ones (health probes), or, without those, a bearer token for writes only (every
 * method but GET and HEAD), so reading stays open and changing needs the token.
 */
#ifndef DSF_HTTP_H
#define DSF_HTTP_H

#include <stddef.h>
#include <stdio.h>

struct dsf_buf;
struct event_base;
struct evhttp_request;

struct dsf_http_options {
    const char *listen;                /* "127.0.0.1:9100", "[::1]:9100", ":9100" (all) */
    const char *tls_cert, *tls_key;    /* PEM files: both set turns HTTPS on */
    const char *bearer_token;          /* every request needs "Authorization: Bearer <token>" */
    const char *basic_user, *basic_pw; /* or basic auth */
    /* Without either, GET and HEAD are open and a write (any other method) needs the token
     * of dsf_http_set_write_token: refused until there is one, unless open_writes (no
     * authentication at all). */
    int open_writes;
};

/* Route flags. */
#define DSF_HTTP_PUBLIC 1 /* served without authentication (/healthz) */
#define DSF_HTTP_WRITES 2 /* takes writes (POST, PUT, PATCH, DELETE); elsewhere they get 405 */
/* The handler authenticates the request itself (the web console's pages: a browser's page
 * load carries the session cookie but cannot carry a header); listed as "auth". */
#define DSF_HTTP_SELF_AUTH 4
/* InfluxDB's ways of carrying the token are accepted besides the daemon's own:
 * "Authorization: Token T", "Bearer T", basic auth with T as the password (any user name)
 * and the v1 query parameters u= and p=T; a refusal is a 401 with InfluxDB's error body
 * (v1 {"error":...}, v2 {"code":"unauthorized",...} under /api/v2/). The intake routes that
 * InfluxDB clients (Telegraf's outputs) write to. */
#define DSF_HTTP_INFLUX_AUTH 8

typedef void (*dsf_http_handler)(struct evhttp_request *req, void *arg);

struct dsf_http_server;
struct dsf_http_server *dsf_http_new(struct event_base *base, const struct dsf_http_options *opt,
                                     char *err, size_t errlen);
/* flags: DSF_HTTP_PUBLIC, DSF_HTTP_WRITES, or 0 for a read-only route behind the
 * authentication. A path ending in a slash and a star ("/api/v1/rules/" then "*") takes every
 * path below it; the handler reads the tail from the request's URI. */
int dsf_http_route(struct dsf_http_server *s, const char *path, dsf_http_handler fn, void *arg,
                   int flags);
/* One line per route, in the order they were added: the path as registered (slash-star for
 * a prefix route), tab, the methods that reach its handler ("GET,HEAD", or with the writes
 * "GET,HEAD,POST,PUT,PATCH,DELETE"), tab, "public" or "auth". The daemons' --print-routes;
 * tests/integration/docs_openapi_routes.sh compares it with schemas/openapi.yaml. */
void dsf_http_print_routes(const struct dsf_http_server *s, FILE *out);
/* 1 when a route takes writes (so a write token is needed). */
int dsf_http_has_write_routes(const struct dsf_http_server *s);
/* The bearer token writes need when neither bearer_token nor basic auth guards everything.
 * 0, or -1 out of memory (writes stay refused). */
int dsf_http_set_write_token(struct dsf_http_server *s, const char *token);
/* After dsf_http_set_write_token: the token guards reads too (every route but the public
 * ones), for an API whose reads show what only operators may see. */
void dsf_http_token_for_reads(struct dsf_http_server *s);
/* A second way in beside the token: fn(arg, req) answers 1 when req carries a valid session
 * (the web console's cookie). Asked only when the request also carries the header
 * "X-Damselfly-Console: 1", which a cross-site form cannot set (CSRF). */
typedef int (*dsf_http_session_fn)(void *arg, struct evhttp_request *req);
void dsf_http_set_session_check(struct dsf_http_server *s, dsf_http_session_fn fn, void *arg);
/* 1 when token is the bearer token (compared in constant time); 0 without one. */
int dsf_http_token_matches(const struct dsf_http_server *s, const char *token);
/* 1 when req carries the expected Authorization header. */
int dsf_http_bearer_ok(const struct dsf_http_server *s, struct evhttp_request *req);
/* Counts a refusal a DSF_HTTP_SELF_AUTH handler answered itself (reason unauthorized). */
void dsf_http_count_unauthorized(struct dsf_http_server *s);
/* Raises (or lowers) the largest request body read; a larger one gets 413 before it is read
 * (the default is 4 MiB). */
void dsf_http_set_max_body(struct dsf_http_server *s, size_t bytes);
/* 1 when the listener serves HTTPS. */
int dsf_http_is_tls(const struct dsf_http_server *s);
/* damselfly_http_requests_refused_total{reason="unauthorized"|"read_only"}. */
void dsf_http_render_metrics(const struct dsf_http_server *s, struct dsf_buf *out);
/* The port actually bound (useful with port 0). */
int dsf_http_port(const struct dsf_http_server *s);
void dsf_http_free(struct dsf_http_server *s);

void dsf_http_reply(struct evhttp_request *req, int code, const char *content_type,
                    const void *body, size_t len);
/* Answers with o as compact JSON; o is consumed (a reference stolen). */
struct json_t;
void dsf_http_reply_json(struct evhttp_request *req, int code, struct json_t *o);
/* Answers {"error": message} with code. */
void dsf_http_reply_error(struct evhttp_request *req, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The request body as a JSON object (an empty body is {} when allow_empty); NULL after
 * answering 413 (beyond max bytes) or 400 (not a JSON object, saying why). */
struct json_t *dsf_http_body_json(struct evhttp_request *req, size_t max, int allow_empty);
/* 1 for GET and HEAD; otherwise answers 405 and returns 0. */
int dsf_http_only_get(struct evhttp_request *req);
/* The write token kept in a file: read from path when it exists (surrounding whitespace
 * ignored; 16 to 256 printable characters), else created there with mode 0600 holding 32
 * random bytes in hex. *created says which. token must hold 257 bytes. 0, or -1 with err
 * naming the file. */
#define DSF_HTTP_TOKEN_MAX 256
/* bytes random bytes (at most 32, from getrandom) as 2 * bytes hex digits and a NUL in out.
 * 0, or -1 when the kernel gives none. */
int dsf_random_hex(char *out, size_t bytes);
int dsf_http_token_file(const char *path, char *token, int *created, char *err, size_t errlen);
/* A client's token for another daemon's API, from a file that must exist (the same checks,
 * nothing created). 0, or -1 with err naming the file. */
int dsf_http_token_read(const char *path, char *token, char *err, size_t errlen);

/* A reply that waits on the loop (the store's answer, another daemon's): the client may leave
 * and the server may be torn down meanwhile. The owner keeps the struct until it replied or
 * gave up; req is NULL once the request went with its connection. */
struct dsf_http_deferred {
    struct evhttp_request *req;
};
void dsf_http_defer(struct dsf_http_deferred *d, struct evhttp_request *req);
/* The request, still there to be answered, or NULL; either way no longer watched. */
struct evhttp_request *dsf_http_deferred_take(struct dsf_http_deferred *d);
/* Answers with o (taken) when the request is still there. */
void dsf_http_deferred_reply_json(struct dsf_http_deferred *d, int code, struct json_t *o);

/* Splits "host:port" / "[v6]:port" / ":port"; 0 or -1. host is "" for all addresses. */
int dsf_split_hostport(const char *s, char *host, size_t hostcap, int *port);

#endif
