/*
 * dsf-kafka-mock: a Kafka-protocol broker on loopback for tests, built on librdkafka's mock
 * cluster (rdkafka_mock.h). Damselfly's Kafka bus and kcat talk to it like to a real cluster:
 * metadata, idempotent produce, fetch, consumer groups and offset commits.
 *
 *   dsf-kafka-mock [--brokers N] [--port P] [--topic name:partitions]... [--verbose]
 *
 * The first line on stdout is the bootstrap list ("127.0.0.1:34567,127.0.0.1:40123"); the
 * process then serves until SIGTERM or SIGINT. Topics not created up front are created on
 * first use with the mock cluster's default partition count.
 *
 * librdkafka 2.0.2's mock cluster always binds its listeners to 127.0.0.1 on a free port and
 * has no call to choose one. For --port this program supplies its own bind(): the first
 * listener the mock cluster binds to 127.0.0.1:0 gets port P instead, so the first broker
 * both listens on and advertises 127.0.0.1:P. The other brokers keep free ports.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Port for the next loopback listener bound to port 0; 0 = leave it alone. Only the main
 * thread sets it and rd_kafka_mock_cluster_new() binds its listeners on the calling thread. */
static int wanted_port;

int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    struct sockaddr_in sin;
    if (wanted_port && addr && addr->sa_family == AF_INET && len >= sizeof(sin)) {
        memcpy(&sin, addr, sizeof(sin));
        if (sin.sin_port == 0 && sin.sin_addr.s_addr == htonl(INADDR_LOOPBACK)) {
            sin.sin_port = htons((uint16_t)wanted_port);
            wanted_port = 0;
            int one = 1;
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
            return (int)syscall(SYS_bind, fd, (const struct sockaddr *)&sin, sizeof(sin));
        }
    }
    return (int)syscall(SYS_bind, fd, addr, len);
}

/* 0 when 127.0.0.1:port can be bound now, -1 with errno otherwise. */
static int try_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int rc = (int)syscall(SYS_bind, fd, (const struct sockaddr *)&sin, sizeof(sin));
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

static int verbose;

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    if (level <= 4 || verbose)
        fprintf(stderr, "dsf-kafka-mock: %s: %s\n", fac, buf);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: dsf-kafka-mock [--brokers N] [--port P] [--topic name:partitions]... "
               "[--verbose]\n"
               "  --brokers N        number of brokers (default 1)\n"
               "  --port P           bind the first broker to 127.0.0.1:P (default 0: a free "
               "port)\n"
               "  --topic name:parts create a topic (repeatable), e.g. dsf.metrics:64\n"
               "  --verbose          log librdkafka's debug messages\n"
               "Prints the bootstrap servers as the first line, then serves until SIGTERM or "
               "SIGINT.\n");
}

struct topic {
    char *name;
    int partitions;
};

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"brokers", required_argument, NULL, 'b'}, {"port", required_argument, NULL, 'p'},
        {"topic", required_argument, NULL, 't'},   {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    int brokers = 1, port = 0;
    struct topic topics[64];
    size_t ntopics = 0;
    int c;
    while ((c = getopt_long(argc, argv, "b:p:t:vh", longopts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'b':
            brokers = (int)strtol(optarg, &end, 10);
            if (*end || brokers < 1 || brokers > 32) {
                fprintf(stderr, "dsf-kafka-mock: --brokers wants 1..32, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 'p':
            port = (int)strtol(optarg, &end, 10);
            if (*end || port < 0 || port > 65535) {
                fprintf(stderr, "dsf-kafka-mock: --port wants 0..65535, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 't': {
            char *colon = strrchr(optarg, ':');
            long parts = colon ? strtol(colon + 1, &end, 10) : 0;
            if (!colon || colon == optarg || *end || parts < 1 || parts > 100000) {
                fprintf(stderr,
                        "dsf-kafka-mock: --topic wants name:partitions (e.g. dsf.metrics:64), "
                        "not '%s'\n",
                        optarg);
                return 2;
            }
            if (ntopics == sizeof(topics) / sizeof(topics[0])) {
                fprintf(stderr, "dsf-kafka-mock: at most %zu --topic options\n", ntopics);
                return 2;
            }
            topics[ntopics].name = strndup(optarg, (size_t)(colon - optarg));
            topics[ntopics].partitions = (int)parts;
            ntopics++;
            break;
        }
        case 'v':
            verbose = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }

    /* librdkafka's threads inherit this mask, so only sigwait() below sees the signals. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, log_cb);
    if (verbose && rd_kafka_conf_set(conf, "debug", "mock,broker,protocol", errstr,
                                     sizeof(errstr)) != RD_KAFKA_CONF_OK)
        fprintf(stderr, "dsf-kafka-mock: debug: %s\n", errstr);
    /* The handle only hosts the mock cluster; it never connects anywhere. */
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "dsf-kafka-mock: cannot create the librdkafka handle: %s\n", errstr);
        return 1;
    }

    /* librdkafka 2.0.2 aborts when a mock listener fails to bind, so try the port first. */
    if (port && try_port(port) < 0) {
        fprintf(stderr,
                "dsf-kafka-mock: cannot listen on 127.0.0.1:%d: %s (pick another --port, or 0 "
                "for a free one)\n",
                port, strerror(errno));
        rd_kafka_destroy(rk);
        return 1;
    }
    wanted_port = port;
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
    wanted_port = 0;
    if (!mc) {
        fprintf(stderr, "dsf-kafka-mock: cannot start the mock cluster (see the log above)\n");
        rd_kafka_destroy(rk);
        return 1;
    }
    const char *bootstraps = rd_kafka_mock_cluster_bootstraps(mc);
    if (port) {
        char want[32];
        snprintf(want, sizeof(want), "127.0.0.1:%d", port);
        if (strncmp(bootstraps, want, strlen(want)) != 0 ||
            (bootstraps[strlen(want)] != ',' && bootstraps[strlen(want)] != '\0'))
            fprintf(stderr, "dsf-kafka-mock: could not bind the first broker to %s; use %s\n", want,
                    bootstraps);
    }

    int rc = 0;
    for (size_t i = 0; i < ntopics; i++) {
        rd_kafka_resp_err_t err =
            rd_kafka_mock_topic_create(mc, topics[i].name, topics[i].partitions, 1);
        if (err) {
            fprintf(stderr, "dsf-kafka-mock: cannot create topic %s with %d partitions: %s\n",
                    topics[i].name, topics[i].partitions, rd_kafka_err2str(err));
            rc = 1;
        }
        free(topics[i].name);
    }

    if (rc == 0) {
        printf("%s\n", bootstraps);
        fflush(stdout);
        int sig = 0;
        while (sigwait(&sigs, &sig) != 0)
            ;
        if (verbose)
            fprintf(stderr, "dsf-kafka-mock: signal %d, stopping\n", sig);
    }

    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return rc;
}
