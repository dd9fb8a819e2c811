#include "common/rfc3339.h"

#include <stddef.h>

/* n decimal digits at *p into *v; advances *p. */
static int digits(const char **p, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (**p < '0' || **p > '9')
            return -1;
        *v = *v * 10 + (**p - '0');
    }
    return 0;
}

static int expect(const char **p, char c, char alt)
{
    if (**p != c && **p != alt)
        return -1;
    (*p)++;
    return 0;
}

static int month_days(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return days[m - 1] + (m == 2 && leap);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil):
 * exact for every year, where timegm depends on time_t and the C library. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int parse_fraction(const char **p, int64_t *frac)
{
    int64_t scale = 100000000;
    const char *start = *p;
    *frac = 0;
    for (; **p >= '0' && **p <= '9'; (*p)++, scale /= 10)
        *frac += (**p - '0') * scale;
    return *p == start ? -1 : 0;
}

static int parse_offset(const char **p, int64_t *off)
{
    int hh, mm;
    char sign = **p;
    *off = 0;
    if (sign == 'Z' || sign == 'z') {
        (*p)++;
        return 0;
    }
    if (sign != '+' && sign != '-')
        return -1;
    (*p)++;
    if (digits(p, 2, &hh) || expect(p, ':', ':') || digits(p, 2, &mm) || hh > 23 || mm > 59)
        return -1;
    *off = (int64_t)(hh * 3600 + mm * 60) * (sign == '+' ? 1 : -1);
    return 0;
}

int dsf_rfc3339_parse(const char *s, int64_t *ns)
{
    const char *p = s;
    int y, mo, d, h, mi, sec;
    int64_t frac = 0, off, secs, out;
    if (digits(&p, 4, &y) || expect(&p, '-', '-') || digits(&p, 2, &mo) || expect(&p, '-', '-') ||
        digits(&p, 2, &d) || expect(&p, 'T', 't') || digits(&p, 2, &h) || expect(&p, ':', ':') ||
        digits(&p, 2, &mi) || expect(&p, ':', ':') || digits(&p, 2, &sec))
        return -1;
    if (*p == '.' && (p++, parse_fraction(&p, &frac)))
        return -1;
    if (parse_offset(&p, &off) || *p)
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > month_days(y, mo) || h > 23 || mi > 59 || sec > 59)
        return -1;
    if (y == 1 && mo == 1 && d == 1 && h == 0 && mi == 0 && sec == 0 && frac == 0 && off == 0) {
        *ns = 0;
        return 0;
    }
    secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off;
    if (__builtin_mul_overflow(secs, (int64_t)1000000000, &out) ||
        __builtin_add_overflow(out, frac, &out))
        return -1;
    *ns = out;
    return 0;
}
