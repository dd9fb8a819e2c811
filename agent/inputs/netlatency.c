/*
 * TCP connect latency to a list of peers: every cycle opens a non-blocking connection to
 * each peer at once and waits for all of them with one poll, so the cycle lasts at most
 * the timeout however many peers there are. The time to complete the handshake is one
 * network round trip plus the peer's accept path.
 *
 * Names are resolved at start and again after a failure (the peer may have moved). The
 * re-resolution is asynchronous (getaddrinfo_a) and shares the cycle's deadline, so a slow
 * DNS server cannot stretch the cycle either.
 */
#define DSF_MODULE "netlatency"
#include "common/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent/input.h"
#include "common/metrics.h"

struct netlatency_options {
    int enabled;
    struct dsf_strlist peers;
    int64_t timeout;
};

static const struct dsf_cfg_key netlatency_keys[] = {
    {"enabled", DSF_CFG_BOOL, "false", offsetof(struct netlatency_options, enabled),
     "Measure TCP connect round-trip time to the peers every cycle", 0, 0},
    {"peers", DSF_CFG_STRLIST, NULL, offsetof(struct netlatency_options, peers),
     "Peers as host:port, 192.0.2.1:443 or [2001:db8::1]:443", 0, 0},
    {"timeout", DSF_CFG_DURATION, "1s", offsetof(struct netlatency_options, timeout),
     "Longest wait for all connections of one cycle; slower peers count as failed", 1, 60000},
    DSF_CFG_END,
};

struct peer {
    char spec[300]; /* as configured: the peer tag */
    char host[256], port[8];
    int numeric; /* a literal address never needs resolving again */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int resolved, resolving, resolve_failed;
    struct addrinfo hints;
    struct gaicb req;
    int fd;
    int64_t start_ns;
    int done, ok, last_ok, has_result;
    double rtt_ms;
    uint64_t failures;
};

struct netlatency_ctx {
    struct peer *peers;
    size_t npeers;
    int64_t timeout_ns;
    struct pollfd *pfds;
    size_t *pfd_peer;
    struct gaicb **pending;
};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------------ peers and names */

/* "host:port" or "[v6]:port"; an IPv6 literal needs brackets, or its last group would
 * read as the port. */
static int parse_peer(struct peer *p, const char *spec, char *err, size_t errlen)
{
    const char *host = spec, *colon;
    size_t hlen;
    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (!close || close[1] != ':')
            goto bad;
        host = spec + 1;
        hlen = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(spec, ':');
        if (!colon || strchr(spec, ':') != colon)
            goto bad;
        hlen = (size_t)(colon - spec);
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (!hlen || hlen >= sizeof(p->host) || *end || port <= 0 || port > 65535 ||
        strlen(spec) >= sizeof(p->spec))
        goto bad;
    snprintf(p->spec, sizeof(p->spec), "%s", spec);
    snprintf(p->host, sizeof(p->host), "%.*s", (int)hlen, host);
    snprintf(p->port, sizeof(p->port), "%ld", port);
    return 0;
bad:
    snprintf(err, errlen,
             "inputs.netlatency.peers: '%s' is not host:port (write IPv6 as [addr]:port, port "
             "1-65535)",
             spec);
    return -1;
}

static void take_address(struct peer *p, const struct addrinfo *ai)
{
    memcpy(&p->addr, ai->ai_addr, ai->ai_addrlen);
    p->addrlen = ai->ai_addrlen;
    p->resolved = 1;
    p->resolve_failed = 0;
}

static void resolve_now(struct peer *p)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    int rc = getaddrinfo(p->host, p->port, &hints, &res);
    p->numeric = rc == 0;
    if (rc) {
        hints.ai_flags = AI_NUMERICSERV;
        rc = getaddrinfo(p->host, p->port, &hints, &res);
    }
    if (rc) {
        log_warn("cannot resolve %s: %s; retrying every cycle", p->host, gai_strerror(rc));
        p->resolve_failed = 1;
        return;
    }
    take_address(p, res);
    freeaddrinfo(res);
}

static void start_resolving(struct peer *p)
{
    p->hints = (struct addrinfo){
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    p->req = (struct gaicb){.ar_name = p->host, .ar_service = p->port, .ar_request = &p->hints};
    struct gaicb *list[1] = {&p->req};
    int rc = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);
    if (rc) {
        log_debug("cannot start resolving %s: %s", p->host, gai_strerror(rc));
        return;
    }
    p->resolving = 1;
}

/* Takes the answer of a finished request; 0 when it is still running. */
static int finish_resolving(struct peer *p)
{
    int rc = gai_error(&p->req);
    if (rc == EAI_INPROGRESS)
        return 0;
    p->resolving = 0;
    if (rc == 0 && p->req.ar_result)
        take_address(p, p->req.ar_result);
    else if (!p->resolve_failed) {
        log_warn("cannot resolve %s: %s", p->host, gai_strerror(rc));
        p->resolve_failed = 1;
    }
    if (p->req.ar_result)
        freeaddrinfo(p->req.ar_result);
    p->req.ar_result = NULL;
    return 1;
}

/* Starts lookups for unresolved names and waits for them until the deadline. */
static void resolve_pending(struct netlatency_ctx *c, int64_t deadline)
{
    for (;;) {
        size_t n = 0;
        for (size_t i = 0; i < c->npeers; i++) {
            struct peer *p = &c->peers[i];
            if (!p->resolved && !p->resolving)
                start_resolving(p);
            if (p->resolving && !finish_resolving(p))
                c->pending[n++] = &p->req;
        }
        int64_t left = deadline - mono_ns();
        if (!n || left <= 0)
            return;
        struct timespec ts = {left / 1000000000, left % 1000000000};
        gai_suspend((const struct gaicb *const *)c->pending, (int)n, &ts);
    }
}

/* ------------------------------------------------------------------ connecting */

static void start_connect(struct peer *p)
{
    p->done = p->ok = 0;
    p->fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (p->fd < 0) {
        log_warn("socket for %s: %s", p->spec, strerror(errno));
        p->done = 1;
        return;
    }
    p->start_ns = mono_ns();
    if (connect(p->fd, (struct sockaddr *)&p->addr, p->addrlen) == 0) {
        p->done = p->ok = 1;
        p->rtt_ms = (double)(mono_ns() - p->start_ns) / 1e6;
    } else if (errno != EINPROGRESS) {
        log_debug("connect to %s: %s", p->spec, strerror(errno));
        p->done = 1;
    }
}

static void check_connected(struct peer *p, int64_t now)
{
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &soerr, &len))
        soerr = errno;
    p->done = 1;
    p->ok = soerr == 0;
    if (p->ok)
        p->rtt_ms = (double)(now - p->start_ns) / 1e6;
    else
        log_debug("connect to %s: %s", p->spec, strerror(soerr));
}

static void wait_connects(struct netlatency_ctx *c, int64_t deadline)
{
    for (;;) {
        size_t n = 0;
        for (size_t i = 0; i < c->npeers; i++)
            if (c->peers[i].fd >= 0 && !c->peers[i].done) {
                c->pfds[n] = (struct pollfd){.fd = c->peers[i].fd, .events = POLLOUT};
                c->pfd_peer[n++] = i;
            }
        int64_t left = deadline - mono_ns();
        if (!n || left <= 0)
            return;
        struct timespec ts = {left / 1000000000, left % 1000000000};
        int rc = ppoll(c->pfds, n, &ts, NULL);
        if (rc < 0 && errno != EINTR) {
            log_error("poll: %s", strerror(errno));
            return;
        }
        int64_t now = mono_ns();
        for (size_t k = 0; rc > 0 && k < n; k++)
            if (c->pfds[k].revents)
                check_connected(&c->peers[c->pfd_peer[k]], now);
    }
}

/* Closes the cycle's socket and books the outcome. */
static void settle(struct peer *p)
{
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    p->has_result = 1;
    if (!p->done || !p->ok) {
        p->ok = 0;
        p->failures++;
        if (p->last_ok)
            log_warn("%s unreachable (%s)", p->spec,
                     !p->resolved ? "name not resolved"
                     : !p->done   ? "timed out"
                                  : "refused or failed");
        if (!p->numeric)
            p->resolved = 0; /* ask the resolver again next cycle */
    } else if (!p->last_ok && p->failures) {
        log_info("%s reachable again", p->spec);
    }
    p->last_ok = p->ok;
}

static void emit(const struct peer *p, struct dsf_batch *out, int64_t now_ns)
{
    batch_begin(out, "netlatency", now_ns);
    batch_tag(out, "peer", p->spec);
    if (p->ok)
        batch_field_f(out, "rtt_ms", p->rtt_ms);
    batch_field_i(out, "success", p->ok);
    batch_field_i(out, "failures_total", (int64_t)p->failures);
    batch_end(out);
}

static int netlatency_collect(void *vctx, struct dsf_batch *out, int64_t now_ns)
{
    struct netlatency_ctx *c = vctx;
    int64_t deadline = mono_ns() + c->timeout_ns;
    resolve_pending(c, deadline);
    for (size_t i = 0; i < c->npeers; i++) {
        struct peer *p = &c->peers[i];
        p->fd = -1;
        p->done = p->ok = 0;
        if (p->resolved)
            start_connect(p);
    }
    wait_connects(c, deadline);
    for (size_t i = 0; i < c->npeers; i++) {
        settle(&c->peers[i]);
        emit(&c->peers[i], out, now_ns);
    }
    return 0;
}

/* ------------------------------------------------------------------ Prometheus */

static void prom_series(struct dsf_buf *out, const char *name, const struct peer *p, double v)
{
    prom_labeled_sample(out, name, v, "peer", p->spec, NULL);
}

static void netlatency_prom(void *vctx, struct dsf_buf *out)
{
    const struct netlatency_ctx *c = vctx;
    int header = 0;
    for (size_t i = 0; i < c->npeers; i++) {
        const struct peer *p = &c->peers[i];
        if (!p->has_result || !p->ok)
            continue;
        if (!header++)
            prom_family(out, "damselfly_netlatency_rtt_seconds", "gauge",
                        "TCP connect round-trip time of the last cycle.");
        prom_series(out, "damselfly_netlatency_rtt_seconds", p, p->rtt_ms / 1000.0);
    }
    if (!c->npeers)
        return;
    prom_family(out, "damselfly_netlatency_up", "gauge",
                "1 when the last connection attempt succeeded.");
    for (size_t i = 0; i < c->npeers; i++)
        prom_series(out, "damselfly_netlatency_up", &c->peers[i], c->peers[i].ok);
    prom_family(out, "damselfly_netlatency_failures_total", "counter",
                "Failed connection attempts since start.");
    for (size_t i = 0; i < c->npeers; i++)
        prom_series(out, "damselfly_netlatency_failures_total", &c->peers[i],
                    (double)c->peers[i].failures);
}

/* ------------------------------------------------------------------ lifecycle */

static void netlatency_fini(void *vctx)
{
    struct netlatency_ctx *c = vctx;
    if (!c)
        return;
    for (size_t i = 0; i < c->npeers; i++) {
        struct peer *p = &c->peers[i];
        /* The resolver thread writes into p->req: it must be done before p is freed. */
        if (p->resolving && gai_cancel(&p->req) != EAI_CANCELED) {
            const struct gaicb *one[1] = {&p->req};
            while (gai_error(&p->req) == EAI_INPROGRESS)
                gai_suspend(one, 1, NULL);
        }
        if (p->resolving && p->req.ar_result)
            freeaddrinfo(p->req.ar_result);
        if (p->fd >= 0)
            close(p->fd);
    }
    free(c->peers);
    free(c->pfds);
    free(c->pfd_peer);
    free(c->pending);
    free(c);
}

static int netlatency_init(void **out, const void *options, const struct dsf_input_env *env,
                           char *err, size_t errlen)
{
    const struct netlatency_options *o = options;
    struct netlatency_ctx *c = calloc(1, sizeof(*c));
    size_t n = o->peers.count ? o->peers.count : 1;
    if (!c || !(c->peers = calloc(n, sizeof(*c->peers))) ||
        !(c->pfds = calloc(n, sizeof(*c->pfds))) ||
        !(c->pfd_peer = calloc(n, sizeof(*c->pfd_peer))) ||
        !(c->pending = calloc(n, sizeof(*c->pending)))) {
        netlatency_fini(c);
        return snprintf(err, errlen, "out of memory"), -1;
    }
    c->timeout_ns = (o->timeout > 0 ? o->timeout : 1000) * 1000000;
    for (; c->npeers < o->peers.count; c->npeers++) {
        struct peer *p = &c->peers[c->npeers];
        p->fd = -1;
        p->last_ok = 1;
        if (parse_peer(p, o->peers.items[c->npeers], err, errlen)) {
            netlatency_fini(c);
            return -1;
        }
        resolve_now(p);
    }
    if (!c->npeers)
        log_warn("no peers configured: nothing to measure");
    *out = c;
    return 0;
}

int netlatency_measure(const struct dsf_strlist *peers, int64_t timeout_ms, struct dsf_batch *out,
                       int64_t now_ns, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
    for (size_t i = 0; i < peers->count; i++) {
        struct peer p = {0};
        struct addrinfo *res = NULL;
        /* Said by its position: the bytes came from the network and go to the log. */
        if (parse_peer(&p, peers->items[i], err, errlen) < 0)
            return snprintf(err, errlen, "peer %zu: not ADDR:PORT or [V6]:PORT", i + 1), -1;
        if (getaddrinfo(p.host, p.port, &hints, &res) != 0)
            return snprintf(err, errlen, "peer %zu: not a numeric address", i + 1), -1;
        freeaddrinfo(res);
    }
    if (!peers->count)
        return 0;
    struct netlatency_options o = {.enabled = 1, .peers = *peers, .timeout = timeout_ms};
    void *ctx = NULL;
    if (netlatency_init(&ctx, &o, NULL, err, errlen) < 0)
        return -1;
    netlatency_collect(ctx, out, now_ns);
    netlatency_fini(ctx);
    return 0;
}

const struct dsf_input dsf_input_netlatency = {
    .name = "netlatency",
    .options = netlatency_keys,
    .options_size = sizeof(struct netlatency_options),
    .init = netlatency_init,
    .collect = netlatency_collect,
    .prom = netlatency_prom,
    .fini = netlatency_fini,
};
