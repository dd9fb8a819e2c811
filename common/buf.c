#include "common/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_reset(struct dsf_buf *b)
{
    b->len = 0;
    b->oom = 0;
}

void buf_free(struct dsf_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int buf_reserve(struct dsf_buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *grown = realloc(b->data, cap);
    if (!grown) {
        b->oom = 1;
        return -1;
    }
    b->data = grown;
    b->cap = cap;
    return 0;
}

void buf_put(struct dsf_buf *b, const void *p, size_t n)
{
    /* An empty buffer's data may be NULL, which memcpy must not get even for 0 bytes. */
    if (n == 0 || buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void buf_puts(struct dsf_buf *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

void buf_putc(struct dsf_buf *b, char c)
{
    if (buf_reserve(b, 1))
        return;
    b->data[b->len++] = c;
}

void buf_printf(struct dsf_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->data ? b->data + b->len : NULL, b->data ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (b->data && (size_t)n < b->cap - b->len) {
        b->len += (size_t)n;
        return;
    }
    if (buf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

const char *buf_cstr(struct dsf_buf *b)
{
    if (buf_reserve(b, 0))
        return "";
    b->data[b->len] = '\0';
    return b->data;
}
