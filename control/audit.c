/* The audit trail's hash chain. Each line is the record serialized with sorted keys and no
 * spaces, so that the same record always gives the same bytes and so the same hash. */
#define DSF_MODULE "audit"
#include "control/audit.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/file.h"
#include "common/log.h"

#define AUDIT_HEX_LEN 64
#define AUDIT_DUMP_FLAGS (JSON_COMPACT | JSON_SORT_KEYS)

static const char zero_hash[AUDIT_HEX_LEN + 1] =
    "0000000000000000000000000000000000000000000000000000000000000000";

struct audit {
    char *path;
    int fd;
    int failed; /* a write or sync failed: what is on disk is unknown */
    int defer;  /* the next append is not synced on its own: the one after syncs both */
    uint64_t seq;
    char last_hash[AUDIT_HEX_LEN + 1]; /* of the last line, without its '\n' */
    uint64_t torn_truncated;
};

/* Where a chain check stands after the lines seen so far. */
struct chain {
    audit_replay_fn replay; /* called with each record that chains, in order; may be NULL */
    void *replay_arg;
    uint64_t seq;
    char last_hash[AUDIT_HEX_LEN + 1];
    size_t complete_len; /* bytes up to and including the last '\n' */
};

const char *audit_fault_name(enum audit_fault fault)
{
    switch (fault) {
    case AUDIT_FAULT_NONE:
        return "ok";
    case AUDIT_FAULT_IO:
        return "unreadable";
    case AUDIT_FAULT_MALFORMED:
        return "malformed";
    case AUDIT_FAULT_CHANGED:
        return "changed";
    case AUDIT_FAULT_REMOVED:
        return "removed";
    case AUDIT_FAULT_REORDERED:
        return "reordered";
    }
    return "unknown";
}

static int sha256_hex(const void *data, size_t len, char out[AUDIT_HEX_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (!EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL) || md_len * 2 != AUDIT_HEX_LEN)
        return -1;
    for (unsigned int i = 0; i < md_len; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

/* The hash a record's "hash" field must hold: that of its line without "hash". */
static int record_hash(json_t *rec, char out[AUDIT_HEX_LEN + 1])
{
    json_t *copy = json_copy(rec);
    if (!copy)
        return -1;
    json_object_del(copy, "hash");
    char *text = json_dumps(copy, AUDIT_DUMP_FLAGS);
    json_decref(copy);
    if (!text)
        return -1;
    int rc = sha256_hex(text, strlen(text), out);
    free(text);
    return rc;
}

static int fail(struct audit_verify_result *out, uint64_t line, enum audit_fault fault, char *err,
                size_t errlen, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int fail(struct audit_verify_result *out, uint64_t line, enum audit_fault fault, char *err,
                size_t errlen, const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    out->bad_line = line;
    out->fault = fault;
    snprintf(err, errlen, "line %" PRIu64 ": record %s: %s", line, audit_fault_name(fault), why);
    return -1;
}

/* The seq of a line when it has one, else 0. */
static uint64_t line_seq(const char *line, size_t len)
{
    json_t *rec = json_loadb(line, len, 0, NULL);
    json_t *seq = json_object_get(rec, "seq");
    uint64_t v =
        json_is_integer(seq) && json_integer_value(seq) > 0 ? (uint64_t)json_integer_value(seq) : 0;
    json_decref(rec);
    return v;
}

/* Whether a complete line in buf[from, end) has the given seq: a record further on. */
static int seq_later(const char *buf, size_t from, size_t end, uint64_t seq)
{
    while (from < end) {
        const char *nl = memchr(buf + from, '\n', end - from);
        if (!nl)
            return 0;
        size_t len = (size_t)(nl - (buf + from));
        if (line_seq(buf + from, len) == seq)
            return 1;
        from += len + 1;
    }
    return 0;
}

/* The fields a record must have, with their types. */
static int record_fields(json_t *rec, uint64_t lineno, struct audit_verify_result *out, char *err,
                         size_t errlen)
{
    if (!json_is_object(rec))
        return fail(out, lineno, AUDIT_FAULT_MALFORMED, err, errlen, "not a JSON object");
    json_t *seq = json_object_get(rec, "seq");
    if (!json_is_integer(seq) || json_integer_value(seq) < 1)
        return fail(out, lineno, AUDIT_FAULT_MALFORMED, err, errlen,
                    "\"seq\" missing or not a positive integer");
    const char *keys[] = {"time", "prev", "hash"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        json_t *v = json_object_get(rec, keys[i]);
        if (!json_is_string(v) || (i > 0 && json_string_length(v) != AUDIT_HEX_LEN))
            return fail(out, lineno, AUDIT_FAULT_MALFORMED, err, errlen, "\"%s\" missing or not %s",
                        keys[i], i > 0 ? "a 64-digit hex string" : "a string");
    }
    return 0;
}

/* That the line holds exactly the record hashed, in its canonical form. */
static int record_intact(json_t *rec, const char *line, size_t len, uint64_t lineno,
                         struct audit_verify_result *out, char *err, size_t errlen)
{
    char *canon = json_dumps(rec, AUDIT_DUMP_FLAGS);
    if (!canon)
        return fail(out, lineno, AUDIT_FAULT_IO, err, errlen, "out of memory");
    int same = strlen(canon) == len && memcmp(canon, line, len) == 0;
    free(canon);
    if (!same)
        return fail(out, lineno, AUDIT_FAULT_CHANGED, err, errlen,
                    "the line is not the record's canonical form (sorted keys, no spaces)");
    char want[AUDIT_HEX_LEN + 1];
    if (record_hash(rec, want) < 0)
        return fail(out, lineno, AUDIT_FAULT_IO, err, errlen, "cannot hash the record");
    const char *have = json_string_value(json_object_get(rec, "hash"));
    if (strcmp(want, have) != 0)
        return fail(out, lineno, AUDIT_FAULT_CHANGED, err, errlen,
                    "\"hash\" %s does not match its content (%s)", have, want);
    return 0;
}

/* That the record follows the one before: the next seq, and prev the hash of its line. */
static int record_follows(json_t *rec, const struct chain *ch, const char *buf, size_t next,
                          size_t end, uint64_t lineno, struct audit_verify_result *out, char *err,
                          size_t errlen)
{
    uint64_t seq = (uint64_t)json_integer_value(json_object_get(rec, "seq"));
    uint64_t want = ch->seq + 1;
    if (seq > want && seq_later(buf, next, end, want))
        return fail(out, lineno, AUDIT_FAULT_REORDERED, err, errlen,
                    "seq %" PRIu64 " where %" PRIu64 " belongs, which comes later", seq, want);
    if (seq > want)
        return fail(out, lineno, AUDIT_FAULT_REMOVED, err, errlen,
                    "seq %" PRIu64 " follows %" PRIu64 ": seq %" PRIu64 " is missing", seq, ch->seq,
                    want);
    if (seq < want)
        return fail(out, lineno, AUDIT_FAULT_REORDERED, err, errlen,
                    "seq %" PRIu64 " after seq %" PRIu64, seq, ch->seq);
    const char *prev = json_string_value(json_object_get(rec, "prev"));
    if (strcmp(prev, ch->last_hash) != 0)
        return fail(out, lineno, AUDIT_FAULT_CHANGED, err, errlen,
                    "\"prev\" %s is not the hash of the line before (%s): a record before it "
                    "was changed or replaced",
                    prev, ch->last_hash);
    return 0;
}

static int check_line(const char *buf, size_t start, size_t len, size_t end, struct chain *ch,
                      uint64_t lineno, struct audit_verify_result *out, char *err, size_t errlen)
{
    const char *line = buf + start;
    json_error_t jerr;
    json_t *rec = json_loadb(line, len, 0, &jerr);
    if (!rec)
        return fail(out, lineno, AUDIT_FAULT_MALFORMED, err, errlen, "not JSON: %s", jerr.text);
    int rc = record_fields(rec, lineno, out, err, errlen);
    if (rc == 0)
        rc = record_intact(rec, line, len, lineno, out, err, errlen);
    if (rc == 0)
        rc = record_follows(rec, ch, buf, start + len + 1, end, lineno, out, err, errlen);
    if (rc == 0) {
        ch->seq = (uint64_t)json_integer_value(json_object_get(rec, "seq"));
        if (sha256_hex(line, len, ch->last_hash) < 0)
            rc = fail(out, lineno, AUDIT_FAULT_IO, err, errlen, "cannot hash the line");
        else if (ch->replay)
            ch->replay(ch->replay_arg, rec);
    }
    json_decref(rec);
    return rc;
}

/* Walks every complete line of buf; an unterminated last line only sets out->torn_tail. */
static int check_chain(const char *buf, size_t len, struct chain *ch,
                       struct audit_verify_result *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    audit_replay_fn replay = ch->replay;
    void *replay_arg = ch->replay_arg;
    memset(ch, 0, sizeof(*ch));
    ch->replay = replay;
    ch->replay_arg = replay_arg;
    memcpy(ch->last_hash, zero_hash, sizeof(ch->last_hash));
    size_t pos = 0;
    uint64_t lineno = 0;
    while (pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        if (!nl) {
            out->torn_tail = 1;
            break;
        }
        size_t line_len = (size_t)(nl - (buf + pos));
        if (check_line(buf, pos, line_len, len, ch, ++lineno, out, err, errlen) < 0)
            return -1;
        out->records++;
        pos += line_len + 1;
        ch->complete_len = pos;
    }
    return 0;
}

int audit_verify(const char *path, struct audit_verify_result *out, char *err, size_t errlen)
{
    struct chain ch = {0};
    size_t len = 0;
    char *buf = dsf_read_file(path, &len);
    if (!buf) {
        memset(out, 0, sizeof(*out));
        out->fault = AUDIT_FAULT_IO;
        snprintf(err, errlen, "audit log %s: %s", path, strerror(errno));
        return -1;
    }
    int rc = check_chain(buf, len, &ch, out, err, errlen);
    free(buf);
    return rc;
}

/* A new file's directory entry only survives a crash once the directory is synced. */
static int sync_parent_dir(const char *path, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else
        snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) < 0) {
        snprintf(err, errlen, "audit log %s: cannot sync directory %s: %s", path, dir,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

/* Checks the chain on disk and cuts off a torn last line, leaving a->seq and a->last_hash
 * where the next record continues. */
static int load_chain(struct audit *a, audit_replay_fn replay, void *arg, char *err, size_t errlen)
{
    struct audit_verify_result res;
    struct chain ch = {.replay = replay, .replay_arg = arg};
    size_t len = 0;
    char *buf = dsf_read_file(a->path, &len);
    if (!buf) {
        snprintf(err, errlen, "audit log %s: %s", a->path, strerror(errno));
        return -1;
    }
    char why[384];
    int rc = check_chain(buf, len, &ch, &res, why, sizeof(why));
    free(buf);
    if (rc < 0) {
        snprintf(err, errlen, "audit log %s does not verify, refused: %s", a->path, why);
        return -1;
    }
    if (res.torn_tail) {
        if (ftruncate(a->fd, (off_t)ch.complete_len) < 0 || fdatasync(a->fd) < 0) {
            snprintf(err, errlen, "audit log %s: cannot cut off the torn last line: %s", a->path,
                     strerror(errno));
            return -1;
        }
        a->torn_truncated++;
        log_warn("audit log %s: cut off a torn last line (line %" PRIu64
                 ", %zu bytes) left by a crash mid-append",
                 a->path, res.records + 1, len - ch.complete_len);
    }
    a->seq = ch.seq;
    memcpy(a->last_hash, ch.last_hash, sizeof(a->last_hash));
    return 0;
}

struct audit *audit_open_replay(const char *path, audit_replay_fn replay, void *arg, char *err,
                                size_t errlen)
{
    struct audit *a = calloc(1, sizeof(*a));
    if (!a || !(a->path = strdup(path))) {
        free(a);
        snprintf(err, errlen, "audit log %s: out of memory", path);
        return NULL;
    }
    a->fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
    if (a->fd < 0 && errno == ENOENT) {
        a->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (a->fd >= 0 && sync_parent_dir(path, err, errlen) < 0) {
            audit_close(a);
            return NULL;
        }
    }
    if (a->fd < 0) {
        snprintf(err, errlen, "audit log %s: cannot open: %s", path, strerror(errno));
        audit_close(a);
        return NULL;
    }
    if (load_chain(a, replay, arg, err, errlen) < 0) {
        audit_close(a);
        return NULL;
    }
    return a;
}

struct audit *audit_open(const char *path, char *err, size_t errlen)
{
    return audit_open_replay(path, NULL, NULL, err, errlen);
}

static void rfc3339_now(char out[DSF_RFC3339_LEN])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    dsf_rfc3339_ms((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, out);
}

/* The record as its line: the caller's fields plus the chain's, hashed. NULL on failure. */
static char *chained_line(const struct audit *a, json_t *record, json_t **chained, char *err,
                          size_t errlen)
{
    static const char *const reserved[] = {"seq", "time", "prev", "hash"};
    if (!json_is_object(record)) {
        snprintf(err, errlen, "audit record: not a JSON object");
        return NULL;
    }
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (json_object_get(record, reserved[i])) {
            snprintf(err, errlen, "audit record: key \"%s\" is set by the log, refused",
                     reserved[i]);
            return NULL;
        }
    char now[DSF_RFC3339_LEN], hash[AUDIT_HEX_LEN + 1];
    rfc3339_now(now);
    json_t *rec = json_copy(record);
    char *line = NULL;
    if (rec && json_object_set_new(rec, "seq", json_integer((json_int_t)(a->seq + 1))) == 0 &&
        json_object_set_new(rec, "time", json_string(now)) == 0 &&
        json_object_set_new(rec, "prev", json_string(a->last_hash)) == 0 &&
        record_hash(rec, hash) == 0 && json_object_set_new(rec, "hash", json_string(hash)) == 0)
        line = json_dumps(rec, AUDIT_DUMP_FLAGS);
    if (line && chained)
        *chained = rec;
    else
        json_decref(rec);
    if (!line)
        snprintf(err, errlen, "audit record: cannot serialize (out of memory?)");
    return line;
}

/* One write of the whole line, so a reader never sees half of it; a short write (disk
 * full) is cut back off so that the file ends on a complete line. */
static int write_line(struct audit *a, char *line, char *err, size_t errlen)
{
    size_t len = strlen(line);
    line[len] = '\n'; /* over the NUL: the line is written by length from here on */
    struct stat st;
    if (fstat(a->fd, &st) < 0) {
        snprintf(err, errlen, "audit log %s: %s", a->path, strerror(errno));
        return -1;
    }
    ssize_t n = write(a->fd, line, len + 1);
    if (n == (ssize_t)len + 1 && (a->defer || fdatasync(a->fd) == 0))
        return 0;
    int saved = n < 0 || n == (ssize_t)len + 1 ? errno : ENOSPC;
    if (n > 0 && n < (ssize_t)len + 1 && ftruncate(a->fd, st.st_size) < 0)
        log_error("audit log %s: cannot cut off a partial line: %s", a->path, strerror(errno));
    a->failed = 1;
    snprintf(err, errlen, "audit log %s: cannot write record seq %" PRIu64 ": %s", a->path,
             a->seq + 1, strerror(saved));
    return -1;
}

int audit_append(struct audit *a, json_t *record, char *err, size_t errlen)
{
    json_t *rec = audit_append_record(a, record, err, errlen);
    json_decref(rec);
    return rec ? 0 : -1;
}

json_t *audit_append_record(struct audit *a, json_t *record, char *err, size_t errlen)
{
    if (a->failed) {
        snprintf(err, errlen, "audit log %s: an earlier write failed; reopen the log", a->path);
        return NULL;
    }
    json_t *chained = NULL;
    char *line = chained_line(a, record, &chained, err, errlen);
    if (!line)
        return NULL;
    size_t len = strlen(line);
    char hash[AUDIT_HEX_LEN + 1];
    int rc = sha256_hex(line, len, hash);
    if (rc < 0)
        snprintf(err, errlen, "audit log %s: cannot hash the line", a->path);
    if (rc == 0)
        rc = write_line(a, line, err, errlen);
    free(line);
    if (rc < 0) {
        a->defer = 0;
        json_decref(chained);
        return NULL;
    }
    a->seq++;
    a->defer = 0;
    memcpy(a->last_hash, hash, sizeof(a->last_hash));
    return chained;
}

void audit_defer_sync(struct audit *a)
{
    a->defer = 1;
}

uint64_t audit_last_seq(const struct audit *a)
{
    return a->seq;
}

uint64_t audit_torn_truncated(const struct audit *a)
{
    return a->torn_truncated;
}

void audit_close(struct audit *a)
{
    if (!a)
        return;
    if (a->fd >= 0)
        close(a->fd);
    free(a->path);
    free(a);
}
