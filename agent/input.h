/*
 * One interface for every input (collectd-style registration, Fluent Bit-style context):
 * an input owns a context made by init, fills the batch each cycle, and can expose its
 * last readings under node_exporter's names for GET /metrics.
 */
#ifndef DSF_AGENT_INPUT_H
#define DSF_AGENT_INPUT_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/config.h"
#include "common/point.h"

/* Where the host's pseudo-filesystems are: "/proc" and "/sys" normally; "/host/proc" and
 * "/host/sys" for the Kubernetes DaemonSet, which mounts the host's read-only. */
struct dsf_input_env {
    const char *proc;
    const char *sys;
    const char *rootfs; /* prefix for mount points read from mountinfo; "" normally */
    int64_t interval_ms;
};

struct dsf_input {
    const char *name;
    /* Rows for the keys "inputs.<name>.*". The options struct (options_size bytes, zeroed,
     * defaults applied by the config loader) starts with `int enabled`. */
    const struct dsf_cfg_key *options;
    size_t options_size;
    int (*init)(void **ctx, const void *options, const struct dsf_input_env *env, char *err,
                size_t errlen);
    /* Appends this cycle's points, stamped now_ns. Returns 0, or -1 after logging (counted
     * as an input error; the points added before the error are kept). */
    int (*collect)(void *ctx, struct dsf_batch *out, int64_t now_ns);
    /* Optional: node_exporter-named series from the last collection. */
    void (*prom)(void *ctx, struct dsf_buf *out);
    /* Optional: Linux capabilities (bit n = CAP number n) the input needs with these options. */
    uint64_t (*capabilities)(const void *options);
    void (*fini)(void *ctx);
};

/* Every input compiled in, in the order they run; NULL-terminated. */
extern const struct dsf_input *const dsf_inputs[];

/* On-demand (agent/push.c): one netlatency measurement to the peers a request names
 * (host:port or [v6]:port), within timeout_ms, as the input's points. The peers come from the
 * network: each must be a literal address, no name is ever looked up for them. 0, or -1 with
 * err naming the peer refused. */
int netlatency_measure(const struct dsf_strlist *peers, int64_t timeout_ms, struct dsf_batch *out,
                       int64_t now_ns, char *err, size_t errlen);

#endif
