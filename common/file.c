#include "common/file.h"
#include "common/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The mode and owner of like, on the temporary file before it takes the name. */
static int take_mode_owner(int fd, const struct stat *like)
{
    if (fchmod(fd, like->st_mode & 07777) != 0)
        return -1;
    if (like->st_uid == geteuid() && like->st_gid == getegid())
        return 0;
    return fchown(fd, like->st_uid, like->st_gid);
}

int dsf_write_file_atomic(const char *dir, const char *name, const void *data, size_t len,
                          char *err, size_t errlen)
{
    return dsf_write_file_atomic_like(dir, name, data, len, NULL, err, errlen);
}

int dsf_write_file_atomic_like(const char *dir, const char *name, const void *data, size_t len,
                               const struct stat *like, char *err, size_t errlen)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    /* The pid keeps two processes sharing a directory off each other's temporary file. */
    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp.%ld", dir, name, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    int ok = write_all(fd, data, len) == 0 && (!like || take_mode_owner(fd, like) == 0) &&
             fsync(fd) == 0;
    int saved = errno;
    if (close(fd) != 0 && ok) {
        ok = 0;
        saved = errno;
    }
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(ok ? errno : saved));
        unlink(tmp);
        return -1;
    }
    /* The rename itself is durable only once the directory is. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

/* One component: made, or already a directory. */
static int make_one_dir(const char *dir, mode_t mode, char *err, size_t errlen)
{
    struct stat st;
    if (mkdir(dir, mode) == 0)
        return 0;
    if (errno == EEXIST && stat(dir, &st) == 0 && !S_ISDIR(st.st_mode))
        errno = ENOTDIR;
    else if (errno == EEXIST)
        return 0;
    int saved = errno;
    snprintf(err, errlen, "%s: %s", dir, strerror(saved));
    errno = saved;
    return -1;
}

int dsf_mkdir_p(const char *path, mode_t mode, char *err, size_t errlen)
{
    char tmp[4096];
    if (!path[0] || snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp)) {
        errno = path[0] ? ENAMETOOLONG : ENOENT;
        snprintf(err, errlen, "%.200s: %s", path[0] ? path : "(empty path)", strerror(errno));
        return -1;
    }
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/' || p[-1] == '/')
            continue;
        *p = '\0';
        int rc = make_one_dir(tmp, mode, err, errlen);
        *p = '/';
        if (rc < 0)
            return -1;
    }
    return make_one_dir(tmp, mode, err, errlen);
}

char *dsf_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct dsf_buf b = {0};
    char chunk[8192];
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_put(&b, chunk, got);
    int bad = ferror(f) || b.oom;
    fclose(f);
    if (bad || buf_reserve(&b, 1)) {
        buf_free(&b);
        errno = EIO;
        return NULL;
    }
    b.data[b.len] = '\0';
    if (len)
        *len = b.len;
    return b.data;
}

struct pending_file {
    struct pending_file *next;
    char *dir, *name, *data;
    size_t len;
    dsf_file_done done;
    void *arg;
};

struct dsf_file_writer {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct pending_file *queue;
    int running, stop;
};

static void pending_free(struct pending_file *p)
{
    free(p->dir);
    free(p->name);
    free(p->data);
    free(p);
}

static void pending_write(struct pending_file *p)
{
    char err[600];
    int rc = dsf_write_file_atomic(p->dir, p->name, p->data, p->len, err, sizeof(err));
    if (p->done)
        p->done(p->arg, rc ? err : NULL);
    pending_free(p);
}

static void *writer_main(void *arg)
{
    struct dsf_file_writer *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->queue && !w->stop)
            pthread_cond_wait(&w->wake, &w->lock);
        struct pending_file *p = w->queue;
        if (!p)
            break; /* stopping, nothing left */
        w->queue = p->next;
        pthread_mutex_unlock(&w->lock);
        pending_write(p);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

struct dsf_file_writer *dsf_file_writer_new(void)
{
    struct dsf_file_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    w->running = pthread_create(&w->thread, NULL, writer_main, w) == 0;
    return w; /* without a thread, writes happen in the caller */
}

int dsf_file_writer_put(struct dsf_file_writer *w, const char *dir, const char *name,
                        const void *data, size_t len, dsf_file_done done, void *arg)
{
    struct pending_file *p = calloc(1, sizeof(*p));
    if (!p || !(p->dir = strdup(dir)) || !(p->name = strdup(name)) ||
        !(p->data = malloc(len ? len : 1))) {
        if (p)
            pending_free(p);
        return -1;
    }
    memcpy(p->data, data, len);
    p->len = len;
    p->done = done;
    p->arg = arg;
    if (!w->running) {
        pending_write(p);
        return 0;
    }
    pthread_mutex_lock(&w->lock);
    struct pending_file **at = &w->queue;
    while (*at && !(strcmp((*at)->dir, dir) == 0 && strcmp((*at)->name, name) == 0))
        at = &(*at)->next;
    if (*at) { /* superseded: the queued version is dropped, its place kept */
        p->next = (*at)->next;
        pending_free(*at);
    }
    *at = p;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    return 0;
}

void dsf_file_writer_free(struct dsf_file_writer *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stop = 1;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    if (w->running)
        pthread_join(w->thread, NULL); /* it writes what is queued first */
    while (w->queue) {
        struct pending_file *p = w->queue;
        w->queue = p->next;
        pending_write(p);
    }
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->wake);
    free(w);
}
