/* libFuzzer target: everything the balancer reads from the bus (heartbeats, retained
 * assignments, leader records, balancers' alive statuses and beats), one message per line:
 * the first byte picks the topic (mod 5: hb, assign, alive, beat, leader; 'd' is a heartbeat,
 * 'e' an assignment, 'a' an alive status, 'b' a beat, 'c' a leader record), the second the
 * member id (mod 4; odd: retained; 2 and 3: an alarm engine's dsf/e/ topics for hb and
 * assign), the rest is the payload. No input
 * may crash it, leak, or drive its epoch far past the clock; the owners read back must be
 * members it knows, each bucket a member's. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "balancer/balancer.h"
#include "common/bus.h"

static void message(struct balancer *b, const char *line, size_t len)
{
    static const char *const leaf[] = {"hb", "assign", "alive", "beat"};
    char topic[64];
    if (len < 2)
        return;
    int kind = (unsigned char)line[0] % 5, id = (unsigned char)line[1] % 4;
    if (kind == 4)
        snprintf(topic, sizeof(topic), "dsf/b/leader");
    else
        snprintf(topic, sizeof(topic), "dsf/%c/m%d/%s",
                 kind >= 2  ? 'b'
                 : (id & 2) ? 'e'
                            : 'c',
                 id, leaf[kind]);
    struct dsf_bus_message m = {
        .topic = topic, .payload = line + 2, .len = len - 2, .retained = line[1] & 1};
    bal_on_message(b, &m);
}

static void check(struct balancer *b)
{
    if (b->epoch > bal_wall_ms() + BAL_EPOCH_AHEAD_MAX)
        abort();
    bal_adopt(b);
    for (size_t g = 0; g < b->ngroups; g++) { /* what a publish would carry */
        json_t *lists = bal_group_lists(b, &b->groups[g]);
        if (!json_is_object(lists))
            abort();
        json_decref(lists);
    }
    for (size_t g = 0; g < b->ngroups; g++) {
        for (uint32_t k = 0; k < b->nb; k++) {
            struct bal_member *o = b->groups[g].owner[k], *m = b->members;
            while (o && m && m != o)
                m = m->next;
            if (o && (!m || !o->assigned[k] || bal_member_group(b, o) != &b->groups[g]))
                abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct balancer b;
    char err[256];
    memset(&b, 0, sizeof(b));
    b.cfg.id = "m0";
    b.cfg.buckets_total = 64;
    b.cfg.heartbeat_ms = 1000;
    b.cfg.missed_beats = 3;
    /* A tenant pool: members announcing it form groups of their own. */
    static char *map[] = {"acme=tenant-a"};
    b.cfg.pools_map = (struct dsf_strlist){map, 1};
    if (bal_pools_parse(&b, err, sizeof(err)) < 0 || bal_state_init(&b) < 0)
        abort();
    const char *p = (const char *)data, *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        message(&b, p, len);
        p += len + 1;
    }
    bal_membership_tick(&b, 1000000);
    check(&b);
    bal_state_free(&b);
    return 0;
}
