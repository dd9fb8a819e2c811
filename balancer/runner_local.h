/* The local runner's members and their record in DIR/children.json (runner_local_state.c). */
#ifndef DSF_BALANCER_RUNNER_LOCAL_H
#define DSF_BALANCER_RUNNER_LOCAL_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "balancer/runner.h"

#define LOCAL_ID_MAX 128

struct local_child {
    int n; /* the member is PREFIX-n */
    char id[LOCAL_ID_MAX];
    pid_t pid;
    int ours;           /* spawned by this process: reaped with waitpid; else adopted */
    int stopping;       /* SIGTERM sent */
    int64_t kill_at_ms; /* monotonic: SIGKILL then, when still there */
    int killed;
};

struct local_runner {
    struct runner base;
    struct event_base *loop;
    const struct runner_local_config *cfg;
    char collector[PATH_MAX];
    struct local_child *kids;
    size_t nkids, cap;
    struct event *tick;
    uint64_t exited; /* members that exited without being stopped */
};

/* Is pid a collector of ours running as id (its /proc/PID/cmdline: the collector binary and
 * "id=ID" among its arguments)? A pid reused by another program, or a zombie, is not. */
int local_child_alive(const struct local_runner *L, pid_t pid, const char *id);
/* Writes DIR/children.json. 0, or -1 with err. */
int local_state_save(const struct local_runner *L, char *err, size_t errlen);
/* Adopts the members children.json lists that still run. 0, or -1 with err (a file that
 * cannot be parsed; a missing one is no error). */
int local_state_load(struct local_runner *L, char *err, size_t errlen);
/* Appends a member; NULL out of memory. */
struct local_child *local_child_add(struct local_runner *L, const struct local_child *c);

#endif
