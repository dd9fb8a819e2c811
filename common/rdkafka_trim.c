/*
 * Stand-ins that keep two parts of librdkafka.a out of the static agent (DAMSELFLY_STATIC=ON
 * only, linked straight into the executable):
 *
 *   - the mock cluster (rdkafka_mock*.o, ~190 KB): librdkafka starts it only for the
 *     test.mock.num.brokers property, which the agent never sets;
 *   - plugin loading (rddl.o, which pulls dlopen into a static binary): the
 *     plugin.library.paths property is unavailable in the static agent.
 *
 * These are exactly the symbols the rest of librdkafka.a takes from those objects. Tests and
 * tools link the real ones: the Kafka mock broker is built on the mock cluster.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <stdio.h>

static const char no_plugins[] =
    "plugin.library.paths is not available in the static build of damselfly-agent";

rd_kafka_mock_cluster_t *rd_kafka_mock_cluster_new(rd_kafka_t *rk, int broker_cnt)
{
    return NULL; /* librdkafka then fails rd_kafka_new() for test.mock.num.brokers */
}

const char *rd_kafka_mock_cluster_bootstraps(const rd_kafka_mock_cluster_t *mcluster)
{
    return NULL;
}

void rd_kafka_mock_cluster_destroy(rd_kafka_mock_cluster_t *mcluster) {}

rd_kafka_resp_err_t rd_kafka_mock_broker_set_rtt(rd_kafka_mock_cluster_t *mcluster,
                                                 int32_t broker_id, int rtt_ms)
{
    return RD_KAFKA_RESP_ERR__NOT_IMPLEMENTED;
}

/* rddl.h's handle type is opaque to its callers. */
void *rd_dl_open(const char *path, char *errstr, size_t errstr_size)
{
    snprintf(errstr, errstr_size, "%s", no_plugins);
    return NULL;
}

void *rd_dl_sym(void *handle, const char *symbol, char *errstr, size_t errstr_size)
{
    snprintf(errstr, errstr_size, "%s", no_plugins);
    return NULL;
}

void rd_dl_close(void *handle) {}
