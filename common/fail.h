/* The error return shared by every layer that reports failures as text: formats the reason
 * into err (errlen bytes; err may be NULL when errlen is 0) and returns -1, so that
 * `return dsf_fail(err, errlen, "...", ...)` reads well. */
#ifndef DSF_FAIL_H
#define DSF_FAIL_H

#include <stddef.h>

int dsf_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
