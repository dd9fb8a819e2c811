#define DSF_MODULE "spool"
#include "common/spool.h"
#include "common/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "DSFSPOOL1"
/* Ids start in the middle of the range so that messages can also be put in front. */
#define ID_ORIGIN (UINT64_C(1) << 62)

struct header {
    char magic[10];
    char boot[17];
    char pad[5];
    uint64_t seq;
    uint32_t npoints;
    uint32_t len;
};

static void path_of(const struct spool *s, uint64_t id, const char *ext, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%016" PRIx64 ".%s", s->dir, id, ext);
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* Messages held for sending when an earlier run stopped were never confirmed: back in line. */
static void recover_held(struct spool *s, DIR *d)
{
    struct dirent *e;
    while ((e = readdir(d))) {
        uint64_t id;
        char ext[8];
        if (sscanf(e->d_name, "%16" SCNx64 ".%7s", &id, ext) != 2 || strcmp(ext, "held") != 0)
            continue;
        char held[600], msg[600];
        path_of(s, id, "held", held, sizeof(held));
        path_of(s, id, "msg", msg, sizeof(msg));
        if (rename(held, msg))
            log_warn("%s: %s", held, strerror(errno));
    }
    rewinddir(d);
}

int spool_open(struct spool *s, const char *dir, uint64_t max_bytes, int fsync, char *err,
               size_t errlen)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->dir, sizeof(s->dir), "%s", dir);
    s->max_bytes = max_bytes;
    s->fsync = fsync;
    s->first_id = s->next_id = ID_ORIGIN;
    DIR *d = NULL;
    if ((mkdir(dir, 0700) && errno != EEXIST) || !(d = opendir(dir)) || access(dir, W_OK)) {
        snprintf(err, errlen,
                 "spool directory %s: %s (it must be writable by the user this program runs as, "
                 "e.g. systemd's StateDirectory)",
                 dir, strerror(errno));
        if (d)
            closedir(d);
        return -1;
    }
    struct dirent *e;
    int found = 0;
    recover_held(s, d);
    while ((e = readdir(d))) {
        uint64_t id;
        char ext[8];
        if (sscanf(e->d_name, "%16" SCNx64 ".%7s", &id, ext) != 2 || strcmp(ext, "msg") != 0)
            continue;
        char path[600];
        path_of(s, id, "msg", path, sizeof(path));
        off_t size = file_size(path);
        if (size < 0)
            continue;
        if (!found || id < s->first_id)
            s->first_id = id;
        if (!found || id + 1 > s->next_id)
            s->next_id = id + 1;
        found = 1;
        s->bytes += (uint64_t)size;
        s->messages++;
    }
    closedir(d);
    if (s->messages)
        log_info("%s holds %" PRIu64 " message(s) (%" PRIu64 " bytes) from an earlier run: "
                 "they are sent first",
                 dir, s->messages, s->bytes);
    return 0;
}

/* Removes the oldest file (skipping ids whose file is already gone); its size or -1. */
static off_t remove_oldest(struct spool *s, uint32_t *npoints)
{
    while (s->first_id < s->next_id) {
        char path[600];
        path_of(s, s->first_id++, "msg", path, sizeof(path));
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        struct header h = {0};
        *npoints = read(fd, &h, sizeof(h)) == (ssize_t)sizeof(h) ? h.npoints : 0;
        off_t size = lseek(fd, 0, SEEK_END);
        close(fd);
        unlink(path);
        s->bytes -= (uint64_t)size;
        s->messages--;
        return size;
    }
    return -1;
}

static int write_file(struct spool *s, uint64_t id, const struct header *h, const void *data)
{
    char tmp[600], final[600];
    path_of(s, id, "tmp", tmp, sizeof(tmp));
    path_of(s, id, "msg", final, sizeof(final));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    int ok = write(fd, h, sizeof(*h)) == (ssize_t)sizeof(*h) &&
             write(fd, data, h->len) == (ssize_t)h->len && (!s->fsync || fsync(fd) == 0);
    close(fd);
    /* Renamed only when complete, so a crash never leaves a half message to replay. */
    if (!ok || rename(tmp, final)) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int spool_put(struct spool *s, const char *boot, uint64_t seq, uint32_t npoints, const void *data,
              size_t len, int front)
{
    uint64_t size = sizeof(struct header) + len;
    if (size > s->max_bytes || len > UINT32_MAX) {
        s->dropped_messages++;
        s->dropped_points += npoints;
        return -1;
    }
    while (s->messages && s->bytes + size > s->max_bytes) {
        uint32_t dropped_points = 0;
        if (remove_oldest(s, &dropped_points) < 0)
            break;
        s->dropped_messages++;
        s->dropped_points += dropped_points;
    }
    struct header h = {.seq = seq, .npoints = npoints, .len = (uint32_t)len};
    memcpy(h.magic, MAGIC, sizeof(MAGIC));
    snprintf(h.boot, sizeof(h.boot), "%s", boot);
    uint64_t id = front ? s->first_id - 1 : s->next_id;
    if (write_file(s, id, &h, data)) {
        log_warn("cannot write to %s: %s; message dropped (check space and permissions)", s->dir,
                 strerror(errno));
        s->dropped_messages++;
        s->dropped_points += npoints;
        return -1;
    }
    if (front)
        s->first_id = id;
    else
        s->next_id = id + 1;
    s->bytes += size;
    s->messages++;
    s->written++;
    return 0;
}

size_t spool_peek_len(struct spool *s)
{
    while (s->first_id < s->next_id) {
        char path[600];
        path_of(s, s->first_id, "msg", path, sizeof(path));
        off_t size = file_size(path);
        if (size >= (off_t)sizeof(struct header))
            return (size_t)size - sizeof(struct header);
        if (size >= 0) { /* too short to be a message */
            unlink(path);
            s->bytes -= (uint64_t)size;
            s->messages--;
            s->corrupt++;
        }
        s->first_id++;
    }
    return 0;
}

/* Reads the oldest message into r; unreadable files are dropped on the way. */
static int read_oldest(struct spool *s, struct spool_record *r)
{
    for (;;) {
        size_t len = spool_peek_len(s);
        if (!len && s->first_id >= s->next_id)
            return -1;
        char path[600];
        path_of(s, s->first_id, "msg", path, sizeof(path));
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct header h = {0};
        buf_reset(&r->data);
        int ok = fd >= 0 && read(fd, &h, sizeof(h)) == (ssize_t)sizeof(h) &&
                 memcmp(h.magic, MAGIC, sizeof(MAGIC)) == 0 && h.len == len &&
                 buf_reserve(&r->data, len) == 0 && read(fd, r->data.data, len) == (ssize_t)len;
        if (fd >= 0)
            close(fd);
        if (ok) {
            r->id = s->first_id;
            r->data.len = len;
            memcpy(r->boot, h.boot, sizeof(r->boot));
            r->boot[sizeof(r->boot) - 1] = '\0';
            r->seq = h.seq;
            r->npoints = h.npoints;
            return 0;
        }
        uint32_t ignored;
        remove_oldest(s, &ignored);
        log_warn("%s: unreadable spool file dropped", path);
        s->corrupt++;
    }
}

int spool_take(struct spool *s, struct spool_record *r)
{
    if (read_oldest(s, r))
        return -1;
    uint32_t ignored;
    remove_oldest(s, &ignored);
    return 0;
}

int spool_hold(struct spool *s, struct spool_record *r)
{
    if (read_oldest(s, r))
        return -1;
    char msg[600], held[600];
    path_of(s, r->id, "msg", msg, sizeof(msg));
    path_of(s, r->id, "held", held, sizeof(held));
    off_t size = file_size(msg);
    if (rename(msg, held)) {
        log_warn("%s: %s", msg, strerror(errno));
        return -1;
    }
    s->first_id = r->id + 1;
    s->bytes -= (uint64_t)size;
    s->messages--;
    return 0;
}

void spool_release(struct spool *s, uint64_t id)
{
    char held[600];
    path_of(s, id, "held", held, sizeof(held));
    unlink(held);
}
