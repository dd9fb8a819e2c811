/* balancer/assign.c: bounded-load sticky rendezvous over many random pool sizes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "balancer/assign.h"

#define MAXN 24
#define MAXB 300

struct pool {
    struct asg_member m[MAXN + 1];
    char ids[MAXN + 1][32];
    size_t n;
    uint32_t nb;
    int32_t owner[MAXB];
};

static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void pool_init(struct pool *p, uint32_t nb, size_t n, uint32_t *seed)
{
    memset(p, 0, sizeof(*p));
    p->nb = nb;
    p->n = n;
    for (size_t i = 0; i < n; i++) {
        snprintf(p->ids[i], sizeof(p->ids[i]), "c%u-%zu", rnd(seed) % 100000, i);
        p->m[i] = (struct asg_member){p->ids[i], 1, 0};
    }
    for (uint32_t b = 0; b < nb; b++)
        p->owner[b] = -1;
    asg_balance(p->m, p->n, p->owner, p->nb);
}

/* Every bucket has exactly one eligible owner, and counts are floor or ceil(B/N). */
static void assert_owned(const struct pool *p)
{
    size_t ne = 0, count[MAXN + 1] = {0};
    for (size_t i = 0; i < p->n; i++)
        ne += p->m[i].eligible;
    for (uint32_t b = 0; b < p->nb; b++) {
        assert_true(p->owner[b] >= 0 && (size_t)p->owner[b] < p->n);
        assert_true(p->m[p->owner[b]].eligible);
        count[p->owner[b]]++;
    }
    for (size_t i = 0; i < p->n; i++)
        if (p->m[i].eligible)
            assert_true(count[i] == p->nb / ne || count[i] == (p->nb + ne - 1) / ne);
}

static void test_owned_once(void **state)
{
    (void)state;
    uint32_t seed = 12345;
    for (int round = 0; round < 500; round++) {
        struct pool p;
        pool_init(&p, 1 + rnd(&seed) % MAXB, 1 + rnd(&seed) % MAXN, &seed);
        assert_owned(&p);
        /* Deciding again changes nothing. */
        assert_int_equal(asg_balance(p.m, p.n, p.owner, p.nb), 0);
    }
}

static void test_join(void **state)
{
    (void)state;
    uint32_t seed = 777;
    for (int round = 0; round < 500; round++) {
        struct pool p;
        pool_init(&p, 1 + rnd(&seed) % MAXB, 1 + rnd(&seed) % (MAXN - 1), &seed);
        int32_t before[MAXB];
        memcpy(before, p.owner, sizeof(before));
        size_t k = p.n++;
        snprintf(p.ids[k], sizeof(p.ids[k]), "new-%d", round);
        p.m[k] = (struct asg_member){p.ids[k], 1, 0};
        size_t moved = asg_balance(p.m, p.n, p.owner, p.nb);
        assert_owned(&p);
        assert_true(moved <= (p.nb + p.n - 1) / p.n + 1);
        for (uint32_t b = 0; b < p.nb; b++)
            if (p.owner[b] != before[b])
                assert_int_equal(p.owner[b], (int32_t)k);
    }
}

static void test_leave(void **state)
{
    (void)state;
    uint32_t seed = 4242;
    for (int round = 0; round < 500; round++) {
        struct pool p;
        pool_init(&p, 1 + rnd(&seed) % MAXB, 2 + rnd(&seed) % (MAXN - 1), &seed);
        int32_t before[MAXB];
        memcpy(before, p.owner, sizeof(before));
        int32_t gone = (int32_t)(rnd(&seed) % p.n);
        p.m[gone].eligible = 0;
        asg_balance(p.m, p.n, p.owner, p.nb);
        assert_owned(&p);
        for (uint32_t b = 0; b < p.nb; b++)
            if (p.owner[b] != before[b])
                assert_int_equal(before[b], gone);
    }
}

/* Joins and leaves one after another keep both properties at every step. */
static void test_sequence(void **state)
{
    (void)state;
    uint32_t seed = 99;
    struct pool p;
    pool_init(&p, 64, 4, &seed);
    for (int step = 0; step < 2000; step++) {
        int32_t before[MAXB];
        memcpy(before, p.owner, sizeof(before));
        size_t live = 0;
        for (size_t i = 0; i < p.n; i++)
            live += p.m[i].eligible;
        int join = live < 2 || (live < MAXN && rnd(&seed) % 2);
        int32_t who = -1;
        if (join) {
            for (size_t i = 0; i < p.n && who < 0; i++)
                if (!p.m[i].eligible)
                    who = (int32_t)i;
            if (who < 0)
                who = (int32_t)p.n++;
            snprintf(p.ids[who], sizeof(p.ids[who]), "s%d", step);
            p.m[who] = (struct asg_member){p.ids[who], 1, 0};
        } else {
            do
                who = (int32_t)(rnd(&seed) % p.n);
            while (!p.m[who].eligible);
            p.m[who].eligible = 0;
        }
        size_t moved = asg_balance(p.m, p.n, p.owner, p.nb);
        assert_owned(&p);
        live += join ? 1 : (size_t)-1;
        for (uint32_t b = 0; b < p.nb; b++)
            if (p.owner[b] != before[b])
                assert_int_equal(join ? p.owner[b] : before[b], who);
        if (join)
            assert_true(moved <= (p.nb + live - 1) / live + 1);
    }
}

/* One bucket per call from the busiest to the least loaded; a restart's decision over the
 * result moves nothing (counts stay within one of the quotas). */
static void test_load_move(void **state)
{
    (void)state;
    uint32_t seed = 5;
    struct pool p;
    pool_init(&p, 64, 4, &seed);
    p.m[0].load = 1000;
    p.m[1].load = p.m[2].load = p.m[3].load = 100;
    int32_t before[MAXB];
    memcpy(before, p.owner, sizeof(before));
    int64_t b = asg_load_move(p.m, p.n, p.owner, p.nb, 0.25);
    assert_true(b >= 0);
    assert_int_equal(before[b], 0);
    assert_int_not_equal(p.owner[b], 0);
    size_t diff = 0;
    for (uint32_t k = 0; k < p.nb; k++)
        diff += p.owner[k] != before[k];
    assert_int_equal(diff, 1);
    assert_int_equal(asg_balance(p.m, p.n, p.owner, p.nb), 0);
    /* The giver is now below its quota: no second move until counts are level again. */
    assert_int_equal(asg_load_move(p.m, p.n, p.owner, p.nb, 0.25), -1);
    /* Even load: nothing moves. */
    pool_init(&p, 64, 4, &seed);
    for (size_t i = 0; i < 4; i++)
        p.m[i].load = 100 + (double)i;
    assert_int_equal(asg_load_move(p.m, p.n, p.owner, p.nb, 0.25), -1);
}

static void test_none_eligible(void **state)
{
    (void)state;
    uint32_t seed = 1;
    struct pool p;
    pool_init(&p, 16, 2, &seed);
    p.m[0].eligible = p.m[1].eligible = 0;
    asg_balance(p.m, p.n, p.owner, p.nb);
    for (uint32_t b = 0; b < p.nb; b++)
        assert_int_equal(p.owner[b], -1);
    p.m[1].eligible = 1;
    asg_balance(p.m, p.n, p.owner, p.nb);
    for (uint32_t b = 0; b < p.nb; b++)
        assert_int_equal(p.owner[b], 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_owned_once), cmocka_unit_test(test_join),
        cmocka_unit_test(test_leave),      cmocka_unit_test(test_sequence),
        cmocka_unit_test(test_load_move),  cmocka_unit_test(test_none_eligible),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
