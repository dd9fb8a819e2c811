/*
 * The status payloads the bus retains: an agent's dsf/a/{ns}/{mci}/{vm}/status and a
 * collector's heartbeat or Last Will, {"status":"online"|"offline",...}. One parser for
 * every reader (the alarm engine, the controller, the balancer).
 */
#ifndef DSF_STATUS_H
#define DSF_STATUS_H

#include <stddef.h>

enum dsf_status {
    DSF_STATUS_INVALID = -1, /* not a status payload */
    DSF_STATUS_OFFLINE = 0,
    DSF_STATUS_ONLINE = 1,
    DSF_STATUS_CLEARED = 2, /* an empty payload: the retained status was removed */
};

enum dsf_status dsf_status_parse(const void *payload, size_t len);

#endif
