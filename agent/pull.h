/* Pull: GET /api/v1/snapshot (JSON of a fresh collection; ?format=lp for line protocol) on the
 * daemon's HTTP server, and the agent's parts of its /metrics (the inputs' families, with
 * node_exporter's names) and /healthz. */
#ifndef DSF_AGENT_PULL_H
#define DSF_AGENT_PULL_H

#include <stddef.h>

#include "common/buf.h"

struct agent;
struct pull;
struct dsf_http_server;

struct pull *pull_new(struct agent *a, struct dsf_http_server *server, char *err,
                      size_t errlen);
void pull_free(struct pull *p);
void agent_render_metrics(void *arg, struct dsf_buf *out);
void agent_health(void *arg, struct dsf_buf *out);

#endif
