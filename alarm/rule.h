/*
 * Alarm rules: what a rule file (JSON, schemas/alarm-rule.schema.json) says, parsed and
 * checked once, so evaluation only compares numbers. A bad rule is refused with a message
 * naming its origin (file) and the key; the other rules of the same file still load.
 */
#ifndef DSF_ALARM_RULE_H
#define DSF_ALARM_RULE_H

#include <regex.h>
#include <stddef.h>
#include <stdint.h>

enum rule_signal { RULE_METRIC, RULE_OFFLINE };
enum rule_op { OP_GT, OP_GE, OP_LT, OP_LE, OP_EQ, OP_NE };
enum rule_reducer { RED_LAST, RED_AVG, RED_MIN, RED_MAX, RED_SUM, RED_COUNT, RED_RATE, RED_PCT };
enum match_op { MATCH_EQ, MATCH_NE, MATCH_RE, MATCH_NRE };

/* regexec allocates inside the C library: the verdicts on recent tag values are kept, so a
 * steady stream (tag values repeat) runs no regex at all. */
#define MATCH_CACHE 256
struct match_memo {
    uint64_t hash;
    char *value; /* NULL: empty slot */
    int ok;
};

struct rule_matcher {
    char *tag, *value;
    enum match_op op;
    regex_t re;              /* for =~ and !~, anchored: the whole value must match */
    struct match_memo *memo; /* MATCH_CACHE slots, allocated with the first regex match */
};

struct rule_level {
    int set;
    double threshold, reset; /* reset == threshold without hysteresis */
};

struct rule_kv {
    char *key, *val; /* val may hold {{templates}} */
};

struct rule {
    char *name;
    char *origin; /* the file it came from */
    char *source; /* the rule's JSON, compact, as the API returns it */
    enum rule_signal signal;
    char *measurement, *field;
    struct rule_matcher *matchers;
    size_t nmatchers;
    char **group_by; /* tag keys after ns and mci (default: vm) */
    size_t ngroup;
    int64_t window_ms;
    enum rule_reducer reduce;
    double pct; /* RED_PCT: 0 < pct <= 100 */
    enum rule_op op;
    struct rule_level warn, crit;
    int64_t for_ms, keep_firing_ms, nodata_ms;
    char *severity; /* the offline signal's severity */
    struct rule_kv *labels, *annotations;
    size_t nlabels, nannotations;
};

#define RULE_NAME_MAX 128
/* group_by tag keys a rule may list: an alert's labels are bounded (alarm/events.c), and a
 * series key this wide is already a mistake. */
#define RULE_GROUP_BY_MAX 32

/* Parses one rule object (jansson json_t *). NULL with "origin: rule 'x': key 'k': why". */
struct rule *rule_from_json(const void *json, const char *origin, char *err, size_t errlen);
/* Parses a rule file's text: one rule object or an array of them. Good rules go to out (grown
 * with realloc), each bad one to on_error. Returns the number of bad rules (the whole file
 * counts as one when it is not JSON). */
size_t rule_parse_text(const char *text, size_t len, const char *origin, struct rule ***out,
                       size_t *n, void (*on_error)(void *arg, const char *msg), void *arg);
void rule_free(struct rule *r);

const char *rule_op_name(enum rule_op op);
/* Does value cross this level: against the threshold, or, once active (held), the reset. */
int rule_level_active(const struct rule *r, const struct rule_level *l, double v, int held);

/* Renders a template: {{name}} replaced by lookup(name); names the rule checked at load. */
struct dsf_buf;
void rule_render(struct dsf_buf *out, const char *tmpl,
                 const char *(*lookup)(void *arg, const char *name, char *tmp, size_t cap),
                 void *arg);

#endif
