#include "agent/procfile.h"
#include "common/config.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

void procfile_init(struct procfile *pf, const char *fmt, ...)
{
    memset(pf, 0, sizeof(*pf));
    pf->fd = -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pf->path, sizeof(pf->path), fmt, ap);
    va_end(ap);
}

int procfile_read(struct procfile *pf)
{
    if (pf->fd < 0) {
        pf->fd = open(pf->path, O_RDONLY | O_CLOEXEC);
        if (pf->fd < 0)
            return -1;
    }
    buf_reset(&pf->data);
    off_t off = 0;
    for (;;) {
        if (buf_reserve(&pf->data, 4096)) {
            errno = ENOMEM;
            return -1;
        }
        ssize_t n =
            pread(pf->fd, pf->data.data + pf->data.len, pf->data.cap - pf->data.len - 1, off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int saved = errno;
            close(pf->fd); /* e.g. the device went away: reopen next time */
            pf->fd = -1;
            errno = saved;
            return -1;
        }
        if (n == 0)
            break;
        pf->data.len += (size_t)n;
        off += n;
    }
    pf->data.data[pf->data.len] = '\0';
    pf->cursor = pf->data.data;
    return 0;
}

void procfile_close(struct procfile *pf)
{
    if (pf->fd >= 0)
        close(pf->fd);
    pf->fd = -1;
    buf_free(&pf->data);
}

char *procfile_next_line(struct procfile *pf)
{
    if (!pf->cursor || !*pf->cursor)
        return NULL;
    char *line = pf->cursor;
    char *nl = strchr(line, '\n');
    if (nl) {
        *nl = '\0';
        pf->cursor = nl + 1;
    } else {
        pf->cursor = line + strlen(line);
    }
    return line;
}

size_t procfile_split(struct procfile *pf, char *line, const char *extra_seps)
{
    const size_t max = sizeof(pf->words) / sizeof(pf->words[0]);
    pf->nwords = 0;
    char *p = line;
    for (;;) {
        while (*p == ' ' || *p == '\t' || (extra_seps && *p && strchr(extra_seps, *p)))
            p++;
        if (!*p || pf->nwords == max)
            break;
        pf->words[pf->nwords++] = p;
        while (*p && *p != ' ' && *p != '\t' && !(extra_seps && strchr(extra_seps, *p)))
            p++;
        if (!*p)
            break;
        *p++ = '\0';
    }
    return pf->nwords;
}

int read_small_file(const char *path, char *out, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, out, cap - 1);
    close(fd);
    if (n < 0)
        return -1;
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
        n--;
    out[n] = '\0';
    return 0;
}

int read_u64_file(const char *path, unsigned long long *out)
{
    char tmp[64], *end;
    if (read_small_file(path, tmp, sizeof(tmp)))
        return -1;
    if (strcmp(tmp, "max") == 0) {
        *out = UINT64_MAX;
        return 0;
    }
    errno = 0;
    *out = strtoull(tmp, &end, 10);
    return (end == tmp || errno) ? -1 : 0;
}

int read_file_buf(const char *path, struct dsf_buf *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    buf_reset(out);
    for (;;) {
        if (buf_reserve(out, 4096)) {
            close(fd);
            errno = ENOMEM;
            return -1;
        }
        ssize_t n = read(fd, out->data + out->len, out->cap - out->len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int saved = errno;
            close(fd);
            errno = saved;
            return -1;
        }
        if (n == 0)
            break;
        out->len += (size_t)n;
    }
    close(fd);
    out->data[out->len] = '\0';
    return 0;
}

/* The kernel's record layout for getdents64 (glibc only declares it with _GNU_SOURCE
 * from 2.30 on, so it is spelled out here). */
struct dirscan_ent {
    uint64_t ino;
    int64_t off;
    unsigned short reclen;
    unsigned char type;
    char name[];
};

int dirscan_open(struct dirscan *d, const char *path)
{
    d->len = d->pos = 0;
    d->fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return d->fd < 0 ? -1 : 0;
}

const char *dirscan_next(struct dirscan *d, unsigned char *type)
{
    for (;;) {
        if (d->pos >= d->len) {
            long n = syscall(SYS_getdents64, d->fd, d->buf, sizeof(d->buf));
            if (n <= 0)
                return NULL;
            d->len = n;
            d->pos = 0;
        }
        struct dirscan_ent *e = (struct dirscan_ent *)(d->buf + d->pos);
        d->pos += e->reclen;
        if (e->name[0] == '.' && (!e->name[1] || (e->name[1] == '.' && !e->name[2])))
            continue;
        if (type)
            *type = e->type;
        return e->name;
    }
}

void dirscan_close(struct dirscan *d)
{
    if (d->fd >= 0)
        close(d->fd);
    d->fd = -1;
}

int procfile_find_u64(const struct procfile *pf, const char *key, unsigned long long *out)
{
    const size_t keylen = strlen(key);
    const char *p = pf->data.data, *end = p + pf->data.len;
    while (p && p < end) {
        if (strncmp(p, key, keylen) == 0 &&
            (p[keylen] == ':' || p[keylen] == ' ' || p[keylen] == '\t')) {
            const char *value = p + keylen + (p[keylen] == ':');
            char *after;
            errno = 0;
            *out = strtoull(value, &after, 10);
            return after == value || errno ? -1 : 0;
        }
        /* lines end in '\n', or in '\0' once procfile_next_line has been through them */
        const char *next = p + strcspn(p, "\n");
        p = next < end ? next + 1 : NULL;
    }
    return -1;
}

void mountinfo_unescape(char *s)
{
    char *out = s;
    for (; *s; s++) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
            s[3] >= '0' && s[3] <= '7') {
            *out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
            s += 3;
        } else {
            *out++ = *s;
        }
    }
    *out = '\0';
}

int mount_has_option(const char *options, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = options; p; p = strchr(p, ',')) {
        if (*p == ',')
            p++;
        if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return 1;
    }
    return 0;
}

int procfile_cannot_read(const char *path, char *err, size_t errlen)
{
    snprintf(err, errlen, "cannot read %s: %s (is host.proc right?)", path, strerror(errno));
    return -1;
}

int procfile_first_read(struct procfile *pf, char *err, size_t errlen)
{
    return procfile_read(pf) ? procfile_cannot_read(pf->path, err, errlen) : 0;
}

int procfile_read_failed(const char *module, const char *path, int *failing)
{
    if (!*failing)
        dsf_log(DSF_LOG_WARN, module,
                "cannot read %s: %s; check that the proc root is mounted and readable", path,
                strerror(errno));
    *failing = 1;
    return -1;
}
