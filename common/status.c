#include "common/status.h"

#include <jansson.h>
#include <string.h>

enum dsf_status dsf_status_parse(const void *payload, size_t len)
{
    if (len == 0)
        return DSF_STATUS_CLEARED;
    if (!payload)
        return DSF_STATUS_INVALID;
    json_t *root = json_loadb(payload, len, 0, NULL);
    const char *st = json_string_value(json_object_get(root, "status"));
    enum dsf_status rc = !st                          ? DSF_STATUS_INVALID
                         : strcmp(st, "online") == 0  ? DSF_STATUS_ONLINE
                         : strcmp(st, "offline") == 0 ? DSF_STATUS_OFFLINE
                                                      : DSF_STATUS_INVALID;
    json_decref(root);
    return rc;
}
