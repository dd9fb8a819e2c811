/* libFuzzer target: the alarm rule parser, then the engine with whatever rules it accepted
 * over a few fixed lines and a deadman tick. Any input must load or be refused with a
 * message naming a key, never crash or leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alarm/eval.h"
#include "common/buf.h"
#include "common/lp.h"

static void refused(void *arg, const char *msg)
{
    size_t *n = arg;
    (*n)++;
    if (!strstr(msg, "key '") && !strstr(msg, "not JSON") && !strstr(msg, "JSON object") &&
        !strstr(msg, "out of memory"))
        abort(); /* every refusal names what is wrong */
}

static const char *lookup(void *arg, const char *name, char *tmp, size_t cap)
{
    return name;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rule **rules = NULL;
    size_t n = 0, bad = 0;
    rule_parse_text((const char *)data, size, "fuzz.json", &rules, &n, refused, &bad);
    struct dsf_buf out = {0};
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < rules[i]->nannotations; j++)
            rule_render(&out, rules[i]->annotations[j].val, lookup, NULL);
    buf_free(&out);
    struct engine *e = engine_new(NULL, NULL, 1000);
    engine_set_rules(e, rules, n, 0);
    static const char *const lines[] = {
        "cpu,cpu=cpu-total usage_user=95,usage_idle=5 1000000000",
        "cpu,cpu=cpu0 usage_user=10i,usage_idle=90 2000000000",
        "disk,path=/data,fstype=ext4 used_percent=99.5 3000000000",
        "mem used_percent=50,available=1u 4000000000",
    };
    static struct lp_line l;
    struct dsf_identity id = {"ns1", "mci1", "vm1"};
    for (int round = 0; round < 3; round++)
        for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
            const char *why;
            if (lp_parse_line(lines[i], strlen(lines[i]), &l, &why) == 0) {
                l.ts += round * 1000000000LL;
                engine_line(e, &id, &l, round * 1000);
            }
        }
    engine_status(e, &id, 0, 5000000000LL, 5000);
    engine_tick(e, 60000000000LL, 60000);
    engine_free(e);
    return 0;
}
