/* Helpers shared by the library and the drivers: clocks, bounded backoff, directories and
 * the driver's per-VM JSON data. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "common/file.h"
#include "federation/driver.h"

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t fed_now_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

int64_t fed_wall_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

void fed_sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

int fed_mkdir_p(const char *path, const char *call, struct fed_error *err)
{
    char msg[600];
    if (dsf_mkdir_p(path, 0755, msg, sizeof(msg)) == 0)
        return 0;
    int e = errno;
    return fed_fail(err, e == ENAMETOOLONG ? FED_EINVAL : FED_EIO, call, e, "%s", msg);
}

void fed_backoff_init(struct fed_backoff *b, int64_t timeout_ms)
{
    memset(b, 0, sizeof(*b));
    b->deadline_ms = fed_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
}

int fed_backoff_wait(struct fed_backoff *b)
{
    int64_t now = fed_now_ms();
    if (now >= b->deadline_ms)
        return 0;
    int64_t initial = b->initial_ms > 0 ? b->initial_ms : 100;
    int64_t max = b->max_ms > 0 ? b->max_ms : 5000;
    int64_t delay = b->next_ms > 0 ? b->next_ms : initial;
    b->next_ms = delay * 2 > max ? max : delay * 2;
    /* Up to a quarter less, so that callers retrying together spread out. */
    unsigned short r = 0;
    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) == (ssize_t)sizeof(r) && delay >= 4)
        delay -= (int64_t)(r % (unsigned)(delay / 4 + 1));
    if (now + delay > b->deadline_ms)
        delay = b->deadline_ms - now;
    fed_sleep_ms(delay);
    return 1;
}

/* ---- driver data -------------------------------------------------------------------- */

static json_t *data_load(const struct fed_vm *vm)
{
    json_t *o = vm->driver_data[0] ? json_loads(vm->driver_data, 0, NULL) : NULL;
    if (o && !json_is_object(o)) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

int64_t fed_vm_data_int(const struct fed_vm *vm, const char *key)
{
    json_t *o = data_load(vm);
    json_t *v = json_object_get(o, key);
    int64_t x = json_is_integer(v) ? json_integer_value(v) : 0;
    json_decref(o);
    return x;
}

const char *fed_vm_data_str(const struct fed_vm *vm, const char *key, char *buf, size_t len)
{
    json_t *o = data_load(vm);
    json_t *v = json_object_get(o, key);
    snprintf(buf, len, "%s", json_is_string(v) ? json_string_value(v) : "");
    json_decref(o);
    return buf;
}

static int data_set(struct fed_vm *vm, const char *key, json_t *v)
{
    json_t *o = data_load(vm);
    if (!o)
        o = json_object();
    if (!o || !v || json_object_set_new(o, key, v) < 0) {
        json_decref(o);
        return -1;
    }
    char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    if (!text || strlen(text) >= sizeof(vm->driver_data)) {
        free(text);
        return -1;
    }
    memcpy(vm->driver_data, text, strlen(text) + 1);
    free(text);
    return 0;
}

int fed_vm_data_set_int(struct fed_vm *vm, const char *key, int64_t v)
{
    return data_set(vm, key, json_integer(v));
}

int fed_vm_data_set_str(struct fed_vm *vm, const char *key, const char *v)
{
    return data_set(vm, key, json_string(v));
}
