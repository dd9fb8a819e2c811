/* Pull: GET /metrics (Prometheus text, node_exporter names), GET /api/v1/snapshot (JSON of a
 * fresh collection; ?format=lp for line protocol), GET /healthz. */
#ifndef DSF_AGENT_PULL_H
#define DSF_AGENT_PULL_H

#include <stddef.h>

struct agent;
struct pull;

struct pull *pull_new(struct agent *a, char *err, size_t errlen);
int pull_port(const struct pull *p);
void pull_free(struct pull *p);

#endif
