/* Process, /proc and cgroup v2 helpers of the local driver. */
#ifndef DSF_FED_LOCAL_PROC_H
#define DSF_FED_LOCAL_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "federation/federation.h"

/* Fields 3 (state), 5 (pgrp) and 22 (start time in clock ticks) of /proc/PID/stat.
 * 0, or -1 when there is no such process. */
int lp_proc_stat(pid_t pid, char *state, pid_t *pgrp, uint64_t *start);
/* 1 when PID is the process started at START and has not exited (zombies have); *state
 * gets its state letter. 0 otherwise, including a pid reused by another process. */
int lp_alive(pid_t pid, uint64_t start, char *state);
/* Live (non-zombie) members of a process group, up to max; returns how many there are. */
size_t lp_pgrp_members(pid_t pgid, pid_t *out, size_t max);

/* The cgroup2 mount point from /proc/self/mountinfo (hybrid hosts: /sys/fs/cgroup/unified,
 * pure v2: /sys/fs/cgroup). 0, or -1 when there is none or it has no cgroup.freeze. */
int lp_cgroup2_root(char *buf, size_t len);
int lp_cg_create(const char *dir, struct fed_error *err);
/* Writes cgroup.freeze and waits (bounded) until cgroup.events reports the change. */
int lp_cg_freeze(const char *dir, int on, int64_t timeout_ms, struct fed_error *err);
/* 1 frozen, 0 not, -1 no such cgroup. */
int lp_cg_frozen(const char *dir);
/* Pids in cgroup.procs, up to max; returns how many there are, -1 when the group is gone. */
long lp_cg_procs(const char *dir, pid_t *out, size_t max);
/* Signals every process of the group (cgroup.kill for SIGKILL when the kernel has it). */
int lp_cg_signal(const char *dir, int sig);
void lp_cg_remove(const char *dir);

struct lp_spawn {
    const char *agent_path;
    char *const *agent_argv;
    const char *workload_path; /* NULL: none */
    char *const *workload_argv;
    char *const *envp;
    const char *cwd;
    int log_fd;               /* stdout and stderr of both */
    const char *cgroup_procs; /* "<cgroup>/cgroup.procs" to join, or NULL */
};
/* Starts the agent (and workload) detached: a new session whose processes are not children
 * of the caller. *pgid is the session's process group. */
int lp_spawn(const struct lp_spawn *s, pid_t *pgid, pid_t *agent, pid_t *workload,
             struct fed_error *err);
/* Runs argv to completion with output to log_fd, killed after timeout_ms. Returns 0 when
 * it exited 0; otherwise -1 with err naming call and the exit status. */
int lp_run(const char *call, char *const *argv, char *const *envp, const char *cwd, int log_fd,
           int64_t timeout_ms, struct fed_error *err);
/* Absolute path of a program (PATH search when it has no '/'), or -1. */
int lp_which(const char *prog, char *out, size_t len);

/* GET http://127.0.0.1:PORT/PATH through the REST client, one attempt, no proxy, with the
 * bearer token when not NULL: the body (malloc'd) and *code, the status; NULL with *code -1
 * when no answer came in time. */
char *lp_http_get(int port, const char *path, const char *token, int *code, int timeout_ms);
/* A loopback TCP port that was free a moment ago, or -1. */
int lp_free_port(void);

#endif
