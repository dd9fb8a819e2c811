/* libFuzzer target: the notifier's routing file parser (route tree, matchers, receivers).
 * Any input must parse or be refused with a message, never crash or leak. */
#include <stddef.h>
#include <stdint.h>

#include "alarm/notify/internal.h"

static void count_route(void *arg, struct nf_route *r)
{
    (*(size_t *)arg)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[NF_ERRLEN];
    struct nf_config *c = nf_config_parse((const char *)data, size, "fuzz", err, sizeof(err));
    if (c) {
        /* Route a fixed label set through what was parsed: matchers and regexes run too. */
        struct alarm_label kv[] = {{"alertname", "HighCPU"}, {"mci", "m1"}, {"severity", "crit"}};
        struct nf_labels l = {3, kv};
        size_t routes = 0;
        nf_route_match(&c->root, &l, count_route, &routes);
        nf_config_unref(c);
    }
    return 0;
}
