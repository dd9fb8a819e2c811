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
#include <unistd.h>

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
    dsf_http_route(srv, "/echo", echo, NULL, 0);
    dsf_http_route(srv, "/busy", busy, NULL, 1);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(requests_round_trip),
        cmocka_unit_test(timeouts_refusals_and_cancel_report_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
