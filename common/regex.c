#include "common/regex.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct scan {
    const char *p; /* next character */
    int depth, repeats;
    char why[160]; /* set when refused */
};

/* A repetition operator at s->p: "*", "+", "?", "{n}", "{n,}" or "{n,m}". */
struct repeat {
    size_t len;
    long count;    /* the largest number written, 0 for the one-character operators */
    double copies; /* how many times glibc copies the operand */
    int multi;     /* may match the operand more than once */
};

static int refuse(struct scan *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int refuse(struct scan *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->why, sizeof(s->why), fmt, ap);
    va_end(ap);
    return -1;
}

/* "{" not followed by a well-formed count is an ordinary character to us; regcomp decides. */
static int parse_braces(const char *p, struct repeat *r)
{
    char *end;
    long n = strtol(p + 1, &end, 10), m = n;
    if (end == p + 1 || n < 0)
        return 0;
    int unbounded = 0;
    if (*end == ',') {
        const char *start = end + 1;
        if (*start == '}') {
            unbounded = 1;
            end = (char *)start;
        } else {
            m = strtol(start, &end, 10);
            if (end == start || m < n)
                return 0;
        }
    }
    if (*end != '}')
        return 0;
    r->len = (size_t)(end + 1 - p);
    r->count = m;
    r->copies = m > 1 ? (double)m : 1;
    r->multi = unbounded || m > 1;
    return 1;
}

static int parse_repeat(const char *p, struct repeat *r)
{
    switch (*p) {
    case '*':
        *r = (struct repeat){1, 0, 1, 1};
        return 1;
    case '+':
        *r = (struct repeat){1, 0, 2, 1};
        return 1;
    case '?':
        *r = (struct repeat){1, 0, 1, 0};
        return 1;
    case '{':
        return parse_braces(p, r);
    }
    return 0;
}

/* Past a bracket expression whose "[" was consumed: "]" first is a member, and so are the
 * classes "[:alpha:]", "[=a=]", "[.-.]". */
static void skip_bracket(struct scan *s)
{
    const char *q = s->p;
    if (*q == '^')
        q++;
    if (*q == ']')
        q++;
    while (*q && *q != ']') {
        if (*q == '[' && (q[1] == ':' || q[1] == '=' || q[1] == '.')) {
            const char *close = strchr(q + 2, q[1]);
            q = close && close[1] == ']' ? close + 2 : q + 1;
        } else {
            q++;
        }
    }
    s->p = *q ? q + 1 : q;
}

/* Applies the operator at s->p to the last element (atom nodes, atom_multi when it repeats
 * inside); adds the copies to *total. 0, or -1 when refused. */
static int apply_repeat(struct scan *s, const struct repeat *r, double atom, int atom_multi,
                        int after_repeat, double *total)
{
    if (after_repeat)
        return refuse(s, "stacked repetition operators at \"%.*s\" (one per element)", (int)r->len,
                      s->p);
    if (++s->repeats > DSF_REGEX_MAX_REPEATS)
        return refuse(s, "more than %d repetition operators", DSF_REGEX_MAX_REPEATS);
    if (r->count > DSF_REGEX_MAX_COUNT)
        return refuse(s, "repetition count %ld over %d", r->count, DSF_REGEX_MAX_COUNT);
    if (r->multi && atom_multi)
        return refuse(s, "a repeated group that repeats inside, like (a+)+ (nesting limit 1)");
    *total += atom * (r->copies - 1);
    return 0;
}

/* The alternatives up to ")" or the end: their size in nodes once repetitions are copied
 * out, or -1 when refused. *multi is set when something inside may repeat more than once. */
static double scan_group(struct scan *s, int *multi)
{
    double total = 0, atom = 0; /* atom: size of the last element, 0 when there is none */
    int atom_multi = 0, after_repeat = 0;
    while (*s->p && *s->p != ')') {
        struct repeat r;
        if (parse_repeat(s->p, &r)) {
            if (atom > 0 && apply_repeat(s, &r, atom, atom_multi, after_repeat, &total))
                return -1;
            *multi |= r.multi;
            after_repeat = 1;
            s->p += r.len;
        } else {
            char c = *s->p++;
            after_repeat = atom_multi = 0;
            atom = 1;
            if (c == '(') {
                if (++s->depth > DSF_REGEX_MAX_DEPTH)
                    return refuse(s, "groups nested deeper than %d", DSF_REGEX_MAX_DEPTH);
                atom = scan_group(s, &atom_multi);
                if (atom < 0)
                    return -1;
                if (atom == 0)
                    atom = 1; /* "()" is still an element an operator repeats */
                if (*s->p == ')')
                    s->p++;
                s->depth--;
                *multi |= atom_multi;
            } else if (c == '|') {
                atom = 0;
            } else if (c == '[') {
                skip_bracket(s);
            } else if (c == '\\' && *s->p) {
                s->p++;
            }
            total += atom;
        }
        if (total > DSF_REGEX_MAX_NODES)
            return refuse(s, "expands to more than %d elements", DSF_REGEX_MAX_NODES);
    }
    return total;
}

/* 0, or -1 with the reason in s->why. */
static int check_cost(struct scan *s, const char *pattern)
{
    size_t len = strlen(pattern);
    if (len > DSF_REGEX_MAX_LENGTH)
        return refuse(s, "longer than %d characters (%zu)", DSF_REGEX_MAX_LENGTH, len);
    s->p = pattern;
    double total = 0;
    while (*s->p) {
        int multi = 0;
        double part = scan_group(s, &multi);
        if (part < 0)
            return -1;
        total += part;
        if (total > DSF_REGEX_MAX_NODES)
            return refuse(s, "expands to more than %d elements", DSF_REGEX_MAX_NODES);
        /* glibc takes a stray ')' as a literal, but it would close the "^(" of an anchored
         * pattern and let what follows repeat the whole of it: refused, like RE2 does. */
        if (*s->p == ')')
            return refuse(s, "a ')' without its '('");
    }
    return 0;
}

int dsf_regex_compile(regex_t *re, const char *pattern, int flags, char *err, size_t errlen)
{
    /* The pattern as the error shows it: long ones cut, the limit is what matters. */
    const int shown = 64;
    const char *more = strlen(pattern) > (size_t)shown ? "..." : "";
    struct scan s = {0};
    if (check_cost(&s, pattern)) {
        snprintf(err, errlen, "regular expression \"%.*s%s\" refused: %s", shown, pattern, more,
                 s.why);
        return DSF_REGEX_REFUSED;
    }
    char *text = NULL;
    if (flags & DSF_REGEX_ANCHORED) {
        size_t n = strlen(pattern) + sizeof("^()$");
        if (!(text = malloc(n))) {
            snprintf(err, errlen, "out of memory");
            return DSF_REGEX_REFUSED;
        }
        snprintf(text, n, "^(%s)$", pattern);
    }
    int rc = regcomp(re, text ? text : pattern, REG_EXTENDED | REG_NOSUB);
    free(text);
    if (rc) {
        char why[128];
        regerror(rc, re, why, sizeof(why));
        snprintf(err, errlen, "bad regular expression \"%.*s%s\": %s", shown, pattern, more, why);
        return DSF_REGEX_INVALID;
    }
    return 0;
}
