/*
 * The event loop behind one small interface. Each daemon runs one libevent loop that owns
 * its state; client libraries call back on their own threads and hand work to the loop
 * through a bounded queue (dsf_handoff) that wakes it.
 */
#ifndef DSF_LOOP_H
#define DSF_LOOP_H

#include <stddef.h>
#include <stdint.h>

struct event_base;

/* Creates a libevent base with pthread locking enabled; NULL on failure. */
struct event_base *dsf_loop_new(void);
/* Calls fn(arg) on the loop when SIGINT or SIGTERM arrives (and SIGHUP → on_hup if set). */
int dsf_loop_on_signals(struct event_base *base, void (*on_stop)(void *), void (*on_hup)(void *),
                        void *arg);
/* Wall clock in nanoseconds and a monotonic clock in milliseconds. */
int64_t dsf_now_ns(void);
int64_t dsf_mono_ms(void);
/* An RFC 3339 time ("2026-11-23T19:15:13.5Z" or with a numeric offset) in nanoseconds since
 * the epoch: 0, or -1 when s is not one. */
int dsf_parse_rfc3339(const char *s, int64_t *ns);

/*
 * A thread-safe queue of items run on the loop. Items are copied in; capacity is in
 * items. dsf_handoff_post returns -1 when full (the caller counts the drop).
 */
struct dsf_handoff;
typedef void (*dsf_handoff_fn)(void *arg, void *item);
struct dsf_handoff *dsf_handoff_new(struct event_base *base, size_t item_size, size_t capacity,
                                    dsf_handoff_fn fn, void *arg);
int dsf_handoff_post(struct dsf_handoff *h, const void *item);
/* discard (may be NULL) releases what each item still pending owns: the loop stops before
 * draining everything the other threads posted. */
void dsf_handoff_free(struct dsf_handoff *h, dsf_handoff_fn discard);

#endif
