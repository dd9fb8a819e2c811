/* Agents' broker users in mosquitto's password file: see bus_creds.h. */
#define DSF_MODULE "fed-bus"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base64.h"
#include "common/buf.h"
#include "common/file.h"
#include "common/log.h"
#include "federation/bus_creds.h"

#define HASH_LEN 64
#define PASSWORD_BYTES 24 /* 192 random bits, 32 base64 characters */

struct fed_bus {
    char *password_file; /* NULL: provisioning off */
    char *pid_file;      /* NULL: the operator reloads the broker */
};

struct fed_bus *fed_bus_open(const char *password_file, const char *pid_file, struct fed_error *err)
{
    struct fed_bus *b = calloc(1, sizeof(*b));
    if (!b) {
        fed_fail(err, FED_EIO, "bus credentials", ENOMEM, "out of memory");
        return NULL;
    }
    if ((password_file && password_file[0] && !(b->password_file = strdup(password_file))) ||
        (pid_file && pid_file[0] && !(b->pid_file = strdup(pid_file)))) {
        fed_bus_close(b);
        fed_fail(err, FED_EIO, "bus credentials", ENOMEM, "out of memory");
        return NULL;
    }
    return b;
}

void fed_bus_close(struct fed_bus *b)
{
    if (!b)
        return;
    free(b->password_file);
    free(b->pid_file);
    free(b);
}

int fed_bus_enabled(const struct fed_bus *b)
{
    return b && b->password_file;
}

int fed_bus_username(const char *ns, const char *mci, const char *vm, char *out, size_t len)
{
    return snprintf(out, len, "%s/%s/%s", ns, mci, vm) < (int)len ? 0 : -1;
}

/* ---- the $7$ line ---------------------------------------------------------------------- */

static int append_b64(struct dsf_buf *b, const void *data, size_t len)
{
    dsf_base64_append(b, data, len);
    return b->oom ? -1 : 0;
}

int fed_bus_hash_line(const char *user, const char *password, const unsigned char *salt,
                      size_t salt_len, int iterations, char *out, size_t len)
{
    unsigned char hash[HASH_LEN];
    if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)salt_len, iterations,
                          EVP_sha512(), sizeof(hash), hash) != 1)
        return -1;
    struct dsf_buf b = {0};
    char head[32];
    snprintf(head, sizeof(head), ":$7$%d$", iterations);
    buf_puts(&b, user);
    buf_puts(&b, head);
    int rc = append_b64(&b, salt, salt_len);
    buf_putc(&b, '$');
    if (rc == 0)
        rc = append_b64(&b, hash, sizeof(hash));
    OPENSSL_cleanse(hash, sizeof(hash));
    if (rc == 0 && (b.oom || b.len >= len))
        rc = -1;
    if (rc == 0)
        memcpy(out, buf_cstr(&b), b.len + 1);
    buf_free(&b);
    return rc;
}

int fed_bus_check_line(const char *line, const char *password)
{
    const char *colon = strchr(line, ':');
    if (!colon || strncmp(colon + 1, "$7$", 3))
        return -1;
    char *end;
    long it = strtol(colon + 4, &end, 10);
    const char *salt_b64 = end + 1, *dollar = strchr(salt_b64, '$');
    if (*end != '$' || it < 1 || it > 10000000 || !dollar)
        return -1;
    size_t salt_len;
    char *salt = dsf_base64_decode(salt_b64, (size_t)(dollar - salt_b64), &salt_len);
    char user[FED_BUS_USER_MAX + 1], again[FED_BUS_LINE_MAX + 1];
    int rc = -1;
    if (salt && (size_t)(colon - line) <= FED_BUS_USER_MAX) {
        snprintf(user, sizeof(user), "%.*s", (int)(colon - line), line);
        if (fed_bus_hash_line(user, password, (unsigned char *)salt, salt_len, (int)it, again,
                              sizeof(again)) == 0)
            rc = strlen(again) == strlen(line) && !CRYPTO_memcmp(again, line, strlen(line));
    }
    free(salt);
    return rc;
}

/* ---- the password file ------------------------------------------------------------------ */

/* The password file's directory and base name, for dsf_write_file_atomic and the lock. */
static void split_path(const char *path, char *dir, size_t dlen, const char **name)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(dir, dlen, ".");
        *name = path;
    } else {
        snprintf(dir, dlen, "%.*s", slash == path ? 1 : (int)(slash - path), path);
        *name = slash + 1;
    }
}

/* An exclusive lock beside the file, so that two damselfly-fed processes (or threads) never
 * interleave their read-modify-writes. The fd, or -1 with err. */
static int lock_file(const char *dir, const char *name, struct fed_error *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/.%s.lock", dir, name);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return fed_fail(err, FED_EIO, "lock password file", errno, "%s: %s", path, strerror(errno));
    while (flock(fd, LOCK_EX) < 0) {
        if (errno != EINTR) {
            fed_fail(err, FED_EIO, "lock password file", errno, "%s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
    }
    return fd;
}

/* text without the lines of user, with line (when not NULL) appended. */
static int rewrite(const char *text, const char *user, const char *line, struct dsf_buf *out)
{
    size_t ulen = strlen(user);
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (!(n > ulen && !strncmp(p, user, ulen) && p[ulen] == ':')) {
            buf_put(out, p, n);
            buf_putc(out, '\n');
        }
        p = nl ? nl + 1 : p + n;
    }
    if (line) {
        buf_puts(out, line);
        buf_putc(out, '\n');
    }
    return out->oom ? -1 : 0;
}

/* Replaces the file with the mode and owner the broker reads it with, already on the new
 * file when it takes the name: a reload at any moment finds a file it may read. */
static int replace_file(const char *path, const char *dir, const char *name,
                        const struct dsf_buf *data, const struct stat *old, struct fed_error *err)
{
    char msg[512];
    if (dsf_write_file_atomic_like(dir, name, data->data ? data->data : "", data->len, old, msg,
                                   sizeof(msg)) < 0)
        return fed_fail(err, FED_EIO, "write password file", errno,
                        "%s (mode %o, owner %d:%d kept from %s)", msg,
                        (unsigned)(old->st_mode & 07777), (int)old->st_uid, (int)old->st_gid, path);
    return 0;
}

/* Sends SIGHUP to the broker, or says that someone must. */
static void reload_broker(const struct fed_bus *b, const char *what)
{
    if (!b->pid_file) {
        log_warn("%s: bus.broker_pid_file is not set: reload the broker (SIGHUP) for it to take "
                 "effect",
                 what);
        return;
    }
    char *text = dsf_read_file(b->pid_file, NULL);
    char *end = NULL;
    long pid = text ? strtol(text, &end, 10) : 0;
    int ok = text && end != text && (*end == 0 || *end == '\n') && pid > 1 && pid <= INT_MAX;
    if (!ok)
        log_error("%s: bus.broker_pid_file '%s' %s: reload the broker (SIGHUP) for it to take "
                  "effect",
                  what, b->pid_file, text ? "does not hold a pid" : strerror(errno));
    else if (kill((pid_t)pid, SIGHUP) < 0)
        log_error("%s: SIGHUP to broker pid %ld (from %s): %s: reload the broker for it to take "
                  "effect",
                  what, pid, b->pid_file, strerror(errno));
    else
        log_debug("%s: broker pid %ld reloads", what, pid);
    free(text);
}

/* Under the lock: the file without user's lines, plus line when not NULL. */
static int edit(struct fed_bus *b, const char *user, const char *line, struct fed_error *err)
{
    char dir[PATH_MAX];
    const char *name;
    split_path(b->password_file, dir, sizeof(dir), &name);
    int lock = lock_file(dir, name, err);
    if (lock < 0)
        return -1;
    struct stat st;
    char *text = NULL;
    int rc = -1;
    if (stat(b->password_file, &st) < 0 || !(text = dsf_read_file(b->password_file, NULL))) {
        fed_fail(err, FED_EIO, "read password file", errno,
                 "bus.password_file '%s': %s (create it with mosquitto_passwd -c, or scripts/"
                 "damselfly bus-acl)",
                 b->password_file, strerror(errno));
    } else {
        struct dsf_buf out = {0};
        if (rewrite(text, user, line, &out) < 0)
            fed_fail(err, FED_EIO, "write password file", ENOMEM, "out of memory");
        else
            rc = replace_file(b->password_file, dir, name, &out, &st, err);
        if (out.data)
            OPENSSL_cleanse(out.data, out.len);
        buf_free(&out);
    }
    free(text);
    close(lock); /* releases the lock */
    return rc;
}

/* ---- grant and revoke ------------------------------------------------------------------- */

static int generate(char *password, size_t len, unsigned char *salt, struct fed_error *err)
{
    unsigned char rnd[PASSWORD_BYTES];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd) ||
        getrandom(salt, FED_BUS_SALT_LEN, 0) != FED_BUS_SALT_LEN)
        return fed_fail(err, FED_EIO, "getrandom", errno, "no random bytes: %s", strerror(errno));
    struct dsf_buf b = {0};
    int rc = append_b64(&b, rnd, sizeof(rnd));
    OPENSSL_cleanse(rnd, sizeof(rnd));
    if (rc == 0 && b.len < len)
        memcpy(password, buf_cstr(&b), b.len + 1);
    else
        rc = fed_fail(err, FED_EIO, "generate password", ENOMEM, "out of memory");
    if (b.data)
        OPENSSL_cleanse(b.data, b.len);
    buf_free(&b);
    return rc;
}

/* A name that is one line's "user:" of the file. */
static int bad_user(const char *user, const char *call, struct fed_error *err)
{
    if (!user[0] || strpbrk(user, ":\n\r") || strlen(user) > FED_BUS_USER_MAX)
        return fed_fail(err, FED_EINVAL, call, 0, "'%.200s' is not a broker user name", user);
    return 0;
}

int fed_bus_grant(struct fed_bus *b, const char *user, char *password, size_t len,
                  struct fed_error *err)
{
    if (!fed_bus_enabled(b))
        return fed_fail(err, FED_EINVAL, "grant", 0, "bus.password_file is not set");
    if (bad_user(user, "grant", err) < 0)
        return -1;
    unsigned char salt[FED_BUS_SALT_LEN];
    char line[FED_BUS_LINE_MAX];
    if (generate(password, len, salt, err) < 0)
        return -1;
    int rc = fed_bus_hash_line(user, password, salt, sizeof(salt), FED_BUS_HASH_ITERATIONS, line,
                               sizeof(line)) < 0
                 ? fed_fail(err, FED_EIO, "hash password", 0, "PBKDF2-SHA512 failed")
                 : edit(b, user, line, err);
    OPENSSL_cleanse(line, sizeof(line));
    if (rc < 0) {
        OPENSSL_cleanse(password, len);
        return -1;
    }
    char what[FED_BUS_USER_MAX + 32];
    snprintf(what, sizeof(what), "broker user %s added", user);
    log_info("%s to %s", what, b->password_file);
    reload_broker(b, what);
    return 0;
}

int fed_bus_revoke(struct fed_bus *b, const char *user, struct fed_error *err)
{
    if (!fed_bus_enabled(b))
        return 0;
    if (bad_user(user, "revoke", err) < 0 || edit(b, user, NULL, err) < 0)
        return -1;
    char what[FED_BUS_USER_MAX + 32];
    snprintf(what, sizeof(what), "broker user %s removed", user);
    log_info("%s from %s", what, b->password_file);
    reload_broker(b, what);
    return 0;
}

int fed_bus_provision(struct fed_bus *b, const char *ns, const char *mci, const char *vm,
                      char *user, size_t ulen, char *password, size_t plen, struct fed_error *err)
{
    static int warned;
    password[0] = 0;
    if (fed_bus_username(ns, mci, vm, user, ulen) < 0)
        return fed_fail(err, FED_EINVAL, "grant", ENAMETOOLONG, "broker user %s/%s/%s too long", ns,
                        mci, vm);
    if (fed_bus_enabled(b))
        return fed_bus_grant(b, user, password, plen, err);
    if (!__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED))
        log_warn("bus.password_file is not set: the agents of new VMs get no broker credentials "
                 "and connect anonymously (allowed only where the broker allows anonymous "
                 "clients)");
    return 0;
}

int fed_bus_revoke_vm(struct fed_bus *b, const char *ns, const char *mci, const char *vm,
                      struct fed_error *err)
{
    char user[FED_BUS_USER_MAX + 1];
    if (!fed_bus_enabled(b))
        return 0;
    if (fed_bus_username(ns, mci, vm, user, sizeof(user)) < 0)
        return fed_fail(err, FED_EINVAL, "revoke", ENAMETOOLONG, "broker user %s/%s/%s too long",
                        ns, mci, vm);
    return fed_bus_revoke(b, user, err);
}
