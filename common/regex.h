/*
 * The one way a user-supplied regular expression (alarm rule and notifier matchers, procstat
 * patterns) is compiled: POSIX extended, after a check of what it would cost. glibc's regcomp
 * copies a repeated expression once per repetition ("x{100}" is 100 copies, "+" doubles it)
 * and nested repetitions multiply, so a pattern of a few bytes can take gigabytes to compile
 * or match. Like RE2 (Prometheus' and Alertmanager's engine) the pattern is refused before
 * that, with an error naming the pattern and the limit it passes.
 */
#ifndef DSF_REGEX_H
#define DSF_REGEX_H

#include <regex.h>
#include <stddef.h>

#define DSF_REGEX_MAX_LENGTH 1024 /* characters of the pattern */
#define DSF_REGEX_MAX_DEPTH 16    /* groups inside groups */
#define DSF_REGEX_MAX_COUNT 100   /* n and m of {n,m} */
#define DSF_REGEX_MAX_REPEATS 32  /* repetition operators (*, +, ?, {n,m}) in the pattern */
#define DSF_REGEX_MAX_NODES 10000 /* pattern elements once the repetitions are copied out */

/* Flags for dsf_regex_compile. */
#define DSF_REGEX_ANCHORED 1 /* match the whole string: compiled as ^(pattern)$ */

#define DSF_REGEX_REFUSED (-1) /* within no limit: err names the pattern and the limit */
#define DSF_REGEX_INVALID (-2) /* not a regular expression: err has regcomp's reason */

/* Compiles pattern with REG_EXTENDED | REG_NOSUB into re: 0, or DSF_REGEX_REFUSED or
 * DSF_REGEX_INVALID with the reason in err (nothing to regfree then). Refused: a pattern
 * longer than DSF_REGEX_MAX_LENGTH, groups nested deeper than DSF_REGEX_MAX_DEPTH, a count
 * over DSF_REGEX_MAX_COUNT, more than DSF_REGEX_MAX_REPEATS repetition operators, stacked
 * operators ("a++", "a*{2}"), a repeated group that itself repeats ("(a+)+", "(a{9}){9}"),
 * or more than DSF_REGEX_MAX_NODES elements after expansion. */
int dsf_regex_compile(regex_t *re, const char *pattern, int flags, char *err, size_t errlen);

#endif
