#ifndef DSF_UTF8_H
#define DSF_UTF8_H

#include <stddef.h>

/* Length of the well-formed UTF-8 sequence (RFC 3629) at p, reading at most avail bytes; 0 when
 * the bytes there are not one: stray continuation bytes, overlong forms, surrogates and code
 * points above U+10FFFF are all refused, as strict decoders (Python, Go, InfluxDB) refuse them. */
size_t utf8_sequence_len(const unsigned char *p, size_t avail);

/* 1 when all n bytes at s are well-formed UTF-8. */
int utf8_valid(const char *s, size_t n);

#endif
