/* The events of a transition as the notifier receives them: the alert's labels carry ns, mci
 * and the rule's group_by tags with their values, whatever the number of tags. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "alarm/alarm.h"
#include "alarm/notify.h"
#include "common/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The daemon's store, state and notifier, reduced to what the events hand them. */
static struct {
    int pushes;
    size_t nlabels;
    char labels[64][2][64];
} seen;

void dsf_event_store_add(struct dsf_event_store *s, const char *lines, size_t len)
{
    (void)s, (void)lines, (void)len;
}

void alarm_state_dirty(struct alarm *a)
{
    (void)a;
}

void notifier_push(struct notifier *n, const struct alarm_alert *al)
{
    (void)n;
    seen.pushes++;
    seen.nlabels = al->labels.n;
    for (size_t i = 0; i < al->labels.n && i < 64; i++) {
        snprintf(seen.labels[i][0], sizeof(seen.labels[i][0]), "%s", al->labels.kv[i].key);
        snprintf(seen.labels[i][1], sizeof(seen.labels[i][1]), "%s", al->labels.kv[i].val);
    }
}

static const char *label(const char *key)
{
    for (size_t i = 0; i < seen.nlabels && i < 64; i++)
        if (strcmp(seen.labels[i][0], key) == 0)
            return seen.labels[i][1];
    return NULL;
}

/* A rule with ntags group_by tags t0.. and a firing series whose values are v0.. */
static void fire_with_tags(size_t ntags)
{
    char **tags = calloc(ntags + 1, sizeof(char *));
    struct dsf_buf key = {0};
    buf_puts(&key, "ns1");
    buf_putc(&key, GROUP_SEP);
    buf_puts(&key, "mci1");
    for (size_t i = 0; i < ntags; i++) {
        char t[16];
        snprintf(t, sizeof(t), "t%zu", i);
        tags[i] = strdup(t);
        buf_printf(&key, "%cv%zu", GROUP_SEP, i);
    }
    struct rule r = {.name = "wide", .group_by = tags, .ngroup = ntags, .op = OP_GT};
    struct series s = {.key = key.data,
                       .keylen = (uint32_t)key.len,
                       .state = ST_FIRING,
                       .severity = SEV_CRIT,
                       .value = 2,
                       .threshold = 1};
    struct alarm a = {0};
    int notifier;
    a.notifier = (struct notifier *)&notifier;
    a.cfg.id = "test";
    memset(&seen, 0, sizeof(seen));
    alarm_on_transition(&a, &r, &s, ST_PENDING, SEV_CRIT, 1);
    history_free(&a.history);
    buf_free(&a.scratch);
    buf_free(&key);
    for (size_t i = 0; i < ntags; i++)
        free(tags[i]);
    free(tags);
}

static void test_group_tags_are_labels(void **state)
{
    (void)state;
    fire_with_tags(3);
    assert_int_equal(seen.pushes, 1);
    assert_string_equal(label("alertname"), "wide");
    assert_string_equal(label("severity"), "crit");
    assert_string_equal(label("ns"), "ns1");
    assert_string_equal(label("mci"), "mci1");
    assert_string_equal(label("t0"), "v0");
    assert_string_equal(label("t2"), "v2");
}

/* The loader bounds group_by, but the events must not depend on it: a rule with more tags
 * than an alert holds labels still notifies, with the first tags and no overrun. */
static void test_many_group_tags(void **state)
{
    (void)state;
    fire_with_tags(200);
    assert_int_equal(seen.pushes, 1);
    assert_true(seen.nlabels <= 64);
    assert_string_equal(label("alertname"), "wide");
    assert_string_equal(label("ns"), "ns1");
    assert_string_equal(label("mci"), "mci1");
    assert_string_equal(label("t0"), "v0");
    assert_string_equal(label("t59"), "v59");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_tags_are_labels),
        cmocka_unit_test(test_many_group_tags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
