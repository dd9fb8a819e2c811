#define DSF_MODULE "http"
#include "common/http.h"
#include "common/base64.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/metrics.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef DSF_HAVE_TLS
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#endif

struct route {
    struct dsf_http_server *server;
    dsf_http_handler fn;
    void *arg;
    int flags;    /* DSF_HTTP_PUBLIC, DSF_HTTP_WRITES */
    char *path;   /* as registered, for dsf_http_print_routes */
    char *prefix; /* a route ending in slash-star: every path under its base */
};

struct dsf_http_server {
    struct evhttp *http;
    struct evhttp_bound_socket *sock;
    char *expected_auth; /* full Authorization header value, or NULL */
    int guard_reads;     /* expected_auth guards every route but the public ones */
    int open_writes;     /* no authentication at all */
    int tls;
    dsf_http_session_fn session_fn;
    void *session_arg;
    uint64_t refused_unauthorized, refused_read_only;
    struct route *routes[32];
    size_t nroutes;
#ifdef DSF_HAVE_TLS
    SSL_CTX *ssl;
#endif
};

int dsf_split_hostport(const char *s, char *host, size_t hostcap, int *port)
{
    const char *colon;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':')
            return -1;
        snprintf(host, hostcap, "%.*s", (int)(end - s - 1), s + 1);
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -1;
        snprintf(host, hostcap, "%.*s", (int)(colon - s), s);
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end || p < 0 || p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}

int dsf_http_only_get(struct evhttp_request *req)
{
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD)
        return 1;
    const char *msg = "only GET is supported here\n";
    dsf_http_reply(req, 405, "text/plain", msg, strlen(msg));
    return 0;
}

void dsf_http_reply(struct evhttp_request *req, int code, const char *content_type,
                    const void *body, size_t len)
{
    struct evbuffer *out = evbuffer_new();
    if (!out) {
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    if (content_type)
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", content_type);
    evbuffer_add(out, body, len);
    const char *reason = code == 200   ? "OK"
                         : code == 204 ? "No Content"
                         : code == 302 ? "Found"
                         : code == 303 ? "See Other"
                         : code == 304 ? "Not Modified"
                         : code == 400 ? "Bad Request"
                         : code == 401 ? "Unauthorized"
                         : code == 404 ? "Not Found"
                         : code == 405 ? "Method Not Allowed"
                         : code == 409 ? "Conflict"
                         : code == 413 ? "Payload Too Large"
                         : code == 501 ? "Not Implemented"
                         : code == 503 ? "Service Unavailable"
                                       : "Error";
    evhttp_send_reply(req, code, reason, out);
    evbuffer_free(out);
}

void dsf_http_reply_json(struct evhttp_request *req, int code, json_t *o)
{
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    dsf_http_reply(req, code, "application/json", text ? text : "{}", text ? strlen(text) : 2);
    free(text);
}

void dsf_http_reply_error(struct evhttp_request *req, int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    dsf_http_reply_json(req, code, json_pack("{s:s}", "error", msg));
}

json_t *dsf_http_body_json(struct evhttp_request *req, size_t max, int allow_empty)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len > max) {
        dsf_http_reply_error(req, 413, "body larger than %zu bytes", max);
        return NULL;
    }
    if (len == 0 && allow_empty)
        return json_object();
    json_error_t jerr;
    json_t *o = json_loadb((const char *)evbuffer_pullup(in, (ssize_t)len), len, 0, &jerr);
    if (!json_is_object(o)) {
        dsf_http_reply_error(req, 400, "malformed JSON body: %s",
                             o ? "expected an object" : jerr.text);
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Compares in time independent of where the first difference is. */
static int same_secret(const char *a, const char *b, size_t n)
{
    unsigned char diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

/* A missing expected value (a write token not set yet) authorises nothing. */
int dsf_http_bearer_ok(const struct dsf_http_server *s, struct evhttp_request *req)
{
    if (!s->expected_auth)
        return 0;
    const char *got = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    size_t want = strlen(s->expected_auth);
    if (!got || strlen(got) != want)
        return 0;
    return same_secret(got, s->expected_auth, want);
}

static int authorised(const struct dsf_http_server *s, struct evhttp_request *req)
{
    if (dsf_http_bearer_ok(s, req))
        return 1;
    if (!s->session_fn || !s->expected_auth)
        return 0;
    const char *console =
        evhttp_find_header(evhttp_request_get_input_headers(req), "X-Damselfly-Console");
    return console && strcmp(console, "1") == 0 && s->session_fn(s->session_arg, req);
}

void dsf_http_set_session_check(struct dsf_http_server *s, dsf_http_session_fn fn, void *arg)
{
    s->session_fn = fn;
    s->session_arg = arg;
}

int dsf_http_token_matches(const struct dsf_http_server *s, const char *token)
{
    /* The same comparison as the header's, so a login and an API call agree. */
    if (!s->expected_auth || strncmp(s->expected_auth, "Bearer ", 7) != 0)
        return 0;
    size_t want = strlen(s->expected_auth) - 7;
    return strlen(token) == want && same_secret(token, s->expected_auth + 7, want);
}

void dsf_http_count_unauthorized(struct dsf_http_server *s)
{
    dsf_count(&s->refused_unauthorized, 1);
}

void dsf_http_set_max_body(struct dsf_http_server *s, size_t bytes)
{
    evhttp_set_max_body_size(s->http, (ev_ssize_t)bytes);
}

int dsf_http_is_tls(const struct dsf_http_server *s)
{
    return s->tls;
}

static void refuse_unauthorized(struct dsf_http_server *s, struct evhttp_request *req)
{
    int basic = s->expected_auth && strncmp(s->expected_auth, "Basic", 5) == 0;
    evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                      basic ? "Basic realm=\"damselfly\"" : "Bearer realm=\"damselfly\"");
    const char *msg =
        s->guard_reads
            ? "{\"error\":\"authentication required\"}\n"
            : "{\"error\":\"authentication required: this request changes something and needs "
              "'Authorization: Bearer TOKEN' (the daemon logs where its token file is: "
              "http.token_file)\"}\n";
    dsf_count(&s->refused_unauthorized, 1);
    dsf_http_reply(req, 401, "application/json", msg, strlen(msg));
}

static char *basic_header(const char *user, const char *pw);

/* The token a v1 client put in the query (p=, u= ignored), or in basic auth as the
 * password, or v2's "Token T": copied to out (DSF_HTTP_TOKEN_MAX + 1 bytes). 0, or -1. */
static int influx_token(struct evhttp_request *req, char *out)
{
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    const char *given = NULL;
    char *decoded = NULL;
    if (auth && strncmp(auth, "Token ", 6) == 0) {
        given = auth + 6;
    } else if (auth && strncmp(auth, "Basic ", 6) == 0) {
        size_t n;
        decoded = dsf_base64_decode(auth + 6, strlen(auth + 6), &n);
        char *colon = decoded ? memchr(decoded, ':', n) : NULL;
        given = colon ? colon + 1 : NULL;
    }
    struct evkeyvalq query = {0};
    const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    if (!given && q && evhttp_parse_query_str(q, &query) == 0)
        given = evhttp_find_header(&query, "p");
    int ok = given && strlen(given) <= DSF_HTTP_TOKEN_MAX;
    if (ok)
        snprintf(out, DSF_HTTP_TOKEN_MAX + 1, "%s", given);
    evhttp_clear_headers(&query);
    free(decoded);
    return ok ? 0 : -1;
}

/* InfluxDB's credential forms for the daemon's bearer token; with basic auth configured,
 * v1's u= and p= stand for the user name and password. */
static int influx_authorised(const struct dsf_http_server *s, struct evhttp_request *req)
{
    if (authorised(s, req))
        return 1;
    if (s->expected_auth && strncmp(s->expected_auth, "Basic ", 6) == 0) {
        struct evkeyvalq query = {0};
        const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
        int ok = 0;
        if (q && evhttp_parse_query_str(q, &query) == 0 && evhttp_find_header(&query, "u") &&
            evhttp_find_header(&query, "p")) {
            char *want =
                basic_header(evhttp_find_header(&query, "u"), evhttp_find_header(&query, "p"));
            ok = want && strlen(want) == strlen(s->expected_auth) &&
                 same_secret(want, s->expected_auth, strlen(want));
            free(want);
        }
        evhttp_clear_headers(&query);
        return ok;
    }
    char token[DSF_HTTP_TOKEN_MAX + 1];
    return influx_token(req, token) == 0 && dsf_http_token_matches(s, token);
}

static void refuse_influx(struct dsf_http_server *s, struct evhttp_request *req)
{
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    const char *msg = path && strncmp(path, "/api/v2/", 8) == 0
                          ? "{\"code\":\"unauthorized\",\"message\":\"unauthorized access\"}"
                          : "{\"error\":\"authorization failed\"}";
    evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                      "Basic realm=\"InfluxDB\"");
    dsf_count(&s->refused_unauthorized, 1);
    dsf_http_reply(req, 401, "application/json", msg, strlen(msg));
}

static int is_write(struct evhttp_request *req)
{
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    return cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD;
}

/* Authentication first where it guards everything, so an unauthenticated client learns
 * nothing about the routes; then writes, refused on read-only routes and, without the
 * token, everywhere else. */
static void dispatch(struct evhttp_request *req, void *p)
{
    struct route *r = p;
    struct dsf_http_server *s = r->server;
    int public = r->flags & (DSF_HTTP_PUBLIC | DSF_HTTP_SELF_AUTH), write = is_write(req);
    if (r->flags & DSF_HTTP_INFLUX_AUTH) {
        if (s->open_writes || influx_authorised(s, req))
            r->fn(req, r->arg);
        else
            refuse_influx(s, req);
        return;
    }
    if (!public && s->guard_reads && !authorised(s, req)) {
        refuse_unauthorized(s, req);
        return;
    }
    if (write && !(r->flags & DSF_HTTP_WRITES)) {
        const char *msg = "{\"error\":\"read-only: GET or HEAD\"}\n";
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        dsf_count(&s->refused_read_only, 1);
        dsf_http_reply(req, 405, "application/json", msg, strlen(msg));
        return;
    }
    if (write && !public && !s->guard_reads && !s->open_writes && !authorised(s, req)) {
        refuse_unauthorized(s, req);
        return;
    }
    r->fn(req, r->arg);
}

static void not_found(struct evhttp_request *req, void *arg)
{
    /* evhttp matches exact paths only; paths with a variable tail (/api/v1/rules/{name}) are
     * found here among the prefix routes. */
    const struct dsf_http_server *s = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    for (size_t i = 0; path && i < s->nroutes; i++) {
        const char *pre = s->routes[i]->prefix;
        if (pre && strncmp(path, pre, strlen(pre)) == 0 && path[strlen(pre)]) {
            dispatch(req, s->routes[i]);
            return;
        }
    }
    const char *msg = "not found\n";
    dsf_http_reply(req, 404, "text/plain", msg, strlen(msg));
}

static char *basic_header(const char *user, const char *pw)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(user) + 1 + strlen(pw);
    char *plain = malloc(n + 1), *out = malloc(6 + 4 * ((n + 2) / 3) + 1);
    if (!plain || !out) {
        free(plain);
        free(out);
        return NULL;
    }
    snprintf(plain, n + 1, "%s:%s", user, pw);
    char *w = out + sprintf(out, "Basic ");
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)plain[i] << 16;
        if (i + 1 < n)
            v |= (unsigned char)plain[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)plain[i + 2];
        *w++ = b64[(v >> 18) & 63];
        *w++ = b64[(v >> 12) & 63];
        *w++ = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        *w++ = i + 2 < n ? b64[v & 63] : '=';
    }
    *w = '\0';
    free(plain);
    return out;
}

#ifdef DSF_HAVE_TLS
static struct bufferevent *make_tls_bev(struct event_base *base, void *arg)
{
    SSL_CTX *ctx = arg;
    SSL *ssl = SSL_new(ctx);
    return ssl ? bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                BEV_OPT_CLOSE_ON_FREE)
               : NULL;
}

static int setup_tls(struct dsf_http_server *s, const struct dsf_http_options *opt, char *err,
                     size_t errlen)
{
    s->ssl = SSL_CTX_new(TLS_server_method());
    if (!s->ssl || SSL_CTX_set_min_proto_version(s->ssl, TLS1_2_VERSION) != 1 ||
        SSL_CTX_use_certificate_chain_file(s->ssl, opt->tls_cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(s->ssl, opt->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(s->ssl) != 1) {
        char reason[160];
        ERR_error_string_n(ERR_get_error(), reason, sizeof(reason));
        snprintf(err, errlen, "TLS certificate %s / key %s unusable: %s", opt->tls_cert,
                 opt->tls_key, reason);
        return -1;
    }
    evhttp_set_bevcb(s->http, make_tls_bev, s->ssl);
    return 0;
}
#endif

struct dsf_http_server *dsf_http_new(struct event_base *base, const struct dsf_http_options *opt,
                                     char *err, size_t errlen)
{
    char host[128];
    int port;
    if (dsf_split_hostport(opt->listen, host, sizeof(host), &port)) {
        snprintf(err, errlen, "listen address '%s': expected host:port, [v6]:port or :port",
                 opt->listen);
        return NULL;
    }
    struct dsf_http_server *s = calloc(1, sizeof(*s));
    if (!s || !(s->http = evhttp_new(base))) {
        snprintf(err, errlen, "out of memory");
        free(s);
        return NULL;
    }
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                            EVHTTP_REQ_PATCH | EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD);
    evhttp_set_max_headers_size(s->http, 16384);
    evhttp_set_max_body_size(s->http, 4 << 20);
    evhttp_set_timeout(s->http, 30);
    evhttp_set_gencb(s->http, not_found, s);
    if (opt->bearer_token && *opt->bearer_token) {
        size_t n = strlen(opt->bearer_token) + 8;
        s->expected_auth = malloc(n);
        if (s->expected_auth)
            snprintf(s->expected_auth, n, "Bearer %s", opt->bearer_token);
    } else if (opt->basic_user && *opt->basic_user) {
        s->expected_auth = basic_header(opt->basic_user, opt->basic_pw ? opt->basic_pw : "");
    }
    s->guard_reads = s->expected_auth != NULL;
    s->open_writes = !s->guard_reads && opt->open_writes;
    if (opt->tls_cert && *opt->tls_cert) {
#ifdef DSF_HAVE_TLS
        if (setup_tls(s, opt, err, errlen)) {
            dsf_http_free(s);
            return NULL;
        }
        s->tls = 1;
#else
        snprintf(err, errlen, "this build has no TLS support (DAMSELFLY_TLS=OFF)");
        dsf_http_free(s);
        return NULL;
#endif
    }
    s->sock = evhttp_bind_socket_with_handle(s->http, *host ? host : "0.0.0.0", (uint16_t)port);
    if (!s->sock) {
        snprintf(err, errlen, "cannot listen on %s: %s", opt->listen,
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        dsf_http_free(s);
        return NULL;
    }
    return s;
}

int dsf_http_route(struct dsf_http_server *s, const char *path, dsf_http_handler fn, void *arg,
                   int flags)
{
    if (s->nroutes == sizeof(s->routes) / sizeof(s->routes[0]))
        return -1;
    struct route *r = calloc(1, sizeof(*r));
    if (!r || !(r->path = strdup(path))) {
        free(r);
        return -1;
    }
    r->server = s;
    r->fn = fn;
    r->arg = arg;
    r->flags = flags;
    size_t n = strlen(path);
    if (n >= 2 && strcmp(path + n - 2, "/*") == 0) {
        if (!(r->prefix = strndup(path, n - 1))) {
            free(r->path);
            free(r);
            return -1;
        }
        s->routes[s->nroutes++] = r;
        return 0;
    }
    s->routes[s->nroutes++] = r;
    return evhttp_set_cb(s->http, path, dispatch, r);
}

void dsf_http_print_routes(const struct dsf_http_server *s, FILE *out)
{
    for (size_t i = 0; i < s->nroutes; i++) {
        const struct route *r = s->routes[i];
        fprintf(out, "%s\t%s\t%s\n", r->path,
                r->flags & DSF_HTTP_WRITES ? "GET,HEAD,POST,PUT,PATCH,DELETE" : "GET,HEAD",
                r->flags & DSF_HTTP_PUBLIC ? "public" : "auth");
    }
}

int dsf_http_has_write_routes(const struct dsf_http_server *s)
{
    for (size_t i = 0; i < s->nroutes; i++)
        if (s->routes[i]->flags & DSF_HTTP_WRITES)
            return 1;
    return 0;
}

int dsf_http_set_write_token(struct dsf_http_server *s, const char *token)
{
    if (s->guard_reads)
        return 0;
    size_t n = strlen(token) + 8;
    char *auth = malloc(n);
    if (!auth)
        return -1;
    snprintf(auth, n, "Bearer %s", token);
    free(s->expected_auth);
    s->expected_auth = auth;
    return 0;
}

void dsf_http_token_for_reads(struct dsf_http_server *s)
{
    if (s->expected_auth)
        s->guard_reads = 1;
}

void dsf_http_render_metrics(const struct dsf_http_server *s, struct dsf_buf *out)
{
    prom_family(out, "damselfly_http_requests_refused_total", "counter",
                "HTTP requests refused before reaching their handler.");
    buf_printf(out,
               "damselfly_http_requests_refused_total{reason=\"unauthorized\"} %llu\n"
               "damselfly_http_requests_refused_total{reason=\"read_only\"} %llu\n",
               (unsigned long long)dsf_read(&s->refused_unauthorized),
               (unsigned long long)dsf_read(&s->refused_read_only));
}

int dsf_http_port(const struct dsf_http_server *s)
{
    evutil_socket_t fd = evhttp_bound_socket_get_fd(s->sock);
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len))
        return -1;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

void dsf_http_free(struct dsf_http_server *s)
{
    if (!s)
        return;
    if (s->http)
        evhttp_free(s->http);
    for (size_t i = 0; i < s->nroutes; i++) {
        free(s->routes[i]->path);
        free(s->routes[i]->prefix);
        free(s->routes[i]);
    }
    free(s->expected_auth);
#ifdef DSF_HAVE_TLS
    if (s->ssl)
        SSL_CTX_free(s->ssl);
#endif
    free(s);
}

static void deferred_conn_closed(struct evhttp_connection *conn, void *arg)
{
    struct dsf_http_deferred *d = arg;
    /* libevent frees a request whose connection it frees (the server torn down) and
     * detaches one whose client left, to be freed by the reply: still on the connection,
     * it goes with it now; detached, the reply frees it. */
    if (d->req && evhttp_request_get_connection(d->req) == conn)
        d->req = NULL;
}

void dsf_http_defer(struct dsf_http_deferred *d, struct evhttp_request *req)
{
    d->req = req;
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), deferred_conn_closed, d);
}

struct evhttp_request *dsf_http_deferred_take(struct dsf_http_deferred *d)
{
    struct evhttp_request *req = d->req;
    if (req) {
        struct evhttp_connection *conn = evhttp_request_get_connection(req);
        if (conn)
            evhttp_connection_set_closecb(conn, NULL, NULL);
        d->req = NULL;
    }
    return req;
}

void dsf_http_deferred_reply_json(struct dsf_http_deferred *d, int code, json_t *o)
{
    struct evhttp_request *req = dsf_http_deferred_take(d);
    if (req)
        dsf_http_reply_json(req, code, o);
    else
        json_decref(o);
}
