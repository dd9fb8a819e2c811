/* Whole-file reads and crash-safe whole-file writes, for state that must survive a restart. */
#ifndef DSF_FILE_H
#define DSF_FILE_H

#include <stddef.h>
#include <sys/types.h>

/* Writes data to dir/name through a temporary file in dir, fsynced, renamed over the old
 * one, then fsyncs dir: a crash leaves the old content or the new one, never a torn mix.
 * 0, or -1 with err naming the file and the reason. */
int dsf_write_file_atomic(const char *dir, const char *name, const void *data, size_t len,
                          char *err, size_t errlen);
/* The same, the new file getting the mode and owner of like (a stat of the old one) before
 * it is renamed into place, so that no reader (a server reloading it under its own user)
 * ever finds it with other permissions; like NULL: mode 0600, the caller's owner. Fails
 * when the owner cannot be given (not root). */
struct stat;
int dsf_write_file_atomic_like(const char *dir, const char *name, const void *data, size_t len,
                               const struct stat *like, char *err, size_t errlen);

/* mkdir -p: creates path and its missing parents with mode. 0 when path is a directory
 * afterwards; -1 with errno set and err naming the component that failed and why. */
int dsf_mkdir_p(const char *path, mode_t mode, char *err, size_t errlen);

/* The whole file, NUL-terminated (*len without the NUL, when len is given); NULL with errno
 * set when it cannot be read. The caller frees it. */
char *dsf_read_file(const char *path, size_t *len);

/* A thread that does these writes off the event loop, where an fsync would stall every
 * event behind it. Per file the newest content wins: a version superseded before its turn
 * is never written. */
struct dsf_file_writer;
/* Called on the writer thread once a write is done (err is NULL when it succeeded). */
typedef void (*dsf_file_done)(void *arg, const char *err);
struct dsf_file_writer *dsf_file_writer_new(void);
/* Queues a copy of data for dir/name. 0, or -1 out of memory (nothing queued). */
int dsf_file_writer_put(struct dsf_file_writer *w, const char *dir, const char *name,
                        const void *data, size_t len, dsf_file_done done, void *arg);
/* Writes what is queued, then stops the thread and frees everything. */
void dsf_file_writer_free(struct dsf_file_writer *w);

#endif
