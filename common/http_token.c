/*
 * The write token's file: a daemon whose HTTP API changes things, and whose operator set no
 * token, makes one at its first start and keeps it for the next ones, where an operator (or
 * a script) can read it. Only the file's owner may read it.
 */
#include "common/http.h"
#include "common/file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOKEN_MIN 16
#define RANDOM_BYTES 32

/* Printable ASCII without spaces: what an Authorization header carries as it is. */
static int usable_token(const char *t, size_t n)
{
    if (n < TOKEN_MIN || n > DSF_HTTP_TOKEN_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (t[i] <= ' ' || t[i] > '~')
            return 0;
    return 1;
}

static int read_token(int fd, const char *path, char *token, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        return -1;
    }
    if (st.st_mode & S_IWOTH) {
        snprintf(err, errlen, "%s: anyone may write it (mode %04o): chmod 600 it", path,
                 (unsigned)(st.st_mode & 07777));
        return -1;
    }
    char buf[DSF_HTTP_TOKEN_MAX + 64];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    if (n < 0) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        return -1;
    }
    size_t start = 0, end = (size_t)n;
    while (start < end && strchr(" \t\r\n", buf[start]))
        start++;
    while (end > start && strchr(" \t\r\n", buf[end - 1]))
        end--;
    if (!usable_token(buf + start, end - start)) {
        snprintf(err, errlen,
                 "%s: expected one token of %d to %d printable characters without spaces", path,
                 TOKEN_MIN, DSF_HTTP_TOKEN_MAX);
        return -1;
    }
    memcpy(token, buf + start, end - start);
    token[end - start] = '\0';
    return 0;
}

int dsf_random_hex(char *out, size_t bytes)
{
    unsigned char r[RANDOM_BYTES];
    if (bytes > sizeof(r) || getrandom(r, bytes, 0) != (ssize_t)bytes)
        return -1;
    for (size_t i = 0; i < bytes; i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
    return 0;
}

/* O_EXCL: two daemons starting at once on the same file both end with the first's token. */
static int create_token(const char *path, char *token, char *err, size_t errlen)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    if (dsf_mkdir_p(dirname(dir), 0750, err, errlen))
        return -1;
    if (dsf_random_hex(token, RANDOM_BYTES)) {
        snprintf(err, errlen, "%s: no random bytes for a token: %s", path, strerror(errno));
        return -1;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno == EEXIST
                   ? 1
                   : (snprintf(err, errlen, "%s: cannot create: %s", path, strerror(errno)), -1);
    char line[2 * RANDOM_BYTES + 2];
    int n = snprintf(line, sizeof(line), "%s\n", token);
    int rc = fchmod(fd, 0600) == 0 && write(fd, line, (size_t)n) == n && fsync(fd) == 0 ? 0 : -1;
    if (rc)
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
    close(fd);
    if (rc)
        unlink(path);
    return rc;
}

int dsf_http_token_file(const char *path, char *token, int *created, char *err, size_t errlen)
{
    *created = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) {
            int rc = read_token(fd, path, token, err, errlen);
            close(fd);
            return rc;
        }
        if (errno != ENOENT) {
            snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
            return -1;
        }
        int rc = create_token(path, token, err, errlen);
        if (rc <= 0) {
            *created = rc == 0;
            return rc;
        }
    }
    snprintf(err, errlen, "%s: created and removed while being read", path);
    return -1;
}
