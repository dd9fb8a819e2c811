#define DSF_MODULE "privs"
#include "common/fail.h"
#include "common/log.h"

#include "agent/privs.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <unistd.h>

/* Capabilities the running kernel knows (not the headers'), capped to what a mask holds. */
static int kernel_caps(void)
{
    int n = (int)cap_max_bits();
    if (n <= 0)
        n = CAP_LAST_CAP + 1;
    return n > 64 ? 64 : n;
}

/*
 * Capability sets are per thread: a drop done while paho or librdkafka threads exist would
 * leave those threads privileged. /proc/self/task lists the threads; without /proc mounted
 * the check cannot be done and is skipped (returns 0).
 */
static int thread_count(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static int read_caps(uint64_t *prm, uint64_t *eff, uint64_t *inh)
{
    cap_t c = cap_get_proc();
    if (!c)
        return -1;
    *prm = *eff = *inh = 0;
    for (int i = 0; i < kernel_caps(); i++) {
        cap_flag_value_t v;
        if (cap_get_flag(c, (cap_value_t)i, CAP_PERMITTED, &v) == 0 && v == CAP_SET)
            *prm |= PRIVS_CAP(i);
        if (cap_get_flag(c, (cap_value_t)i, CAP_EFFECTIVE, &v) == 0 && v == CAP_SET)
            *eff |= PRIVS_CAP(i);
        if (cap_get_flag(c, (cap_value_t)i, CAP_INHERITABLE, &v) == 0 && v == CAP_SET)
            *inh |= PRIVS_CAP(i);
    }
    cap_free(c);
    return 0;
}

/* Permitted = effective = caps, inheritable empty. Lowering is always allowed. */
static int set_caps(uint64_t caps)
{
    cap_t c = cap_init(); /* every flag clear */
    if (!c)
        return -1;
    cap_value_t list[64];
    int n = 0;
    for (int i = 0; i < 64; i++)
        if (caps & PRIVS_CAP(i))
            list[n++] = (cap_value_t)i;
    int rc = 0;
    if (n > 0 && (cap_set_flag(c, CAP_PERMITTED, n, list, CAP_SET) ||
                  cap_set_flag(c, CAP_EFFECTIVE, n, list, CAP_SET)))
        rc = -1;
    if (rc == 0)
        rc = cap_set_proc(c);
    int saved = errno;
    cap_free(c);
    errno = saved;
    return rc;
}

/*
 * Removes every capability not kept from the bounding set, so that nothing exec'd later
 * (even a file-capability binary, were no-new-privs ever lifted) can get it back.
 * Needs CAP_SETPCAP in the effective set. Returns the number of capabilities that could
 * not be dropped (with *first_errno), 0 when the set now holds only kept capabilities.
 */
static int drop_bounding(uint64_t keep, int *first_errno)
{
    int left = 0;
    *first_errno = 0;
    for (int i = 0; i < (int)cap_max_bits(); i++) {
        if (i < 64 && (keep & PRIVS_CAP(i)))
            continue;
        if (prctl(PR_CAPBSET_READ, (unsigned long)i, 0, 0, 0) != 1)
            continue; /* already gone, or unknown to this kernel */
        if (prctl(PR_CAPBSET_DROP, (unsigned long)i, 0, 0, 0) != 0) {
            if (!*first_errno)
                *first_errno = errno;
            left++;
        }
    }
    return left;
}

static int clear_ambient(char *err, size_t errlen)
{
    /* EINVAL: kernel older than 4.3, which has no ambient set to clear. */
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
        return dsf_fail(err, errlen, "clearing the ambient capability set failed: %s",
                        strerror(errno));
    return 0;
}

static int set_no_new_privs(char *err, size_t errlen)
{
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return dsf_fail(err, errlen,
                        "prctl(PR_SET_NO_NEW_PRIVS) failed: %s (the kernel must be 3.5 or newer)",
                        strerror(errno));
    return 0;
}

/* getpwnam_r with a buffer that grows until the entry fits. */
static int lookup_user(const char *user, uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
    long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
    size_t size = hint > 0 ? (size_t)hint : 4096;
    for (;;) {
        char *buf = malloc(size);
        if (!buf)
            return dsf_fail(err, errlen, "out of memory looking up user '%s'", user);
        struct passwd pw, *res = NULL;
        int rc = getpwnam_r(user, &pw, buf, size, &res);
        if (rc == ERANGE && size < (1u << 20)) {
            free(buf);
            size *= 2;
            continue;
        }
        if (rc == 0 && res) {
            *uid = pw.pw_uid;
            *gid = pw.pw_gid;
            free(buf);
            return 0;
        }
        free(buf);
        /* Per POSIX a missing entry is rc 0 with res NULL; some NSS modules report ENOENT. */
        if (rc == 0 || rc == ENOENT || rc == ESRCH)
            return dsf_fail(err, errlen,
                            "user '%s' does not exist: create it (useradd --system "
                            "--no-create-home --shell /usr/sbin/nologin %s) or set privileges.user",
                            user, user);
        return dsf_fail(err, errlen, "looking up user '%s' failed: %s (check /etc/nsswitch.conf)",
                        user, strerror(rc));
    }
}

static void user_name(uid_t uid, char *out, size_t n)
{
    char buf[4096];
    struct passwd pw, *res = NULL;
    if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res)
        snprintf(out, n, "%s", pw.pw_name);
    else
        snprintf(out, n, "%u", (unsigned)uid);
}

static void log_result(uint64_t wanted)
{
    uint64_t prm, eff, inh;
    char caps[512], name[256];
    if (read_caps(&prm, &eff, &inh) != 0)
        eff = wanted;
    user_name(geteuid(), name, sizeof(name));
    log_info("running as uid %u (%s) gid %u, capabilities kept: %s", (unsigned)geteuid(), name,
             (unsigned)getegid(), privs_caps_describe(eff, caps, sizeof(caps)));
}

static void warn_unavailable(uint64_t missing)
{
    if (!missing)
        return;
    char caps[512];
    log_warn("capabilities %s were asked for but are not held by the process, so the inputs "
             "needing them will see less (grant them to the service, e.g. "
             "AmbientCapabilities= in the systemd unit)",
             privs_caps_describe(missing, caps, sizeof(caps)));
}

static int drop_as_root(const char *user, uint64_t keep, char *err, size_t errlen)
{
    uid_t uid = 0;
    gid_t gid = 0;
    if (!user || !*user)
        return dsf_fail(err, errlen,
                        "privileges.user is empty: set it to the account the agent should run as "
                        "(default damselfly) or set privileges.drop=false");
    if (lookup_user(user, &uid, &gid, err, errlen))
        return -1;
    if (uid == 0)
        return dsf_fail(err, errlen,
                        "user '%s' has uid 0, so switching to it keeps full root: set "
                        "privileges.user to an unprivileged account, or privileges.drop=false to "
                        "run as root on purpose",
                        user);

    uint64_t prm, eff, inh;
    if (read_caps(&prm, &eff, &inh) != 0)
        return dsf_fail(err, errlen, "reading the process capabilities failed: %s",
                        strerror(errno));
    uint64_t want = keep & prm;
    warn_unavailable(keep & ~prm);

    /* Shrinking the bounding set needs CAP_SETPCAP, which the uid switch takes away. */
    int bnd_errno;
    int left = drop_bounding(want, &bnd_errno);
    if (left > 0 && bnd_errno != EPERM)
        return dsf_fail(err, errlen, "dropping capabilities from the bounding set failed: %s",
                        strerror(bnd_errno));
    if (left > 0)
        log_warn("%d capabilities stay in the bounding set (no CAP_SETPCAP here, e.g. in a "
                 "container); no-new-privs still keeps them from coming back",
                 left);
    if (clear_ambient(err, errlen))
        return -1;

    /* Without KEEPCAPS, setuid() away from 0 clears the permitted set: only ask for it when
     * there is something to keep. */
    if (want && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0)
        return dsf_fail(err, errlen, "prctl(PR_SET_KEEPCAPS) failed: %s", strerror(errno));
    if (initgroups(user, gid) != 0)
        return dsf_fail(err, errlen, "setting the supplementary groups of '%s' failed: %s", user,
                        strerror(errno));
    /* Group first: once the uid is not 0 there is no CAP_SETGID left to change it. */
    if (setgid(gid) != 0)
        return dsf_fail(err, errlen, "setgid(%u) for user '%s' failed: %s", (unsigned)gid, user,
                        strerror(errno));
    if (setuid(uid) != 0)
        return dsf_fail(err, errlen, "setuid(%u) for user '%s' failed: %s", (unsigned)uid, user,
                        strerror(errno));

    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0 || ru != uid || eu != uid ||
        su != uid || rg != gid || eg != gid || sg != gid)
        return dsf_fail(err, errlen, "switching to user '%s' (uid %u gid %u) did not take effect",
                        user, (unsigned)uid, (unsigned)gid);
    /* The effective set is empty right after setuid(), so both must fail; if they do not,
     * something (a LSM, a seccomp policy, odd securebits) kept root reachable. */
    if (setuid(0) == 0)
        return dsf_fail(err, errlen, "still able to setuid(0) after switching to '%s': refusing",
                        user);
    if (gid != 0 && setgid(0) == 0)
        return dsf_fail(err, errlen, "still able to setgid(0) after switching to '%s': refusing",
                        user);
    if (want)
        prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0); /* an exec would clear it anyway */

    if (set_caps(want) != 0) {
        char caps[512];
        return dsf_fail(err, errlen, "keeping capabilities %s after switching to '%s' failed: %s",
                        privs_caps_describe(want, caps, sizeof(caps)), user, strerror(errno));
    }
    return 0;
}

static int drop_as_user(uint64_t keep, char *err, size_t errlen)
{
    uint64_t prm, eff, inh;
    if (read_caps(&prm, &eff, &inh) != 0)
        return dsf_fail(err, errlen, "reading the process capabilities failed: %s",
                        strerror(errno));
    uint64_t want = keep & prm;
    warn_unavailable(keep & ~prm);

    /* Only a process holding CAP_SETPCAP may shrink the bounding set; raise it briefly. */
    if (prm & PRIVS_CAP(CAP_SETPCAP)) {
        cap_t c = cap_get_proc();
        cap_value_t setpcap = CAP_SETPCAP;
        if (c && cap_set_flag(c, CAP_EFFECTIVE, 1, &setpcap, CAP_SET) == 0 &&
            cap_set_proc(c) == 0) {
            int bnd_errno;
            int left = drop_bounding(want, &bnd_errno);
            if (left > 0)
                log_warn("%d capabilities stay in the bounding set: %s", left, strerror(bnd_errno));
        }
        if (c)
            cap_free(c);
    }
    if (clear_ambient(err, errlen))
        return -1;
    if ((prm != want || eff != want || inh != 0) && set_caps(want) != 0)
        return dsf_fail(err, errlen, "dropping capabilities failed: %s", strerror(errno));
    return 0;
}

int privs_drop(const char *user, uint64_t keep_caps, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    /* Either would let the agent undo the switch and become root again. */
    if (keep_caps & (PRIVS_CAP(CAP_SETUID) | PRIVS_CAP(CAP_SETGID)))
        return dsf_fail(err, errlen,
                        "keeping cap_setuid or cap_setgid would undo the privilege drop: remove "
                        "them from the kept capabilities");
    int threads = thread_count();
    if (threads > 1)
        return dsf_fail(err, errlen,
                        "privileges must be dropped before any thread starts (%d running): "
                        "capabilities are per thread and the others would stay privileged",
                        threads);

    int rc = geteuid() == 0 ? drop_as_root(user, keep_caps, err, errlen)
                            : drop_as_user(keep_caps, err, errlen);
    if (rc)
        return -1;
    if (set_no_new_privs(err, errlen))
        return -1;
    log_result(keep_caps);
    return 0;
}

const char *privs_caps_describe(uint64_t caps, char *buf, size_t n)
{
    if (!buf || n == 0)
        return buf;
    buf[0] = '\0';
    size_t len = 0;
    for (int i = 0; i < 64; i++) {
        if (!(caps & PRIVS_CAP(i)))
            continue;
        char *name = cap_to_name((cap_value_t)i); /* a number for caps libcap does not know */
        int w = snprintf(buf + len, n - len, "%s%s", len ? "," : "", name ? name : "?");
        if (name)
            cap_free(name);
        if (w < 0 || (size_t)w >= n - len) {
            /* Truncated: keep whole names only, mark the cut. */
            buf[len] = '\0';
            if (len + 4 < n)
                snprintf(buf + len, n - len, "%s...", len ? "," : "");
            return buf;
        }
        len += (size_t)w;
    }
    if (len == 0)
        snprintf(buf, n, "none");
    return buf;
}

int privs_caps_parse(const char *list, uint64_t *out, char *err, size_t errlen)
{
    *out = 0;
    if (!list)
        return 0;
    const char *p = list;
    while (*p) {
        while (*p == ',' || isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        char tok[64];
        size_t n = 0;
        while (*p && *p != ',' && !isspace((unsigned char)*p)) {
            if (n + 1 >= sizeof(tok))
                return dsf_fail(err, errlen, "capability name '%.20s...' is too long", list);
            tok[n++] = (char)tolower((unsigned char)*p++);
        }
        tok[n] = '\0';
        if (strcmp(tok, "none") == 0)
            continue;
        cap_value_t v;
        if (cap_from_name(tok, &v) != 0 || v < 0 || v >= 64)
            return dsf_fail(err, errlen,
                            "unknown capability '%s': use names like cap_dac_read_search "
                            "(see capabilities(7))",
                            tok);
        *out |= PRIVS_CAP(v);
    }
    return 0;
}
