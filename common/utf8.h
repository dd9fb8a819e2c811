#ifndef DSF_UTF8_H
#define DSF_UTF8_H

#include <stddef.h>

/* Length of the well-formed UTF-8 sequence (RFC 3629) at p, reading at most avail bytes; 0 when
 * the bytes there are not one: stray continuation bytes, overlong forms, surrogates and code
 * points above U+10FFFF are all refused, as strict decoders (Python, Go, InfluxDB) refuse them. */
size_t utf8_sequence_len(const unsigned char *p, size_t avail);

/* 1 when all n bytes at s are well-formed UTF-8. */
int utf8_valid(const char *s, size_t n);

/* n bytes of s as one printable line of valid UTF-8 in out: control characters and bytes
 * that are not UTF-8 as \xNN, cut (never inside a sequence) to fit cap with its NUL.
 * Returns the length written. For quoting what came from the network in messages. */
size_t utf8_printable(const char *s, size_t n, char *out, size_t cap);

#endif
