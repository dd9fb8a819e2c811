/*
 * An HTTP write's lines through the pipeline, answered when their fate is known: once the
 * store (or the spool) took the batch, or once the writer refused it. The request waits on
 * the loop meanwhile; the client may leave and the listener may go first at shutdown
 * (dsf_http_deferred). Shared by the intakes of HTTP writes (InfluxDB's API, remote write).
 */
#include "collector/collector.h"
#include "collector/writer.h"
#include "common/http.h"

#include <stdlib.h>

/* One write waiting for the store: its batch holds the first bad line for the answer. */
struct intake_pending {
    struct dsf_http_deferred reply;
    struct collector *c;
    const struct intake_answer_ops *ops;
    void *ctx;
    struct intake_pending *prev, *next;
    struct pipeline_batch batch;
};

static void unlink_pending(struct intake_pending *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        p->c->pending_writes = p->next;
    if (p->next)
        p->next->prev = p->prev;
}

static void write_stored(void *owner, uint64_t value, const char *tag)
{
    struct intake_pending *p = owner;
    struct evhttp_request *req = dsf_http_deferred_take(&p->reply);
    if (req)
        p->ops->stored(p->ctx, req, &p->batch);
    unlink_pending(p);
    free(p);
}

static void write_refused(void *owner, uint64_t value, const char *tag)
{
    struct intake_pending *p = owner;
    struct evhttp_request *req = dsf_http_deferred_take(&p->reply);
    if (req)
        p->ops->refused(p->ctx, req);
    unlink_pending(p);
    free(p);
}

static const struct writer_mark_ops write_mark = {write_stored, write_refused};

int intake_http_take(struct collector *c, struct evhttp_request *req,
                     const struct pipeline_batch *b, const struct intake_answer_ops *ops, void *ctx)
{
    struct intake_pending *p = calloc(1, sizeof(*p));
    struct writer_mark *mark = p ? writer_mark_new(&write_mark, p, 0, "") : NULL;
    if (!mark) {
        free(p);
        return -1;
    }
    p->c = c;
    p->ops = ops;
    p->ctx = ctx;
    p->batch = *b;
    p->next = c->pending_writes;
    if (p->next)
        p->next->prev = p;
    c->pending_writes = p;
    dsf_http_defer(&p->reply, req);
    pipeline_take(c, &p->batch, &mark, 1); /* p may be answered and gone on return */
    return 0;
}

void intake_http_free(struct collector *c)
{
    /* The writer went first and dropped its marks unanswered; the listener went before it,
     * so no request is left to answer. */
    while (c->pending_writes) {
        struct intake_pending *p = c->pending_writes;
        c->pending_writes = p->next;
        dsf_http_deferred_take(&p->reply);
        free(p);
    }
}
