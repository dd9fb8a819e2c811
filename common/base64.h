/* Standard base64 (RFC 4648, "+/" alphabet, "=" padding): MIME encoded words, kubeconfig
 * "*-data" fields, basic auth. */
#ifndef DSF_BASE64_H
#define DSF_BASE64_H

#include <stddef.h>

struct dsf_buf;

/* Appends the encoding of data (padded, no line breaks) to out. */
void dsf_base64_append(struct dsf_buf *out, const void *data, size_t len);

/* Decodes in, ignoring whitespace (line-wrapped input). Strict otherwise: only the
 * alphabet, a length that is a multiple of 4, padding only at the end and unused bits zero.
 * Returns a malloc'd, NUL-terminated buffer and its length without the NUL in *outlen, or
 * NULL when in is not base64 or memory ran out. */
char *dsf_base64_decode(const char *in, size_t inlen, size_t *outlen);

#endif
