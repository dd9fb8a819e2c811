#include "common/uuid.h"
#include "common/loop.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

void dsf_uuid4(char *out)
{
    unsigned char r[16];
    /* Without the kernel's randomness the clock still makes ids that differ: a silence must
     * be created even then. */
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
        int64_t t = dsf_now_ns();
        for (size_t i = 0; i < sizeof(r); i++)
            r[i] = (unsigned char)(t >> (8 * (i % 8))) ^ (unsigned char)(i * 37);
    }
    r[6] = (r[6] & 0x0f) | 0x40;
    r[8] = (r[8] & 0x3f) | 0x80;
    snprintf(out, DSF_UUID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1],
             r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14],
             r[15]);
}

int dsf_uuid_like(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > DSF_UUID_LEN)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '-'))
            return 0;
    return 1;
}
