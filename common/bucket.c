#include "common/bucket.h"
#include "common/topic.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int dsf_parse_buckets(const char *spec, uint8_t *flags, uint32_t total)
{
    memset(flags, 0, total);
    if (strcmp(spec, "all") == 0) {
        memset(flags, 1, total);
        return 0;
    }
    if (strcmp(spec, "none") == 0 || !*spec)
        return 0;
    const char *p = spec;
    while (*p) {
        char *end;
        long lo = strtol(p, &end, 10), hi = lo;
        if (end == p)
            return -1;
        if (*end == '-') {
            p = end + 1;
            hi = strtol(p, &end, 10);
            if (end == p)
                return -1;
        }
        if (lo < 0 || hi < lo || hi >= (long)total)
            return -1;
        for (long b = lo; b <= hi; b++)
            flags[b] = 1;
        if (*end == ',')
            end++;
        else if (*end)
            return -1;
        p = end;
    }
    return 0;
}

int dsf_bucket_check(const struct dsf_identity *id, uint32_t bucket, uint32_t total, char *why,
                     size_t cap)
{
    char key[3 * sizeof(id->ns)];
    int n = snprintf(key, sizeof(key), "%s/%s/%s", id->ns, id->mci, id->vm);
    uint32_t want = dsf_bucket(key, (size_t)n, total);
    if (bucket == want)
        return 0;
    snprintf(why, cap,
             "bucket %" PRIu32 " is not the agent's: fnv1a32(\"%s\") %% %" PRIu32 " = %" PRIu32,
             bucket, key, total, want);
    return -1;
}
