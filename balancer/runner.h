/*
 * What starts and stops the members of a pool, behind one small interface: `local` spawns
 * and stops damselfly-collector processes (what `damselfly up` uses), `kubernetes` scales the
 * collector Deployment through the federation layer's Kubernetes driver.
 */
#ifndef DSF_BALANCER_RUNNER_H
#define DSF_BALANCER_RUNNER_H

#include <stddef.h>

struct event_base;
struct runner;

struct runner_ops {
    const char *name; /* "local", "kubernetes" */
    /* How many members the runner has started and not stopped (what it was asked for). */
    int (*replicas)(struct runner *r);
    /* Starts members until it runs `want` of them (never stops any). 0, or -1 with err. */
    int (*scale_out)(struct runner *r, int want, char *err, size_t errlen);
    /* Stops the member `id` (the balancer has moved its buckets away first); NULL id: any
     * one (a Deployment picks its own pod). 0, or -1 with err. */
    int (*stop)(struct runner *r, const char *id, char *err, size_t errlen);
    /* 1 when the runner started the member `id` (its scale-in victims are chosen among
     * these). */
    int (*owns)(struct runner *r, const char *id);
    void (*free)(struct runner *r);
};

struct runner {
    const struct runner_ops *ops;
};

struct runner_config;

struct runner *runner_local_new(struct event_base *base, const struct runner_config *cfg,
                                char *err, size_t errlen);
struct runner *runner_k8s_new(struct event_base *base, const struct runner_config *cfg,
                              char *err, size_t errlen);

#endif
