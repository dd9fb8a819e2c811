/* A growable byte buffer. Reused across cycles: once it has grown to the working size,
 * appending allocates nothing. */
#ifndef DSF_BUF_H
#define DSF_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <string.h>

struct dsf_buf {
    char *data;
    size_t len, cap;
    int oom; /* set when a growth failed; the content is then truncated */
};

void buf_reset(struct dsf_buf *b);
void buf_free(struct dsf_buf *b);
int buf_reserve(struct dsf_buf *b, size_t extra);
void buf_put(struct dsf_buf *b, const void *p, size_t n);
void buf_puts(struct dsf_buf *b, const char *s);
void buf_putc(struct dsf_buf *b, char c);
void buf_printf(struct dsf_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* NUL-terminates without counting the NUL in len. */
const char *buf_cstr(struct dsf_buf *b);

/* The text line at *p, up to a newline or end, without the newline and a '\r' before it
 * (CRLF from HTTP bodies); *p moves past it. Call while *p < end. */
static inline const char *text_line_next(const char **p, const char *end, size_t *len)
{
    const char *line = *p, *nl = memchr(line, '\n', (size_t)(end - line));
    const char *eol = nl ? nl : end;
    *len = (size_t)(eol - line) - (eol > line && eol[-1] == '\r');
    *p = nl ? nl + 1 : end;
    return line;
}

#endif
