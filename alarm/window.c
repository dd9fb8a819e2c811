#include "alarm/window.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int grow(struct window *w)
{
    uint32_t cap = w->cap ? w->cap * 2 : 4;
    if (cap > WINDOW_MAX_SAMPLES)
        return -1;
    struct sample *s = malloc(cap * sizeof(*s));
    if (!s)
        return -1;
    for (uint32_t i = 0; i < w->n; i++)
        s[i] = w->s[(w->head + i) % w->cap];
    free(w->s);
    w->s = s;
    w->head = 0;
    w->cap = cap;
    return 0;
}

uint32_t window_push(struct window *w, int64_t ts, double v, int64_t span_ns)
{
    uint32_t dropped = 0;
    if (span_ns <= 0) {
        /* Reducer "last" without a window: one slot. */
        if (!w->cap && grow(w))
            return 1;
        w->s[0] = (struct sample){ts, v};
        w->head = 0;
        w->n = 1;
        return 0;
    }
    while (w->n && w->s[w->head].ts <= ts - span_ns) {
        w->head = (w->head + 1) % w->cap;
        w->n--;
    }
    if (w->n == w->cap && grow(w)) {
        if (!w->cap)
            return 1;
        w->head = (w->head + 1) % w->cap; /* full at the cap: the oldest goes */
        w->n--;
        dropped = 1;
    }
    w->s[(w->head + w->n) % w->cap] = (struct sample){ts, v};
    w->n++;
    return dropped;
}

static void swap(double *a, double *b)
{
    double t = *a;
    *a = *b;
    *b = t;
}

/* Hoare's selection: the k-th smallest of a[0..n) in expected linear time. */
static double select_kth(double *a, uint32_t n, uint32_t k)
{
    uint32_t lo = 0, hi = n - 1;
    while (lo < hi) {
        double pivot = a[lo + (hi - lo) / 2];
        uint32_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot)
                i++;
            while (a[j] > pivot)
                j--;
            if (i <= j) {
                swap(&a[i], &a[j]);
                i++;
                if (j == 0)
                    break;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            break;
    }
    return a[k];
}

int window_reduce(const struct window *w, enum rule_reducer red, double pct, double *scratch,
                  double *out)
{
    if (!w->n)
        return -1;
#define AT(i) (w->s[(w->head + (i)) % w->cap])
    double acc;
    switch (red) {
    case RED_LAST:
        *out = AT(w->n - 1).v;
        return 0;
    case RED_COUNT:
        *out = w->n;
        return 0;
    case RED_SUM:
    case RED_AVG:
        acc = 0;
        for (uint32_t i = 0; i < w->n; i++)
            acc += AT(i).v;
        *out = red == RED_SUM ? acc : acc / w->n;
        return 0;
    case RED_MIN:
    case RED_MAX:
        acc = AT(0).v;
        for (uint32_t i = 1; i < w->n; i++)
            acc = red == RED_MIN ? fmin(acc, AT(i).v) : fmax(acc, AT(i).v);
        *out = acc;
        return 0;
    case RED_RATE: {
        if (w->n < 2)
            return -1;
        /* A counter that went down was reset: count its new value as the increase. */
        acc = 0;
        for (uint32_t i = 1; i < w->n; i++) {
            double d = AT(i).v - AT(i - 1).v;
            acc += d >= 0 ? d : AT(i).v;
        }
        int64_t dt = AT(w->n - 1).ts - AT(0).ts;
        if (dt <= 0)
            return -1;
        *out = acc / ((double)dt / 1e9);
        return 0;
    }
    case RED_PCT: {
        for (uint32_t i = 0; i < w->n; i++)
            scratch[i] = AT(i).v;
        /* Nearest rank, as Prometheus' quantile_over_time rounds for exact samples. */
        double rank = ceil(pct / 100.0 * w->n);
        uint32_t k = rank < 1 ? 0 : (uint32_t)rank - 1;
        *out = select_kth(scratch, w->n, k);
        return 0;
    }
    }
#undef AT
    return -1;
}

void window_free(struct window *w)
{
    free(w->s);
    memset(w, 0, sizeof(*w));
}
