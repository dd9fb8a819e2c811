/*
 * Whose view the per-process files of the proc root give. /proc/net and /proc/self/mountinfo
 * are the reading process's network namespace and mounts: in a pod (the DaemonSet mounts the
 * host's /proc at /host/proc) /host/proc/net is the pod's network and /host/proc/self/mountinfo
 * the container's mounts. The host's are those of its init, /host/proc/1/...
 */
#ifndef DSF_AGENT_HOST_PROC_H
#define DSF_AGENT_HOST_PROC_H

#include "agent/input.h"

/* 1 when env->proc is not this process's own /proc (another mount of it, or a copy), else 0. */
int host_proc_is_foreign(const struct dsf_input_env *env);

/* The directory under env->proc whose net/ and mountinfo are the host's: "1" when the proc
 * root is foreign, "self" when it is the agent's own (then the agent runs on the host, or
 * was deliberately given its own namespaces). */
const char *host_proc_pid(const struct dsf_input_env *env);

#endif
