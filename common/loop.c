#include "common/loop.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int threads_ok;
static void init_threads(void)
{
    threads_ok = evthread_use_pthreads() == 0;
}

struct event_base *dsf_loop_new(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, init_threads);
    if (!threads_ok)
        return NULL;
    signal(SIGPIPE, SIG_IGN);
    return event_base_new();
}

int64_t dsf_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t dsf_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

struct signal_ctx {
    void (*on_stop)(void *);
    void (*on_hup)(void *);
    void *arg;
    struct event *events[3];
};

static void on_signal(evutil_socket_t sig, short what, void *p)
{
    struct signal_ctx *s = p;
    if (sig == SIGHUP) {
        if (s->on_hup)
            s->on_hup(s->arg);
    } else {
        s->on_stop(s->arg);
    }
}

int dsf_loop_on_signals(struct event_base *base, void (*on_stop)(void *), void (*on_hup)(void *),
                        void *arg)
{
    /* Lives as long as the process: the loop owns the events until exit. */
    static struct signal_ctx ctx;
    ctx.on_stop = on_stop;
    ctx.on_hup = on_hup;
    ctx.arg = arg;
    const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        /* Kept in the static context: the loop owns them until the process exits. */
        struct event *ev = ctx.events[i] = evsignal_new(base, sigs[i], on_signal, &ctx);
        if (!ev || event_add(ev, NULL))
            return -1;
    }
    return 0;
}

struct dsf_handoff {
    pthread_mutex_t lock;
    struct event *wake;
    char *items;
    size_t item_size, capacity, head, count;
    dsf_handoff_fn fn;
    void *arg;
    char *scratch;
};

static void drain(evutil_socket_t fd, short what, void *p)
{
    struct dsf_handoff *h = p;
    for (;;) {
        pthread_mutex_lock(&h->lock);
        if (h->count == 0) {
            pthread_mutex_unlock(&h->lock);
            return;
        }
        memcpy(h->scratch, h->items + h->head * h->item_size, h->item_size);
        h->head = (h->head + 1) % h->capacity;
        h->count--;
        pthread_mutex_unlock(&h->lock);
        h->fn(h->arg, h->scratch);
    }
}

struct dsf_handoff *dsf_handoff_new(struct event_base *base, size_t item_size, size_t capacity,
                                    dsf_handoff_fn fn, void *arg)
{
    struct dsf_handoff *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->items = calloc(capacity, item_size);
    h->scratch = malloc(item_size);
    h->wake = event_new(base, -1, 0, drain, h);
    if (!h->items || !h->scratch || !h->wake) {
        dsf_handoff_free(h, NULL);
        return NULL;
    }
    pthread_mutex_init(&h->lock, NULL);
    h->item_size = item_size;
    h->capacity = capacity;
    h->fn = fn;
    h->arg = arg;
    return h;
}

int dsf_handoff_post(struct dsf_handoff *h, const void *item)
{
    pthread_mutex_lock(&h->lock);
    if (h->count == h->capacity) {
        pthread_mutex_unlock(&h->lock);
        return -1;
    }
    size_t tail = (h->head + h->count) % h->capacity;
    memcpy(h->items + tail * h->item_size, item, h->item_size);
    h->count++;
    pthread_mutex_unlock(&h->lock);
    event_active(h->wake, EV_READ, 0);
    return 0;
}

void dsf_handoff_free(struct dsf_handoff *h, dsf_handoff_fn discard)
{
    if (!h)
        return;
    for (; discard && h->count; h->count--, h->head = (h->head + 1) % h->capacity)
        discard(h->arg, h->items + h->head * h->item_size);
    if (h->wake)
        event_free(h->wake);
    free(h->items);
    free(h->scratch);
    free(h);
}
