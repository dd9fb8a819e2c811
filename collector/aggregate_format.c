#include "collector/aggregate_impl.h"
#include "common/lp.h"
#include "common/point.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* Emitting formats a few numbers per window: printf's cost would exceed the folding's. */
static void put_u64(struct dsf_buf *out, uint64_t v, int neg)
{
    char tmp[24], *p = tmp + sizeof(tmp);
    do
        *--p = (char)('0' + v % 10);
    while (v /= 10);
    if (neg)
        *--p = '-';
    buf_put(out, p, (size_t)(tmp + sizeof(tmp) - p));
}

void agg_put_i64(struct dsf_buf *out, int64_t v)
{
    put_u64(out, v < 0 ? 0 - (uint64_t)v : (uint64_t)v, v < 0);
}

/* m * 10^-k in plain decimal, without trailing zeros. */
static void put_scaled(struct dsf_buf *out, uint64_t m, int k, int neg)
{
    char digits[24], text[64];
    int n = 0, w = 0;
    char *d = digits + sizeof(digits);
    do
        *--d = (char)('0' + m % 10), n++;
    while (m /= 10);
    memmove(digits, d, (size_t)n);
    if (neg)
        text[w++] = '-';
    if (k >= n) {
        text[w++] = '0';
        text[w++] = '.';
        for (int i = 0; i < k - n; i++)
            text[w++] = '0';
        memcpy(text + w, digits, (size_t)n), w += n;
    } else {
        memcpy(text + w, digits, (size_t)(n - k)), w += n - k;
        if (k) {
            text[w++] = '.';
            memcpy(text + w, digits + n - k, (size_t)k), w += k;
        }
    }
    if (k)
        while (text[w - 1] == '0')
            w--;
    if (text[w - 1] == '.')
        w--;
    buf_put(out, text, (size_t)w);
}

static const double pow10d[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* floor(log10(a)) for 1e-10 <= a < 1e15 from the binary exponent, without libm's log10. Near
 * a power of ten it may be one off: put_double checks its digits, so that costs nothing but
 * the slower path. */
static int decimal_exponent(double a)
{
    static const double p10[] = {1e-10, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2,
                                 1e-1,  1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,   1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
    uint64_t bits;
    memcpy(&bits, &a, sizeof(bits));
    int binary = (int)((bits >> 52) & 0x7ff) - 1023;
    int e = (binary * 1233) >> 12; /* 1233 / 4096 ~ log10(2), rounding down */
    if (e < -10)
        e = -10;
    if (e < 14 && a >= p10[e + 11])
        e++;
    return e;
}

/* A float that reads back exactly. 15 digits when they do: a parser reads m / 10^k (m below
 * 2^53, k up to 22) correctly rounded in one division, so the check is exact. Otherwise 17
 * digits, scaled in long double: its 64-bit mantissa keeps the error under 2^-64, so the
 * digits are within half an ulp of v. Values outside 1e-10..1e15 take lp_put_float. */
static void put_double(struct dsf_buf *out, double v)
{
    double a = fabs(v);
    if (v == 0) {
        buf_puts(out, signbit(v) ? "-0" : "0");
        return;
    }
    if (!(a >= 1e-10 && a < 1e15) || LDBL_MANT_DIG < 64) {
        lp_put_float(out, v);
        return;
    }
    int e = decimal_exponent(a), k = 14 - e;
    if (k >= 0 && k <= 22) {
        double m = nearbyint(a * pow10d[k]);
        if (m < 9007199254740992.0 && m / pow10d[k] == a) {
            put_scaled(out, (uint64_t)m, k, v < 0);
            return;
        }
    }
    static const long double pow10l[] = {1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,  1e7L,
                                         1e8L,  1e9L,  1e10L, 1e11L, 1e12L, 1e13L, 1e14L, 1e15L,
                                         1e16L, 1e17L, 1e18L, 1e19L, 1e20L, 1e21L, 1e22L, 1e23L,
                                         1e24L, 1e25L, 1e26L, 1e27L}; /* exact: 5^27 fits a 64-bit
                                                                         mantissa */
    for (int tries = 0; tries < 3; tries++) {
        k = 16 - e;
        if (k < 0 || k > 27)
            break;
        uint64_t m = (uint64_t)((long double)a * pow10l[k] + 0.5L); /* one rounding, 2^-64 */
        if (m >= 100000000000000000ULL)
            e++;
        else if (m < 10000000000000000ULL)
            e--;
        else {
            put_scaled(out, m, k, v < 0);
            return;
        }
    }
    lp_put_float(out, v);
}

void agg_put_value(struct dsf_buf *out, uint8_t type, union lp_value v)
{
    if (type == DSF_V_FLOAT) {
        put_double(out, v.f);
    } else if (type == DSF_V_INT) {
        agg_put_i64(out, v.i);
        buf_putc(out, 'i');
    } else if (type == DSF_V_UINT) {
        put_u64(out, v.u, 0);
        buf_putc(out, 'u');
    } else {
        buf_puts(out, v.b ? "true" : "false");
    }
}
