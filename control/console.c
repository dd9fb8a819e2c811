/*
 * The web console (docs/console.md): its pages, embedded at build time, served under /ui/ to
 * holders of the API token. A login with the token (POST /ui/login) gets a session cookie;
 * the pages' API calls carry it with "X-Damselfly-Console: 1", which common/http.c asks
 * session_valid about. Without a session every /ui path answers 401 with the login page.
 */
#define DSF_MODULE "control"
#include "common/daemon.h"
#include "common/http.h"
#include "common/log.h"
#include "control/console_assets.h"
#include "control/console_session.h"
#include "control/control_impl.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOGIN_BODY_MAX 4096
#define COOKIE "dsf_session"

static const char csp[] = "default-src 'self'; script-src 'self'; style-src 'self'; img-src "
                          "'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri "
                          "'none'; form-action 'self'";

static struct dsf_http_server *server(struct control *c)
{
    return dsf_daemon_http(c->daemon);
}

static const struct console_asset *asset(const char *path)
{
    for (size_t i = 0; i < console_nassets; i++) {
        if (strcmp(console_assets[i].path, path) == 0)
            return &console_assets[i];
    }
    return NULL;
}

static void security_headers(struct evhttp_request *req, int html)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Security-Policy", csp);
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "Referrer-Policy", "no-referrer");
    evhttp_add_header(h, "X-Frame-Options", "DENY");
    /* HTML is never kept (it is where a session's view starts); the rest is revalidated
     * with its ETag. */
    evhttp_add_header(h, "Cache-Control", html ? "no-store" : "no-cache");
}

static int session_cookie(struct evhttp_request *req, char *id)
{
    const char *cookie = evhttp_find_header(evhttp_request_get_input_headers(req), "Cookie");
    return cookie ? console_cookie_get(cookie, COOKIE, id, CONSOLE_SESSION_ID_LEN + 1) : -1;
}

/* The hook of common/http.c: the API's second way in. */
static int session_valid(void *arg, struct evhttp_request *req)
{
    struct control *c = arg;
    char id[CONSOLE_SESSION_ID_LEN + 1];
    return session_cookie(req, id) == 0 && console_session_touch(c->console, id, ctl_wall_ms());
}

/* A page load carries no header of ours: the cookie alone, or the bearer token (curl). */
static int page_authorised(struct control *c, struct evhttp_request *req)
{
    return dsf_http_bearer_ok(server(c), req) || session_valid(c, req);
}

/* The login page, with error (may be NULL) as the text of #login-error. */
static void login_page(struct evhttp_request *req, int code, const char *error)
{
    static const char mark[] = "<p id=\"login-error\" role=\"alert\">";
    const struct console_asset *a = asset("login.html");
    security_headers(req, 1);
    /* As the API's refusals say; a browser shows the page (it asks only for Basic). */
    if (code == 401)
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                          "Bearer realm=\"damselfly\"");
    if (!a) {
        dsf_http_reply(req, code, "text/plain", "login page missing\n", 19);
        return;
    }
    const char *at = error ? memmem(a->data, a->len, mark, strlen(mark)) : NULL;
    if (!at) {
        dsf_http_reply(req, code, a->type, a->data, a->len);
        return;
    }
    size_t head = (size_t)(at - (const char *)a->data) + strlen(mark);
    struct evbuffer *b = evbuffer_new();
    if (!b || evbuffer_add(b, a->data, head) || evbuffer_add(b, error, strlen(error)) ||
        evbuffer_add(b, a->data + head, a->len - head)) {
        evbuffer_free(b);
        dsf_http_reply(req, 500, "text/plain", "out of memory\n", 14);
        return;
    }
    size_t len = evbuffer_get_length(b);
    dsf_http_reply(req, code, a->type, evbuffer_pullup(b, -1), len);
    evbuffer_free(b);
}

static void refuse(struct control *c, struct evhttp_request *req)
{
    dsf_http_count_unauthorized(server(c));
    login_page(req, 401, NULL);
}

static void redirect(struct evhttp_request *req, int code, const char *to)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Location", to);
    dsf_http_reply(req, code, "text/plain", to, strlen(to));
}

static void serve_root(struct evhttp_request *req, void *arg)
{
    (void)arg;
    if (dsf_http_only_get(req))
        redirect(req, 302, "/ui/");
}

static void serve_asset(struct evhttp_request *req, const struct console_asset *a)
{
    int html = strncmp(a->type, "text/html", 9) == 0;
    security_headers(req, html);
    evhttp_add_header(evhttp_request_get_output_headers(req), "ETag", a->etag);
    const char *inm = evhttp_find_header(evhttp_request_get_input_headers(req), "If-None-Match");
    if (inm && strstr(inm, a->etag)) {
        dsf_http_reply(req, 304, NULL, "", 0);
        return;
    }
    dsf_http_reply(req, 200, a->type, a->data, a->len);
}

static void serve_ui(struct evhttp_request *req, void *arg)
{
    struct control *c = arg;
    if (!page_authorised(c, req)) {
        refuse(c, req);
        return;
    }
    if (!dsf_http_only_get(req))
        return;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    const char *rest = path && strncmp(path, "/ui/", 4) == 0 ? path + 4 : "";
    const struct console_asset *a = asset(*rest ? rest : "index.html");
    if (!a || strstr(rest, "..")) {
        security_headers(req, 0);
        dsf_http_reply(req, 404, "text/plain", "not found\n", 10);
        return;
    }
    serve_asset(req, a);
}

/* The form's token=... (application/x-www-form-urlencoded), decoded; NULL when absent. */
static char *form_token(struct evhttp_request *req)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len == 0 || len > LOGIN_BODY_MAX)
        return NULL;
    char *body = strndup((const char *)evbuffer_pullup(in, (ssize_t)len), len);
    struct evkeyvalq q;
    char *token = NULL;
    if (body && evhttp_parse_query_str(body, &q) == 0) {
        const char *t = evhttp_find_header(&q, "token");
        token = t ? strdup(t) : NULL;
        evhttp_clear_headers(&q);
    }
    free(body);
    return token;
}

static void login(struct control *c, struct evhttp_request *req)
{
    char *token = form_token(req), id[CONSOLE_SESSION_ID_LEN + 1];
    int ok = token && dsf_http_token_matches(server(c), token);
    free(token);
    if (!ok) {
        dsf_count(&c->stats.console_logins[1], 1);
        dsf_http_count_unauthorized(server(c));
        log_warn("web console: a login with a wrong token refused");
        login_page(req, 401, "Wrong token: the controller's API token is in state.dir/http.token.");
        return;
    }
    if (console_session_create(c->console, ctl_wall_ms(), id) < 0) {
        login_page(req, 503,
                   "The controller cannot open a session now (no memory or "
                   "randomness); try again.");
        return;
    }
    dsf_count(&c->stats.console_logins[0], 1);
    char cookie[256];
    snprintf(cookie, sizeof(cookie), COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict%s", id,
             dsf_http_is_tls(server(c)) ? "; Secure" : "");
    evhttp_add_header(evhttp_request_get_output_headers(req), "Set-Cookie", cookie);
    security_headers(req, 1);
    redirect(req, 303, "/ui/");
}

static void serve_login(struct evhttp_request *req, void *arg)
{
    struct control *c = arg;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (cmd == EVHTTP_REQ_POST)
        login(c, req);
    else if (cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD)
        login_page(req, 200, NULL);
    else
        dsf_http_reply_error(req, 405, "GET shows the login page, POST token=... logs in");
}

static void serve_logout(struct evhttp_request *req, void *arg)
{
    struct control *c = arg;
    char id[CONSOLE_SESSION_ID_LEN + 1];
    if (!page_authorised(c, req)) {
        refuse(c, req);
        return;
    }
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        dsf_http_reply_error(req, 405, "POST ends the session");
        return;
    }
    if (session_cookie(req, id) == 0)
        console_session_end(c->console, id);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Set-Cookie",
                      COOKIE "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    security_headers(req, 1);
    redirect(req, 303, "/ui/");
}

static double sessions_live(void *arg)
{
    struct control *c = arg;
    return c->console ? (double)console_sessions_live(c->console, ctl_wall_ms()) : 0;
}

int ctl_console_register(struct control *c, struct dsf_http_server *h)
{
    static const char *const results[] = {"ok", "refused"};
    if (!(c->console = console_sessions_new(c->cfg.console_idle_ms, c->cfg.console_max_ms)))
        return -1;
    dsf_http_set_session_check(h, session_valid, c);
    metrics_add_u64_by(&c->metrics, "damselfly_console_logins_total", DSF_COUNTER,
                       "Web console logins by result.", "result", results, 2,
                       c->stats.console_logins);
    metrics_add_fn(&c->metrics, "damselfly_console_sessions", DSF_GAUGE,
                   "Web console sessions open.", NULL, sessions_live, c);
    if (dsf_http_route(h, "/", serve_root, c, DSF_HTTP_PUBLIC) < 0 ||
        dsf_http_route(h, "/ui/", serve_ui, c, DSF_HTTP_SELF_AUTH) < 0 ||
        dsf_http_route(h, "/ui/login", serve_login, c, DSF_HTTP_PUBLIC | DSF_HTTP_WRITES) < 0 ||
        dsf_http_route(h, "/ui/logout", serve_logout, c, DSF_HTTP_SELF_AUTH | DSF_HTTP_WRITES) <
            0 ||
        dsf_http_route(h, "/ui/*", serve_ui, c, DSF_HTTP_SELF_AUTH) < 0)
        return -1;
    return 0;
}

void ctl_console_free(struct control *c)
{
    console_sessions_free(c->console);
    c->console = NULL;
}
