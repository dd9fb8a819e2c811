/* Standard base64: one encoder and one strict decoder for every component. */
#include "common/base64.h"

#include <stdint.h>
#include <stdlib.h>

#include "common/buf.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void dsf_base64_append(struct dsf_buf *out, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < len ? p[i + 2] : 0);
        char quad[4] = {alphabet[(v >> 18) & 63], alphabet[(v >> 12) & 63],
                        i + 1 < len ? alphabet[(v >> 6) & 63] : '=',
                        i + 2 < len ? alphabet[v & 63] : '='};
        buf_put(out, quad, sizeof(quad));
    }
}

static int digit_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

char *dsf_base64_decode(const char *in, size_t inlen, size_t *outlen)
{
    char *out = malloc(inlen / 4 * 3 + 4);
    if (!out)
        return NULL;
    size_t o = 0, symbols = 0;
    uint32_t acc = 0;
    int bits = 0, pad = 0;
    for (size_t i = 0; i < inlen; i++) {
        unsigned char c = (unsigned char)in[i];
        if (is_space(c))
            continue;
        symbols++;
        int v = c == '=' ? -2 : digit_value(c);
        if (v == -2) {
            pad++;
            continue;
        }
        if (v < 0 || pad) /* not the alphabet, or data after padding */
            goto bad;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    /* Whole quads only, and the padding must be what the data left over needs; bits left
     * over must be zero, else two different texts would decode to the same bytes. */
    if (symbols % 4 || pad > 2 ||
        (pad && pad != (bits == 4   ? 2
                        : bits == 2 ? 1
                                    : -1)) ||
        (acc & ((1u << bits) - 1)))
        goto bad;
    out[o] = '\0';
    *outlen = o;
    return out;
bad:
    free(out);
    return NULL;
}
