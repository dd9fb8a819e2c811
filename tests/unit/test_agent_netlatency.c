/*
 * The netlatency input against loopback listeners: an open port must answer with a round
 * trip time, a closed one must count failures, a peer that never completes the handshake
 * must not hold the cycle beyond the timeout.
 */
#include "tests/unit/agent_input_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

extern const struct dsf_input dsf_input_netlatency;

/* A loopback TCP socket on a free port, listening with this backlog (or closed when
 * backlog < 0, leaving a port nobody listens on). */
static int loopback_port(int backlog, int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    if (backlog < 0) {
        close(fd);
        return -1;
    }
    assert_int_equal(listen(fd, backlog), 0);
    return fd;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_open_and_closed(void **state)
{
    (void)state;
    int open_port, closed_port;
    int lfd = loopback_port(16, &open_port);
    loopback_port(-1, &closed_port);
    char json[256], open_peer[32], name_peer[32], closed_peer[32], closed_name[32];
    snprintf(open_peer, sizeof(open_peer), "127.0.0.1:%d", open_port);
    snprintf(name_peer, sizeof(name_peer), "localhost:%d", open_port);
    snprintf(closed_peer, sizeof(closed_peer), "127.0.0.1:%d", closed_port);
    /* A name that failed is resolved again (asynchronously) before the next attempt. */
    snprintf(closed_name, sizeof(closed_name), "localhost:%d", closed_port);
    snprintf(json, sizeof(json),
             "{\"peers\": [\"%s\", \"%s\", \"%s\", \"%s\"], \"timeout\": \"1s\"}", open_peer,
             name_peer, closed_peer, closed_name);

    struct input_run r;
    input_start(&r, &dsf_input_netlatency, json);
    for (int cycle = 1; cycle <= 2; cycle++) {
        input_collect(&r);
        const struct dsf_batch *b = &r.batch;
        for (int i = 0; i < 2; i++) {
            const struct dsf_point *p =
                find_point(b, "netlatency", "peer", i ? name_peer : open_peer);
            assert_non_null(p);
            assert_int_equal((int)point_field_or_fail(b, p, "success"), 1);
            assert_true(point_field_or_fail(b, p, "rtt_ms") > 0);
            assert_int_equal((int)point_field_or_fail(b, p, "failures_total"), 0);
        }
        for (int i = 0; i < 2; i++) {
            const struct dsf_point *p =
                find_point(b, "netlatency", "peer", i ? closed_name : closed_peer);
            assert_non_null(p);
            assert_int_equal((int)point_field_or_fail(b, p, "success"), 0);
            assert_int_equal((int)point_field_or_fail(b, p, "failures_total"), cycle);
            double rtt;
            assert_false(point_field(b, p, "rtt_ms", &rtt));
        }
    }
    check_prom(&r, "damselfly_netlatency_rtt_seconds{peer=\"127.0.0.1:");
    input_stop(&r);
    close(lfd);
}

/* A listener whose accept queue is full drops new SYNs: the handshake never completes. */
static void test_timeout_bounds_cycle(void **state)
{
    (void)state;
    int port;
    int lfd = loopback_port(0, &port);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fillers[4];
    for (int i = 0; i < 4; i++) {
        fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        connect(fillers[i], (struct sockaddr *)&a, sizeof(a));
    }
    sleep_ms(50);
    char json[128], peer[32];
    snprintf(peer, sizeof(peer), "127.0.0.1:%d", port);
    snprintf(json, sizeof(json), "{\"peers\": [\"%s\"], \"timeout\": \"300ms\"}", peer);
    struct input_run r;
    input_start(&r, &dsf_input_netlatency, json);
    int64_t t0 = now_ms();
    input_collect(&r);
    int64_t took = now_ms() - t0;
    const struct dsf_point *p = find_point(&r.batch, "netlatency", "peer", peer);
    assert_non_null(p);
    assert_int_equal((int)point_field_or_fail(&r.batch, p, "success"), 0);
    assert_int_equal((int)point_field_or_fail(&r.batch, p, "failures_total"), 1);
    if (took < 250 || took > 700)
        fail_msg("cycle took %lld ms with a 300 ms timeout", (long long)took);
    input_stop(&r);
    for (int i = 0; i < 4; i++)
        close(fillers[i]);
    close(lfd);
}

static void test_ipv6_literal(void **state)
{
    (void)state;
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 4) ||
        getsockname(fd, (struct sockaddr *)&a, &len)) {
        if (fd >= 0)
            close(fd);
        skip(); /* no IPv6 loopback here */
    }
    char json[128], peer[32];
    snprintf(peer, sizeof(peer), "[::1]:%d", ntohs(a.sin6_port));
    snprintf(json, sizeof(json), "{\"peers\": [\"%s\"]}", peer);
    struct input_run r;
    input_start(&r, &dsf_input_netlatency, json);
    input_collect(&r);
    const struct dsf_point *p = find_point(&r.batch, "netlatency", "peer", peer);
    assert_non_null(p);
    assert_int_equal((int)point_field_or_fail(&r.batch, p, "success"), 1);
    input_stop(&r);
    close(fd);
}

static void test_bad_peer(void **state)
{
    (void)state;
    const char *bad[] = {"{\"peers\": [\"::1:80\"]}", "{\"peers\": [\"host\"]}",
                         "{\"peers\": [\"host:99999\"]}", "{\"peers\": [\"[::1]80\"]}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct input_run r;
        char err[DSF_CFG_ERRLEN] = "";
        assert_int_equal(input_try_start(&r, &dsf_input_netlatency, bad[i], err, sizeof(err)), -1);
        assert_non_null(strstr(err, "inputs.netlatency.peers"));
        input_stop(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_and_closed),
        cmocka_unit_test(test_timeout_bounds_cycle),
        cmocka_unit_test(test_ipv6_literal),
        cmocka_unit_test(test_bad_peer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
