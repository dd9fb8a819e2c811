#define DSF_MODULE "cycle"
#include "agent/agent.h"
#include "agent/buffer.h"
#include "agent/push.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/lp.h"
#include "common/metric_json.h"

#include <event2/event.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int input_enabled(const struct agent_input *in)
{
    return *(const int *)in->options;
}

int agent_inputs_init(struct agent *a, char *err, size_t errlen)
{
    for (size_t i = 0; i < a->ninputs; i++) {
        struct agent_input *in = &a->inputs[i];
        if (!input_enabled(in))
            continue;
        char ierr[DSF_CFG_ERRLEN] = "";
        if (in->def->init(&in->ctx, in->options, &a->env, ierr, sizeof(ierr))) {
            snprintf(err, errlen, "input %s: %s", in->def->name, ierr);
            return -1;
        }
        snprintf(in->labels, sizeof(in->labels), "input=\"%s\"", in->def->name);
        metrics_add_u64(&a->metrics, "damselfly_agent_input_errors_total", DSF_COUNTER,
                        "Collections of an input that failed.", in->labels, &in->errors);
        metrics_add_u64(&a->metrics, "damselfly_agent_input_runs_total", DSF_COUNTER,
                        "Collections of an input.", in->labels, &in->runs);
        metrics_add_double(&a->metrics, "damselfly_agent_input_duration_seconds", DSF_GAUGE,
                           "How long the input's last collection took.", in->labels,
                           &in->last_duration_s);
    }
    return 0;
}

void agent_inputs_fini(struct agent *a)
{
    for (size_t i = 0; i < a->ninputs; i++) {
        struct agent_input *in = &a->inputs[i];
        if (in->ctx && in->def->fini)
            in->def->fini(in->ctx);
        in->ctx = NULL;
    }
}

uint64_t agent_required_caps(const struct agent *a)
{
    uint64_t caps = 0;
    for (size_t i = 0; i < a->ninputs; i++)
        if (input_enabled(&a->inputs[i]) && a->inputs[i].def->capabilities)
            caps |= a->inputs[i].def->capabilities(a->inputs[i].options);
    return caps;
}

void agent_collect(struct agent *a, struct dsf_batch *batch, int64_t ts_ns)
{
    for (size_t i = 0; i < a->ninputs; i++) {
        struct agent_input *in = &a->inputs[i];
        if (!in->ctx)
            continue;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (in->def->collect(in->ctx, batch, ts_ns))
            in->errors++;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        in->runs++;
        in->last_duration_s = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    }
}

static void publish_batch(struct agent *a)
{
    buf_reset(&a->payload);
    if (strcmp(a->cfg.push.format, "json") == 0)
        json_render_batch(&a->payload, &a->batch, &a->identity);
    else
        lp_render_batch(&a->payload, &a->batch, &a->identity);
    if (a->payload.oom) {
        log_error("out of memory rendering %zu points: dropped", a->batch.npoints);
        a->buffer->dropped_messages++;
        a->buffer->dropped_points += a->batch.npoints;
        return;
    }
    a->seq++;
    buffer_append(a->buffer, a->boot, a->seq, a->payload.data, a->payload.len,
                  (uint32_t)a->batch.npoints);
    push_kick(a->push);
}

static void schedule_next(struct agent *a)
{
    const int64_t interval_ns = a->cfg.interval_ms * 1000000LL;
    int64_t now = dsf_now_ns();
    int64_t next = (now / interval_ns + 1) * interval_ns;
    /* The timer may fire a little early against the wall clock: never repeat a tick. */
    if (a->next_tick_ns && next <= a->next_tick_ns)
        next = a->next_tick_ns + interval_ns;
    a->next_tick_ns = next;
    int64_t wait = next - now;
    struct timeval tv = {(time_t)(wait / 1000000000LL), (suseconds_t)(wait % 1000000000LL / 1000)};
    evtimer_add(a->tick, &tv);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct agent *a = arg;
    const int64_t interval_ns = a->cfg.interval_ms * 1000000LL;
    int64_t ts = a->next_tick_ns;
    int64_t late = dsf_now_ns() - ts;
    if (late > interval_ns) {
        /* Stopped or starved (a suspended VM): skip the ticks that passed, stamp now. */
        a->overruns += (uint64_t)(late / interval_ns);
        ts += late / interval_ns * interval_ns;
        a->next_tick_ns = ts;
    }
    batch_reset(&a->batch);
    agent_collect(a, &a->batch, ts);
    a->cycles++;
    a->points += a->batch.npoints;
    if (a->push)
        publish_batch(a);
    schedule_next(a);
}

int agent_cycle_start(struct agent *a)
{
    a->tick = evtimer_new(a->base, on_tick, a);
    if (!a->tick)
        return -1;
    metrics_add_u64(&a->metrics, "damselfly_agent_cycles_total", DSF_COUNTER,
                    "Collection cycles run.", NULL, &a->cycles);
    metrics_add_u64(&a->metrics, "damselfly_agent_cycle_overruns_total", DSF_COUNTER,
                    "Ticks skipped because the agent was stopped or too slow.", NULL, &a->overruns);
    metrics_add_u64(&a->metrics, "damselfly_agent_points_total", DSF_COUNTER, "Points collected.",
                    NULL, &a->points);
    metrics_add_u64(&a->metrics, "damselfly_agent_seq", DSF_GAUGE,
                    "Sequence number of the last message of this boot.", NULL, &a->seq);
    /* A priming read: rates and CPU percentages then exist from the first tick on, and
     * /metrics has values before it. Its points are not sent. */
    agent_collect(a, &a->batch, dsf_now_ns());
    batch_reset(&a->batch);
    schedule_next(a);
    return 0;
}
