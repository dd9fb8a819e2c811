/* The wire contract's bucket: fnv1a32("ns/mci/vm") % B. Every component computes it here. */
#ifndef DSF_BUCKET_H
#define DSF_BUCKET_H

#include <stddef.h>
#include <stdint.h>

static inline uint32_t dsf_fnv1a32(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

static inline uint32_t dsf_bucket(const char *key, size_t len, uint32_t buckets)
{
    return dsf_fnv1a32(key, len) % buckets;
}

/* Parses a bucket set, "all", "none" or a list and ranges like "0-15,32", into
 * flags[0..total). 0, or -1 on a malformed spec or a bucket outside the range. */
int dsf_parse_buckets(const char *spec, uint8_t *flags, uint32_t total);

/* The topic's bucket is the agent's. With broker ACLs that let an agent write any bucket of
 * its own identity, only the consumers can check it: a message on another bucket would reach
 * another collector than the agent's other messages, or reach the alarm engine twice.
 * 0, or -1 with the reason in why. */
struct dsf_identity;
int dsf_bucket_check(const struct dsf_identity *id, uint32_t bucket, uint32_t total, char *why,
                     size_t cap);

#endif
