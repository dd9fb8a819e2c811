/* Shared by the policy parser and the Tumblebug import: error context and checked getters. */
#ifndef DSF_CONTROL_POLICY_IMPL_H
#define DSF_CONTROL_POLICY_IMPL_H

#include <jansson.h>
#include <stddef.h>

struct policy_ctx {
    const char *origin;
    char *err;
    size_t errlen;
};

/* Writes "<origin>: key '<path>': <why>" to err; returns -1. */
int policy_fail(struct policy_ctx *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* v as compact JSON, cut at 60 characters, for the "(got ...)" of a message. */
const char *policy_show(json_t *v, char *buf, size_t cap);
/* Refuses a key of obj not in allowed (NULL-terminated), naming prefix+key, what (or "")
 * and the nearest known key. */
int policy_check_keys(struct policy_ctx *c, json_t *obj, const char *prefix,
                      const char *const *allowed, const char *what);
/* A non-empty string key into *out (strdup); absent: -1 when required, else *out untouched. */
int policy_get_str(struct policy_ctx *c, json_t *obj, const char *key, const char *path,
                   int required, char **out);

#endif
