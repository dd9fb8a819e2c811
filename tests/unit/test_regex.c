/*
 * The cost guard every user-supplied regular expression goes through: what real tag, label
 * and process patterns look like compiles and matches; what would make glibc's regcomp take
 * exponential memory is refused with the pattern and the limit in the message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/regex.h"

static void accepted(const char *pattern, int flags, const char *match, const char *no_match)
{
    regex_t re;
    char err[512] = "";
    int rc = dsf_regex_compile(&re, pattern, flags, err, sizeof(err));
    if (rc)
        fail_msg("\"%s\" refused: %s", pattern, err);
    if (match && regexec(&re, match, 0, NULL, 0) != 0)
        fail_msg("\"%s\" does not match \"%s\"", pattern, match);
    if (no_match && regexec(&re, no_match, 0, NULL, 0) == 0)
        fail_msg("\"%s\" matches \"%s\"", pattern, no_match);
    regfree(&re);
}

/* Refused with rc, and the message holds each of the wanted texts. */
static void refused(const char *pattern, int rc, const char *want1, const char *want2)
{
    regex_t re;
    char err[512] = "";
    assert_int_equal(dsf_regex_compile(&re, pattern, 0, err, sizeof(err)), rc);
    if (!strstr(err, want1) || (want2 && !strstr(err, want2)))
        fail_msg("\"%s\": message \"%s\" lacks \"%s\" or \"%s\"", pattern, err, want1,
                 want2 ? want2 : "");
}

static void real_patterns_compile_and_match(void **state)
{
    (void)state;
    accepted("/|/data.*", DSF_REGEX_ANCHORED, "/data/x", "/srv");
    accepted("crit|critical", DSF_REGEX_ANCHORED, "critical", "crit2");
    accepted("crit", DSF_REGEX_ANCHORED, "crit", "critical"); /* anchored: whole value */
    accepted("crit", 0, "critical", "warn");                  /* unanchored: substring */
    accepted("[0-9]{3}-[a-z+*]{2,4}\\+?", DSF_REGEX_ANCHORED, "123-ab+", "12-ab");
    accepted("^(nginx|httpd)( .*)?$", 0, "nginx -g daemon", "nginxd");
    accepted("web(-[0-9]+)?", DSF_REGEX_ANCHORED, "web-12", "web-");       /* ? over a + */
    accepted("(ab?)+", DSF_REGEX_ANCHORED, "abaab", "b");                  /* + over a ? */
    accepted("[[:alpha:]]+[]x]{1,100}", DSF_REGEX_ANCHORED, "ab]]x", "1"); /* brackets */
}

static void costly_patterns_are_refused_naming_the_limit(void **state)
{
    (void)state;
    refused("a+++++", DSF_REGEX_REFUSED, "\"a+++++\" refused", "stacked");
    refused("a*{2}", DSF_REGEX_REFUSED, "stacked", NULL);
    refused("(a+)+", DSF_REGEX_REFUSED, "\"(a+)+\" refused", "repeated group that repeats");
    refused("(x*)*y", DSF_REGEX_REFUSED, "repeated group that repeats", NULL);
    refused("((a{50})b){50}", DSF_REGEX_REFUSED, "repeated group that repeats", NULL);
    refused("a{1000}", DSF_REGEX_REFUSED, "repetition count 1000 over 100", NULL);
    /* A stray ')' would close the "^(" of an anchored pattern, and what follows would
     * repeat the whole of it (found by fuzzing the notifier's matchers). */
    refused("x)+++++++++++++++++y) z)(", DSF_REGEX_REFUSED, "a ')' without its '('", NULL);
    refused("a)b", DSF_REGEX_REFUSED, "without its", NULL);
    /* An empty group is an element too: "()" followed by stacked operators made glibc's
     * regcomp recurse until the stack overflowed. */
    refused("()++++++++++++++++++++++", DSF_REGEX_REFUSED, "stacked", NULL);
    refused("(()+)+", DSF_REGEX_REFUSED, "repeated group that repeats", NULL);
    refused("a{1,99999999999999999999}", DSF_REGEX_REFUSED, "over 100", NULL);
    char deep[64] = "", many[256] = "", wide[512] = "", llong[1100];
    for (int i = 0; i < 17; i++)
        strcat(deep, "(");
    strcat(deep, "a");
    for (int i = 0; i < 17; i++)
        strcat(deep, ")");
    refused(deep, DSF_REGEX_REFUSED, "nested deeper than 16", NULL);
    for (int i = 0; i < 33; i++)
        strcat(many, "a*");
    refused(many, DSF_REGEX_REFUSED, "more than 32 repetition operators", NULL);
    for (int i = 0; i < 26; i++)
        strcat(wide, "(abcd){100}"); /* 26 x 100 copies of 4 elements */
    refused(wide, DSF_REGEX_REFUSED, "expands to more than 10000 elements", NULL);
    memset(llong, 'a', 1025);
    llong[1025] = '\0';
    refused(llong, DSF_REGEX_REFUSED, "longer than 1024 characters", "aaaa...\" refused");
}

static void invalid_patterns_say_so(void **state)
{
    (void)state;
    refused("(", DSF_REGEX_INVALID, "bad regular expression \"(\"", NULL);
    refused("/data[0-9", DSF_REGEX_INVALID, "bad regular expression", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(real_patterns_compile_and_match),
        cmocka_unit_test(costly_patterns_are_refused_naming_the_limit),
        cmocka_unit_test(invalid_patterns_say_so),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
