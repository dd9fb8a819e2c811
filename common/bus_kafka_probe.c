/* The Kafka bus's connection probe: a helper thread asks for cluster metadata and hands the
 * answer to the loop, which decides connected or not (see bus_kafka.c). */
#define DSF_MODULE "kafka"
#include "common/bus_kafka_impl.h"
#include "common/log.h"
#include "common/loop.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define PROBE_TIMEOUT_MS 2000
#define PROBE_UP_INTERVAL_MS 5000
#define PROBE_DOWN_INTERVAL_MS 1000
#define PROBE_FAILS_TO_DISCONNECT 2

static void *probe_main(void *p)
{
    struct kbus *kb = p;
    pthread_mutex_lock(&kb->probe_lock);
    while (!kb->probe_stop) {
        rd_kafka_t *rk = kb->probe_rk;
        pthread_mutex_unlock(&kb->probe_lock);

        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, NULL, &md, PROBE_TIMEOUT_MS);
        struct probe_result r = {.up =
                                     err == RD_KAFKA_RESP_ERR_NO_ERROR && md && md->broker_cnt > 0};
        if (!r.up)
            snprintf(r.reason, sizeof(r.reason), "metadata request: %s",
                     err ? rd_kafka_err2str(err) : "no brokers in the answer");
        if (md)
            rd_kafka_metadata_destroy(md);
        dsf_handoff_post(kb->probe_ho, &r); /* full only if the loop is stuck: skip */

        pthread_mutex_lock(&kb->probe_lock);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        int64_t ns = until.tv_nsec +
                     (int64_t)(r.up ? PROBE_UP_INTERVAL_MS : PROBE_DOWN_INTERVAL_MS) * 1000000;
        until.tv_sec += ns / 1000000000;
        until.tv_nsec = ns % 1000000000;
        while (!kb->probe_stop &&
               pthread_cond_timedwait(&kb->probe_cond, &kb->probe_lock, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&kb->probe_lock);
    return NULL;
}

void kbus_on_probe(void *arg, void *item)
{
    struct kbus *kb = arg;
    const struct probe_result *r = item;
    if (r->up) {
        kbus_set_connected(kb, 1, NULL);
    } else if (!kb->connected || ++kb->probe_fails >= PROBE_FAILS_TO_DISCONNECT) {
        kbus_set_connected(kb, 0, r->reason);
    }
}

void kbus_probe_start(struct kbus *kb, rd_kafka_t *rk)
{
    if (kb->probe_running)
        return;
    kb->probe_rk = rk;
    kb->probe_stop = 0;
    if (pthread_create(&kb->probe_thread, NULL, probe_main, kb) != 0) {
        log_warn("cannot start the Kafka connection probe for %s: %s; connection state will "
                 "come from deliveries only",
                 kb->brokers, strerror(errno));
        return;
    }
    kb->probe_running = 1;
}

/* Blocks for at most one metadata request (PROBE_TIMEOUT_MS). */
void kbus_probe_stop(struct kbus *kb)
{
    if (!kb->probe_running)
        return;
    pthread_mutex_lock(&kb->probe_lock);
    kb->probe_stop = 1;
    pthread_cond_signal(&kb->probe_cond);
    pthread_mutex_unlock(&kb->probe_lock);
    pthread_join(kb->probe_thread, NULL);
    kb->probe_running = 0;
}
