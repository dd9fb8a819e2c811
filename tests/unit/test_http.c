#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/http.h"
#include "common/http_client.h"
#include "common/loop.h"

struct result {
    long status;
    char body[256];
    char error[256];
    long retry_after;
    int calls;
};

static void on_done(void *arg, const struct dsf_http_response *r)
{
    struct result *res = arg;
    res->status = r->status;
    snprintf(res->body, sizeof(res->body), "%s", r->body);
    snprintf(res->error, sizeof(res->error), "%s", r->error ? r->error : "");
    res->retry_after = r->retry_after_s;
    res->calls++;
}

static void echo(struct evhttp_request *req, void *arg)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    char body[256];
    int len = snprintf(body, sizeof(body), "%s %.*s",
                       evhttp_request_get_command(req) == EVHTTP_REQ_POST ? "POST" : "OTHER",
                       (int)n, (const char *)evbuffer_pullup(in, -1));
    dsf_http_reply(req, 200, "text/plain", body, (size_t)len);
}

static void busy(struct evhttp_request *req, void *arg)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "7");
    dsf_http_reply(req, 429, "text/plain", "slow down", 9);
}

static void run_until(struct event_base *base, const struct result *r, int want_calls)
{
    for (int i = 0; i < 500 && r->calls < want_calls; i++)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(10000);
}

static void requests_round_trip(void **state)
{
    struct event_base *base = dsf_loop_new();
    char err[256];
    struct dsf_http_options opt = {.listen = "127.0.0.1:0", .bearer_token = "t0k"};
    struct dsf_http_server *srv = dsf_http_new(base, &opt, err, sizeof(err));
    assert_non_null(srv);
    dsf_http_route(srv, "/echo", echo, NULL, DSF_HTTP_WRITES);
    dsf_http_route(srv, "/busy", busy, NULL, DSF_HTTP_PUBLIC);
    char url[128];
    struct dsf_http_client *c = dsf_http_client_new(base);
    const char *auth[] = {"Authorization: Bearer t0k", NULL};

    struct result ok = {0};
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/echo", dsf_http_port(srv));
    struct dsf_http_request req = {
        .method = "POST", .url = url, .headers = auth, .body = "hello", .len = 5};
    assert_int_equal(dsf_http_client_send(c, &req, on_done, &ok), 0);
    struct result denied = {0};
    req.headers = NULL;
    assert_int_equal(dsf_http_client_send(c, &req, on_done, &denied), 0);
    struct result slow = {0};
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/busy", dsf_http_port(srv));
    struct dsf_http_request busy_req = {.method = "GET", .url = url};
    assert_int_equal(dsf_http_client_send(c, &busy_req, on_done, &slow), 0);
    assert_int_equal(dsf_http_client_in_flight(c), 3);
    run_until(base, &ok, 1);
    run_until(base, &denied, 1);
    run_until(base, &slow, 1);
    assert_int_equal(ok.status, 200);
    assert_string_equal(ok.body, "POST hello");
    assert_int_equal(denied.status, 401);
    assert_int_equal(slow.status, 429);
    assert_int_equal(slow.retry_after, 7);
    assert_int_equal(dsf_http_client_in_flight(c), 0);
    dsf_http_client_free(c);
    dsf_http_free(srv);
    event_base_free(base);
}

static void timeouts_refusals_and_cancel_report_once(void **state)
{
    struct event_base *base = dsf_loop_new();
    /* A socket that listens but never answers. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 4), 0);
    getsockname(fd, (struct sockaddr *)&sa, &len);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", ntohs(sa.sin_port));
    struct dsf_http_client *c = dsf_http_client_new(base);
    struct result timed_out = {0}, refused = {0}, cancelled = {0};
    struct dsf_http_request req = {.method = "GET", .url = url, .timeout_ms = 300};
    assert_int_equal(dsf_http_client_send(c, &req, on_done, &timed_out), 0);
    struct dsf_http_request closed = {.method = "GET", .url = "http://127.0.0.1:1/"};
    assert_int_equal(dsf_http_client_send(c, &closed, on_done, &refused), 0);
    run_until(base, &timed_out, 1);
    run_until(base, &refused, 1);
    assert_int_equal(timed_out.status, 0);
    assert_non_null(strstr(timed_out.error, "imed out"));
    assert_int_equal(refused.status, 0);
    assert_true(refused.error[0] != '\0');
    struct dsf_http_request pending = {.method = "GET", .url = url, .timeout_ms = 60000};
    assert_int_equal(dsf_http_client_send(c, &pending, on_done, &cancelled), 0);
    dsf_http_client_free(c);
    assert_int_equal(cancelled.calls, 1);
    assert_string_equal(cancelled.error, "cancelled");
    close(fd);
    event_base_free(base);
}

/* status METHOD URL [TOKEN]: one request's status, run to its end. */
static long status(struct event_base *base, struct dsf_http_client *c, const char *method,
                   const char *url, const char *token)
{
    char auth[128];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token ? token : "");
    const char *headers[] = {auth, NULL};
    struct dsf_http_request req = {
        .method = method, .url = url, .headers = token ? headers : NULL, .body = "x", .len = 1};
    struct result r = {0};
    assert_int_equal(dsf_http_client_send(c, &req, on_done, &r), 0);
    run_until(base, &r, 1);
    return r.status;
}

/* Without a bearer token or basic auth for everything, reads are open and writes need the
 * write token: refused until it is set, then taken; read-only routes answer writes 405. */
static void writes_need_the_write_token(void **state)
{
    struct event_base *base = dsf_loop_new();
    char err[256], rw[128], ro[128];
    struct dsf_http_options opt = {.listen = "127.0.0.1:0"};
    struct dsf_http_server *srv = dsf_http_new(base, &opt, err, sizeof(err));
    assert_non_null(srv);
    dsf_http_route(srv, "/ro", echo, NULL, 0);
    assert_int_equal(dsf_http_has_write_routes(srv), 0);
    dsf_http_route(srv, "/rw/*", echo, NULL, DSF_HTTP_WRITES);
    assert_int_equal(dsf_http_has_write_routes(srv), 1);
    snprintf(rw, sizeof(rw), "http://127.0.0.1:%d/rw/x", dsf_http_port(srv));
    snprintf(ro, sizeof(ro), "http://127.0.0.1:%d/ro", dsf_http_port(srv));
    struct dsf_http_client *c = dsf_http_client_new(base);
    assert_int_equal(status(base, c, "GET", rw, NULL), 200);
    assert_int_equal(status(base, c, "POST", rw, NULL), 401); /* no token set yet */
    assert_int_equal(status(base, c, "POST", rw, ""), 401);
    assert_int_equal(dsf_http_set_write_token(srv, "0123456789abcdef"), 0);
    assert_int_equal(status(base, c, "POST", rw, NULL), 401);
    assert_int_equal(status(base, c, "DELETE", rw, "0123456789abcdeX"), 401);
    assert_int_equal(status(base, c, "PATCH", rw, "0123456789abcdef"), 200);
    assert_int_equal(status(base, c, "DELETE", rw, "0123456789abcdef"), 200);
    assert_int_equal(status(base, c, "POST", ro, "0123456789abcdef"), 405);
    assert_int_equal(status(base, c, "GET", ro, NULL), 200);
    struct dsf_buf m = {0};
    dsf_http_render_metrics(srv, &m);
    assert_non_null(strstr(buf_cstr(&m), "{reason=\"unauthorized\"} 4\n"));
    assert_non_null(strstr(buf_cstr(&m), "{reason=\"read_only\"} 1\n"));
    buf_free(&m);
    dsf_http_free(srv);

    opt.open_writes = 1; /* http.auth=none */
    srv = dsf_http_new(base, &opt, err, sizeof(err));
    dsf_http_route(srv, "/rw/*", echo, NULL, DSF_HTTP_WRITES);
    snprintf(rw, sizeof(rw), "http://127.0.0.1:%d/rw/x", dsf_http_port(srv));
    assert_int_equal(status(base, c, "POST", rw, NULL), 200);
    dsf_http_free(srv);
    dsf_http_client_free(c);
    event_base_free(base);
}

/* --print-routes' table: every route as registered, in order, with what reaches it. */
static void routes_are_listed_as_registered(void **state)
{
    struct event_base *base = dsf_loop_new();
    char err[256], *text = NULL;
    size_t len = 0;
    struct dsf_http_options opt = {.listen = "127.0.0.1:0"};
    struct dsf_http_server *srv = dsf_http_new(base, &opt, err, sizeof(err));
    assert_non_null(srv);
    dsf_http_route(srv, "/healthz", echo, NULL, DSF_HTTP_PUBLIC);
    dsf_http_route(srv, "/ro", echo, NULL, 0);
    dsf_http_route(srv, "/rw/*", echo, NULL, DSF_HTTP_WRITES);
    FILE *out = open_memstream(&text, &len);
    dsf_http_print_routes(srv, out);
    fclose(out);
    assert_string_equal(text, "/healthz\tGET,HEAD\tpublic\n"
                              "/ro\tGET,HEAD\tauth\n"
                              "/rw/*\tGET,HEAD,POST,PUT,PATCH,DELETE\tauth\n");
    free(text);
    dsf_http_free(srv);
    event_base_free(base);
}

static void token_file_is_made_once_and_private(void **state)
{
    char dir[] = "/tmp/dsf-test-token-XXXXXX", path[128], token[DSF_HTTP_TOKEN_MAX + 1];
    char again[DSF_HTTP_TOKEN_MAX + 1], err[512];
    int created;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/sub/http.token", dir);
    assert_int_equal(dsf_http_token_file(path, token, &created, err, sizeof(err)), 0);
    assert_int_equal(created, 1);
    assert_int_equal(strlen(token), 64);
    assert_int_equal(strspn(token, "0123456789abcdef"), 64);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(dsf_http_token_file(path, again, &created, err, sizeof(err)), 0);
    assert_int_equal(created, 0);
    assert_string_equal(again, token);
    /* An operator's own token, with a newline; a short one and a world-writable file are
     * refused. */
    FILE *f = fopen(path, "w");
    fputs("  my-own-token-of-20ch\n", f);
    fclose(f);
    assert_int_equal(dsf_http_token_file(path, again, &created, err, sizeof(err)), 0);
    assert_string_equal(again, "my-own-token-of-20ch");
    chmod(path, 0666);
    assert_int_equal(dsf_http_token_file(path, again, &created, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "chmod 600"));
    chmod(path, 0600);
    f = fopen(path, "w");
    fputs("short\n", f);
    fclose(f);
    assert_int_equal(dsf_http_token_file(path, again, &created, err, sizeof(err)), -1);
    assert_non_null(strstr(err, path));
    /* A client's token (another daemon's): read with the same checks, never made. */
    assert_int_equal(dsf_http_token_read(path, again, err, sizeof(err)), -1);
    f = fopen(path, "w");
    fputs("engine-token-0123456789\n", f);
    fclose(f);
    assert_int_equal(dsf_http_token_read(path, again, err, sizeof(err)), 0);
    assert_string_equal(again, "engine-token-0123456789");
    unlink(path);
    assert_int_equal(dsf_http_token_read(path, again, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot open"));
    assert_int_not_equal(access(path, F_OK), 0);
    snprintf(path, sizeof(path), "%s/sub", dir);
    rmdir(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(writes_need_the_write_token),
        cmocka_unit_test(token_file_is_made_once_and_private),
        cmocka_unit_test(routes_are_listed_as_registered),
        cmocka_unit_test(requests_round_trip),
        cmocka_unit_test(timeouts_refusals_and_cancel_report_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
