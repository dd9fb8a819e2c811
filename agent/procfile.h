/*
 * Netdata-style reader for /proc and /sys files: the file stays open and one buffer is
 * reused, so reading it every cycle allocates nothing once the buffer has grown.
 */
#ifndef DSF_AGENT_PROCFILE_H
#define DSF_AGENT_PROCFILE_H

#include <stddef.h>

#include "common/buf.h"

struct procfile {
    int fd;
    char path[256];
    struct dsf_buf data;
    char *cursor; /* line iterator position */
    char *words[64];
    size_t nwords;
};

/* Builds the path from a printf format; does not open yet. */
void procfile_init(struct procfile *pf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reads the whole file (reopening when needed); 0 or -1 with errno set. NUL-terminated. */
int procfile_read(struct procfile *pf);
void procfile_close(struct procfile *pf);
/* Next line of the last read, NUL-terminated in place, or NULL at the end. */
char *procfile_next_line(struct procfile *pf);
/* Splits a line in place on spaces/tabs (and the extra separators); fills pf->words. */
size_t procfile_split(struct procfile *pf, char *line, const char *extra_seps);

/* For an input's init, so that a wrong host.proc shows at start: -1 with "cannot read <path>:
 * <errno's text> (is host.proc right?)" in err (errlen bytes). */
int procfile_cannot_read(const char *path, char *err, size_t errlen);
/* procfile_read, or procfile_cannot_read on failure. */
int procfile_first_read(struct procfile *pf, char *err, size_t errlen);
/* For a collect that could not read path (errno set): logs it under module once until
 * *failing is cleared by a good read, sets *failing and returns -1. */
int procfile_read_failed(const char *module, const char *path, int *failing);

/* Reads a small file (a cgroup or sysfs value) into out; 0 or -1. Trailing newline removed. */
int read_small_file(const char *path, char *out, size_t cap);
/* Reads a file holding one unsigned integer ("max" reads as UINT64_MAX); 0 or -1. */
int read_u64_file(const char *path, unsigned long long *out);

/* Reads a whole file of any size into a reused buffer (NUL-terminated); 0 or -1 with errno.
 * For files read once per object per cycle, where keeping one open per object would cost
 * too many descriptors. */
int read_file_buf(const char *path, struct dsf_buf *out);

/* Lists a directory without allocating (opendir mallocs its buffer): for walks that run
 * every cycle, such as /proc or a cgroup tree. */
struct dirscan {
    int fd;
    long len, pos;
    char buf[4096] __attribute__((aligned(8))); /* holds struct linux_dirent64 records */
};
int dirscan_open(struct dirscan *d, const char *path);
/* Next entry other than "." and "..", or NULL at the end or on error; *type is a DT_* value
 * (DT_UNKNOWN when the filesystem does not say). */
const char *dirscan_next(struct dirscan *d, unsigned char *type);
void dirscan_close(struct dirscan *d);

/* Value after `key` on the line that starts with it, in the last read of a "key value" file
 * (/proc/meminfo's "MemTotal:  16 kB", /proc/vmstat's "pswpin 0", /proc/stat's "btime 1");
 * 0 or -1 when the key is absent. Works before and after the lines were iterated. */
int procfile_find_u64(const struct procfile *pf, const char *key, unsigned long long *out);

/* mountinfo writes space, tab, newline and backslash in paths as \040, \011, \012, \134:
 * decodes them in place. */
void mountinfo_unescape(char *s);
/* 1 when the comma-separated mount options (mountinfo's fields) hold name, e.g. "ro". */
int mount_has_option(const char *options, const char *name);

#endif
