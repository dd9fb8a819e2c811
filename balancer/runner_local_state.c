/* The local runner's record of its members, so that a restarted balancer adopts the
 * collectors it left running instead of spawning more. */
#define DSF_MODULE "runner-local"
#include "balancer/runner_local.h"
#include "common/file.h"
#include "common/log.h"
#include "common/loop.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATE_FILE "children.json"

int local_child_alive(const struct local_runner *L, pid_t pid, const char *id)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    size_t len = 0;
    char *cmd = dsf_read_file(path, &len);
    if (!cmd)
        return 0;
    char want[LOCAL_ID_MAX + 8];
    snprintf(want, sizeof(want), "id=%s", id);
    int binary = len > 0 && !strcmp(cmd, L->collector), named = 0;
    for (size_t i = 0; i < len; i += strlen(cmd + i) + 1) {
        if (!strcmp(cmd + i, want))
            named = 1;
    }
    free(cmd);
    return binary && named;
}

struct local_child *local_child_add(struct local_runner *L, const struct local_child *c)
{
    if (L->nkids == L->cap) {
        size_t cap = L->cap ? L->cap * 2 : 8;
        struct local_child *k = realloc(L->kids, cap * sizeof(*k));
        if (!k)
            return NULL;
        L->kids = k;
        L->cap = cap;
    }
    L->kids[L->nkids] = *c;
    return &L->kids[L->nkids++];
}

int local_state_save(const struct local_runner *L, char *err, size_t errlen)
{
    json_t *list = json_array();
    for (size_t i = 0; i < L->nkids; i++) {
        const struct local_child *c = &L->kids[i];
        json_array_append_new(list, json_pack("{s:s, s:i, s:i, s:b}", "id", c->id, "n", c->n, "pid",
                                              (int)c->pid, "stopping", c->stopping));
    }
    json_t *doc = json_pack("{s:s, s:o}", "collector", L->collector, "children", list);
    char *text = doc ? json_dumps(doc, JSON_INDENT(1)) : NULL;
    json_decref(doc);
    if (!text) {
        snprintf(err, errlen, "%s/%s: out of memory", L->cfg->dir, STATE_FILE);
        return -1;
    }
    int rc = dsf_write_file_atomic(L->cfg->dir, STATE_FILE, text, strlen(text), err, errlen);
    free(text);
    return rc;
}

/* One entry of the file: adopted when its process still runs as that member. */
static int adopt(struct local_runner *L, json_t *e, int64_t now_ms)
{
    const char *id = NULL;
    int n = 0, pid = 0, stopping = 0;
    if (json_unpack(e, "{s:s, s:i, s:i, s?b}", "id", &id, "n", &n, "pid", &pid, "stopping",
                    &stopping) < 0 ||
        strlen(id) >= LOCAL_ID_MAX || pid <= 1) {
        log_warn("%s/%s: an entry is malformed, skipped", L->cfg->dir, STATE_FILE);
        return 0;
    }
    if (!local_child_alive(L, pid, id)) {
        log_info("%s (pid %d) is no longer running: not adopted", id, pid);
        return 0;
    }
    struct local_child c = {.n = n, .pid = pid, .stopping = stopping};
    snprintf(c.id, sizeof(c.id), "%s", id);
    /* A stop the previous balancer began is finished with a fresh timeout. */
    if (stopping)
        c.kill_at_ms = now_ms + L->cfg->stop_timeout_ms;
    if (!local_child_add(L, &c))
        return -1;
    log_info("adopted %s (pid %d)%s", id, pid, stopping ? ", stopping" : "");
    return 0;
}

int local_state_load(struct local_runner *L, char *err, size_t errlen)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", L->cfg->dir, STATE_FILE);
    size_t len;
    char *text = dsf_read_file(path, &len);
    if (!text) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    json_error_t je;
    json_t *doc = json_loadb(text, len, 0, &je);
    free(text);
    json_t *list = json_object_get(doc, "children");
    if (!json_is_array(list)) {
        snprintf(err, errlen, "%s: not a children list (%s)", path, doc ? "no array" : je.text);
        json_decref(doc);
        return -1;
    }
    int64_t now = dsf_mono_ms();
    size_t i;
    json_t *e;
    int rc = 0;
    json_array_foreach(list, i, e)
    {
        if (rc == 0 && adopt(L, e, now) < 0) {
            snprintf(err, errlen, "%s: out of memory", path);
            rc = -1;
        }
    }
    json_decref(doc);
    return rc;
}
