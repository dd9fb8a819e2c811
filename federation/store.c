/*
 * The model's persistent store: <dir>/<ns>/<mci>.json, one file per MCI, replaced
 * atomically so that a crash leaves either the old or the new file, never a torn one.
 *
 * A process keeps a copy of every MCI (loaded on open) and re-reads a file whose inode,
 * size or mtime changed, so two processes on one directory (the controller and an operator's
 * damselfly-fed) see each other's writes. A mutex serialises threads; flock() on <dir>/.lock
 * serialises processes for each read-modify-write.
 */
#define DSF_MODULE "fed-store"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/file.h"
#include "federation/driver.h"
#include "federation/federation.h"

#define MAX_STATE_FILE (16u << 20)

struct entry {
    struct fed_mci mci;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
};

struct fed_store {
    char *dir;
    int lock_fd;
    pthread_mutex_t mu;
    struct entry *entries;
    size_t n;
};

static void file_path(const struct fed_store *s, const char *ns, const char *mci, char *buf,
                      size_t len)
{
    snprintf(buf, len, "%s/%s/%s.json", s->dir, ns, mci);
}

static struct entry *find(struct fed_store *s, const char *ns, const char *mci)
{
    for (size_t i = 0; i < s->n; i++) {
        if (!strcmp(s->entries[i].mci.ns, ns) && !strcmp(s->entries[i].mci.id, mci))
            return &s->entries[i];
    }
    return NULL;
}

static void drop(struct fed_store *s, struct entry *e)
{
    size_t i = (size_t)(e - s->entries);
    fed_mci_free(&e->mci);
    memmove(&s->entries[i], &s->entries[i + 1], (s->n - i - 1) * sizeof(*e));
    s->n--;
}

static int read_file(const char *path, char **text, size_t *len, struct stat *st,
                     struct fed_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fed_fail(err, errno == ENOENT ? FED_ENOTFOUND : FED_EIO, "open", errno, "%s: %s",
                        path, strerror(errno));
    if (fstat(fd, st) < 0 || st->st_size > (off_t)MAX_STATE_FILE) {
        close(fd);
        return fed_fail(err, FED_EIO, "read", EFBIG, "%s: larger than %u bytes", path,
                        MAX_STATE_FILE);
    }
    char *buf = malloc((size_t)st->st_size + 1);
    size_t got = 0;
    while (buf && got < (size_t)st->st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st->st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (!buf || got != (size_t)st->st_size) {
        free(buf);
        return fed_fail(err, FED_EIO, "read", errno, "%s: short read", path);
    }
    buf[got] = 0;
    *text = buf;
    *len = got;
    return 0;
}

/* Loads one file into the cache (replacing the cached copy). ENOTFOUND if it is gone. */
static int load_one(struct fed_store *s, const char *ns, const char *mci, struct fed_error *err)
{
    char path[4096];
    file_path(s, ns, mci, path, sizeof(path));
    char *text = NULL;
    size_t len = 0;
    struct stat st;
    struct entry *e = find(s, ns, mci);
    if (read_file(path, &text, &len, &st, err) < 0) {
        if (e)
            drop(s, e);
        return -1;
    }
    struct fed_mci m;
    struct fed_error perr;
    int rc = fed_mci_from_json(text, len, &m, &perr);
    free(text);
    if (rc < 0) {
        char msg[700];
        return fed_fail(err, FED_EIO, "load state", 0, "%s: %s", path,
                        fed_error_format(&perr, msg, sizeof(msg)));
    }
    if (strcmp(m.ns, ns) || strcmp(m.id, mci)) {
        fed_mci_free(&m);
        return fed_fail(err, FED_EIO, "load state", 0, "%s: holds %s/%s, not %s/%s", path, m.ns,
                        m.id, ns, mci);
    }
    if (!e) {
        struct entry *grown = realloc(s->entries, (s->n + 1) * sizeof(*grown));
        if (!grown) {
            fed_mci_free(&m);
            return fed_fail(err, FED_EIO, "load state", ENOMEM, "out of memory");
        }
        s->entries = grown;
        e = &s->entries[s->n++];
    } else {
        fed_mci_free(&e->mci);
    }
    e->mci = m;
    e->dev = st.st_dev;
    e->ino = st.st_ino;
    e->size = st.st_size;
    e->mtime = st.st_mtim;
    return 0;
}

/* The cached copy, refreshed when another process replaced the file. NULL: absent. */
static struct entry *current(struct fed_store *s, const char *ns, const char *mci,
                             struct fed_error *err)
{
    char path[4096];
    file_path(s, ns, mci, path, sizeof(path));
    struct stat st;
    struct entry *e = find(s, ns, mci);
    if (stat(path, &st) < 0) {
        if (e)
            drop(s, e);
        fed_fail(err, FED_ENOTFOUND, "get mci", 0, "no MCI %s/%s", ns, mci);
        return NULL;
    }
    if (e && e->dev == st.st_dev && e->ino == st.st_ino && e->size == st.st_size &&
        e->mtime.tv_sec == st.st_mtim.tv_sec && e->mtime.tv_nsec == st.st_mtim.tv_nsec)
        return e;
    if (load_one(s, ns, mci, err) < 0)
        return NULL;
    return find(s, ns, mci);
}

static int fsync_dir(const char *dir, struct fed_error *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return fed_fail(err, FED_EIO, "open dir", errno, "%s: %s", dir, strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc < 0)
        return fed_fail(err, FED_EIO, "fsync", e, "%s: %s", dir, strerror(e));
    return 0;
}

static void lock(struct fed_store *s)
{
    pthread_mutex_lock(&s->mu);
    while (flock(s->lock_fd, LOCK_EX) < 0 && errno == EINTR) {
    }
}

static void unlock(struct fed_store *s)
{
    flock(s->lock_fd, LOCK_UN);
    pthread_mutex_unlock(&s->mu);
}

static int is_id_file(const char *name, char *id, size_t len)
{
    size_t n = strlen(name);
    if (n <= 5 || strcmp(name + n - 5, ".json") || n - 5 >= len)
        return 0;
    memcpy(id, name, n - 5);
    id[n - 5] = 0;
    return fed_check_id("mci", id, NULL) == 0;
}

static void load_all(struct fed_store *s)
{
    DIR *d = opendir(s->dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (fed_check_id("ns", de->d_name, NULL) < 0)
            continue;
        char sub[4096];
        snprintf(sub, sizeof(sub), "%s/%s", s->dir, de->d_name);
        DIR *nd = opendir(sub);
        struct dirent *fe;
        while (nd && (fe = readdir(nd))) {
            char id[FED_NAME_MAX];
            struct fed_error err;
            if (is_id_file(fe->d_name, id, sizeof(id)) && load_one(s, de->d_name, id, &err) < 0)
                log_warn("skipping %s/%s: %s", sub, fe->d_name, err.message);
        }
        if (nd)
            closedir(nd);
    }
    if (d)
        closedir(d);
}

struct fed_store *fed_store_open(const char *dir, struct fed_error *err)
{
    if (!dir || !dir[0]) {
        fed_fail(err, FED_EINVAL, "open store", 0, "no state directory given");
        return NULL;
    }
    if (fed_mkdir_p(dir, "mkdir", err) < 0)
        return NULL;
    struct fed_store *s = calloc(1, sizeof(*s));
    char lockpath[4096];
    snprintf(lockpath, sizeof(lockpath), "%s/.lock", dir);
    if (!s || !(s->dir = strdup(dir))) {
        free(s);
        fed_fail(err, FED_EIO, "open store", ENOMEM, "out of memory");
        return NULL;
    }
    s->lock_fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lock_fd < 0) {
        fed_fail(err, FED_EIO, "open", errno, "%s: %s", lockpath, strerror(errno));
        free(s->dir);
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    lock(s);
    load_all(s);
    unlock(s);
    return s;
}

void fed_store_close(struct fed_store *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        fed_mci_free(&s->entries[i].mci);
    free(s->entries);
    close(s->lock_fd);
    pthread_mutex_destroy(&s->mu);
    free(s->dir);
    free(s);
}

const char *fed_store_dir(const struct fed_store *s)
{
    return s->dir;
}

static int check_names(const char *ns, const char *mci, struct fed_error *err)
{
    return fed_check_id("namespace", ns, err) < 0 || fed_check_id("mci", mci, err) < 0 ? -1 : 0;
}

int fed_store_get(struct fed_store *s, const char *ns, const char *mci, struct fed_mci *out,
                  struct fed_error *err)
{
    memset(out, 0, sizeof(*out));
    if (check_names(ns, mci, err) < 0)
        return -1;
    lock(s);
    struct entry *e = current(s, ns, mci, err);
    int rc = -1;
    if (e) {
        rc = fed_mci_copy(out, &e->mci);
        if (rc < 0)
            fed_fail(err, FED_EIO, "get mci", ENOMEM, "out of memory");
    }
    unlock(s);
    return rc;
}

/* Writes m and caches it; the caller holds the lock. */
static int save(struct fed_store *s, const struct fed_mci *m, struct fed_error *err)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/%s", s->dir, m->ns);
    char *text = fed_mci_to_json(m);
    if (!text)
        return fed_fail(err, FED_EIO, "save mci", ENOMEM, "out of memory");
    struct stat st;
    int fresh = stat(dir, &st) < 0;
    int rc = fed_mkdir_p(dir, "mkdir", err);
    if (rc == 0) {
        char name[300], why[512];
        snprintf(name, sizeof(name), "%s.json", m->id);
        rc = dsf_write_file_atomic(dir, name, text, strlen(text), why, sizeof(why));
        if (rc < 0)
            fed_fail(err, FED_EIO, "save mci", errno, "%s", why);
    }
    free(text);
    if (rc < 0)
        return -1;
    /* A namespace directory made just now must survive a crash too. */
    if (fresh)
        fsync_dir(s->dir, NULL);
    if (load_one(s, m->ns, m->id, err) < 0)
        return -1;
    return 0;
}

int fed_store_put(struct fed_store *s, const struct fed_mci *m, struct fed_error *err)
{
    if (check_names(m->ns, m->id, err) < 0)
        return -1;
    lock(s);
    int rc = save(s, m, err);
    unlock(s);
    return rc;
}

int fed_store_delete(struct fed_store *s, const char *ns, const char *mci, struct fed_error *err)
{
    if (check_names(ns, mci, err) < 0)
        return -1;
    char dir[4096], path[4096];
    snprintf(dir, sizeof(dir), "%s/%s", s->dir, ns);
    file_path(s, ns, mci, path, sizeof(path));
    lock(s);
    int rc = 0;
    if (unlink(path) < 0) {
        rc = fed_fail(err, errno == ENOENT ? FED_ENOTFOUND : FED_EIO, "delete mci", errno, "%s: %s",
                      path, strerror(errno));
    } else {
        rc = fsync_dir(dir, err);
        rmdir(dir); /* an empty namespace goes with its last MCI */
    }
    struct entry *e = find(s, ns, mci);
    if (e)
        drop(s, e);
    unlock(s);
    return rc;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int fed_store_list(struct fed_store *s, const char *ns, char ***names, size_t *n,
                   struct fed_error *err)
{
    *names = NULL;
    *n = 0;
    if (ns && fed_check_id("namespace", ns, err) < 0)
        return -1;
    char path[4096];
    snprintf(path, sizeof(path), "%s%s%s", s->dir, ns ? "/" : "", ns ? ns : "");
    lock(s);
    DIR *d = opendir(path);
    struct dirent *de;
    size_t cap = 0;
    int rc = 0;
    while (d && (de = readdir(d))) {
        char id[FED_NAME_MAX];
        if (ns ? !is_id_file(de->d_name, id, sizeof(id))
               : fed_check_id("ns", de->d_name, NULL) < 0 || de->d_type == DT_REG)
            continue;
        if (!ns && snprintf(id, sizeof(id), "%s", de->d_name) >= (int)sizeof(id))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            char **g = realloc(*names, cap * sizeof(char *));
            if (!g) {
                rc = -1;
                break;
            }
            *names = g;
        }
        if (!((*names)[*n] = strdup(id))) {
            rc = -1;
            break;
        }
        (*n)++;
    }
    if (d)
        closedir(d);
    unlock(s);
    if (rc < 0) {
        fed_names_free(*names, *n);
        *names = NULL;
        *n = 0;
        return fed_fail(err, FED_EIO, "list", ENOMEM, "out of memory");
    }
    if (*n)
        qsort(*names, *n, sizeof(char *), cmp_names);
    return 0;
}

void fed_names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int fed_store_update(struct fed_store *s, const char *ns, const char *mci, int create,
                     fed_store_update_fn fn, void *arg, struct fed_error *err)
{
    if (check_names(ns, mci, err) < 0)
        return -1;
    lock(s);
    struct fed_mci m;
    memset(&m, 0, sizeof(m));
    struct fed_error nf;
    struct entry *e = current(s, ns, mci, &nf);
    int rc = -1;
    if (e) {
        if (fed_mci_copy(&m, &e->mci) < 0) {
            fed_fail(err, FED_EIO, "update mci", ENOMEM, "out of memory");
            goto out;
        }
    } else if (create && nf.kind == FED_ENOTFOUND) {
        snprintf(m.ns, sizeof(m.ns), "%s", ns);
        snprintf(m.id, sizeof(m.id), "%s", mci);
        m.created_ms = fed_wall_ms();
    } else {
        if (err)
            *err = nf;
        goto out;
    }
    rc = fn(&m, arg, err);
    if (rc == 0) {
        m.updated_ms = fed_wall_ms();
        rc = save(s, &m, err);
    } else if (rc > 0) {
        rc = 0;
    }
out:
    fed_mci_free(&m);
    unlock(s);
    return rc;
}
