/* Whole-file reads and crash-safe whole-file writes, for state that must survive a restart. */
#ifndef DSF_FILE_H
#define DSF_FILE_H

#include <stddef.h>

/* Writes data to dir/name through a temporary file in dir, fsynced, renamed over the old
 * one, then fsyncs dir: a crash leaves the old content or the new one, never a torn mix.
 * 0, or -1 with err naming the file and the reason. */
int dsf_write_file_atomic(const char *dir, const char *name, const void *data, size_t len,
                          char *err, size_t errlen);

/* The whole file, NUL-terminated (*len without the NUL, when len is given); NULL with errno
 * set when it cannot be read. The caller frees it. */
char *dsf_read_file(const char *path, size_t *len);

#endif
