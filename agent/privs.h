/*
 * Privilege drop for the agent: it reads /proc and /sys and talks to the network, none of
 * which needs root, so once its listening socket and files are open it becomes an ordinary
 * user holding at most the few capabilities an input asks for (CAP_DAC_READ_SEARCH for
 * procstat), and can never regain more (empty bounding set, no-new-privs).
 */
#ifndef DSF_AGENT_PRIVS_H
#define DSF_AGENT_PRIVS_H

#include <stddef.h>
#include <stdint.h>

/* Bit for one capability in a keep_caps mask: PRIVS_CAP(CAP_DAC_READ_SEARCH). */
#define PRIVS_CAP(c) ((uint64_t)1 << (c))

/*
 * As root: switches to `user` (its uid, primary gid and supplementary groups) keeping exactly
 * the capabilities in keep_caps, empties the inheritable and ambient sets, drops every other
 * capability from the bounding set and sets no-new-privs. As another user: drops every held
 * capability not in keep_caps and sets no-new-privs; `user` is not used.
 *
 * Capabilities and no-new-privs belong to the calling thread only, so this must run before
 * any thread is started (paho, librdkafka): it refuses when the process has more than one.
 * Returns 0, or -1 with a message saying what to do in err (nothing changed when the user
 * lookup fails).
 */
int privs_drop(const char *user, uint64_t keep_caps, char *err, size_t errlen);

/* "cap_dac_read_search,cap_net_raw" or "none"; always NUL-terminated; returns buf. */
const char *privs_caps_describe(uint64_t caps, char *buf, size_t n);

/*
 * Parses a comma- or space-separated list of capability names ("cap_dac_read_search" or
 * "CAP_DAC_READ_SEARCH"; "" and "none" mean no capability) into a mask. 0 or -1 with err.
 */
int privs_caps_parse(const char *list, uint64_t *out, char *err, size_t errlen);

#endif
