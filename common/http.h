/*
 * HTTP server glue on libevent's evhttp: listen address parsing, optional TLS, bearer or
 * basic authentication in front of every route except the public ones (health probes).
 */
#ifndef DSF_HTTP_H
#define DSF_HTTP_H

#include <stddef.h>

struct event_base;
struct evhttp_request;

struct dsf_http_options {
    const char *listen;                /* "127.0.0.1:9100", "[::1]:9100", ":9100" (all) */
    const char *tls_cert, *tls_key;    /* PEM files: both set turns HTTPS on */
    const char *bearer_token;          /* require "Authorization: Bearer <token>" */
    const char *basic_user, *basic_pw; /* or require basic auth */
};

typedef void (*dsf_http_handler)(struct evhttp_request *req, void *arg);

struct dsf_http_server;
struct dsf_http_server *dsf_http_new(struct event_base *base, const struct dsf_http_options *opt,
                                     char *err, size_t errlen);
/* public: served without authentication (for /healthz). A path ending in a slash and a star
 * ("/api/v1/rules/" then "*") takes every path below it; the handler reads the tail from the
 * request's URI. */
int dsf_http_route(struct dsf_http_server *s, const char *path, dsf_http_handler fn, void *arg,
                   int public);
/* The port actually bound (useful with port 0). */
int dsf_http_port(const struct dsf_http_server *s);
void dsf_http_free(struct dsf_http_server *s);

void dsf_http_reply(struct evhttp_request *req, int code, const char *content_type,
                    const void *body, size_t len);
/* 1 for GET and HEAD; otherwise answers 405 and returns 0. */
int dsf_http_only_get(struct evhttp_request *req);
/* Splits "host:port" / "[v6]:port" / ":port"; 0 or -1. host is "" for all addresses. */
int dsf_split_hostport(const char *s, char *host, size_t hostcap, int *port);

#endif
