/* The rules directory: every *.json file in name order, loaded as a whole into the engine. */
#define DSF_MODULE "rules"
#include "alarm/alarm.h"
#include "common/file.h"
#include "common/log.h"
#include "common/loop.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct loading {
    struct alarm *a;
    char **errors;
    size_t nerrors;
};

static void note_error(void *arg, const char *msg)
{
    struct loading *l = arg;
    log_error("rule rejected: %s", msg);
    char **grown = realloc(l->errors, (l->nerrors + 1) * sizeof(char *));
    if (!grown)
        return;
    l->errors = grown;
    l->errors[l->nerrors++] = strdup(msg);
}

static int is_rule_file(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return d->d_name[0] != '.' && n > 5 && strcmp(d->d_name + n - 5, ".json") == 0;
}

/* Later files lose: a name already taken is refused, naming both files. */
static size_t drop_duplicates(struct rule **rules, size_t n, struct loading *l)
{
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        const struct rule *dup = NULL;
        for (size_t j = 0; j < kept && !dup; j++)
            if (strcmp(rules[j]->name, rules[i]->name) == 0)
                dup = rules[j];
        if (dup) {
            char msg[512];
            snprintf(msg, sizeof(msg), "%s: rule '%s': key 'name': already defined in %s",
                     rules[i]->origin, rules[i]->name, dup->origin);
            note_error(l, msg);
            rule_free(rules[i]);
            continue;
        }
        rules[kept++] = rules[i];
    }
    return kept;
}

/* rules.max: the rules past it (in file order) are refused, so a reload cannot hold more
 * than the API lets in. */
static size_t drop_beyond_max(struct rule **rules, size_t n, size_t max, struct loading *l)
{
    for (size_t i = max; i < n; i++) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s: rule '%s': refused: rules.max (%zu) reached",
                 rules[i]->origin, rules[i]->name, max);
        note_error(l, msg);
        rule_free(rules[i]);
    }
    return n < max ? n : max;
}

int alarm_load_rules(struct alarm *a)
{
    struct dirent **names;
    int nfiles = scandir(a->cfg.rules_dir, &names, is_rule_file, alphasort);
    if (nfiles < 0) {
        log_error("rules.dir %s: %s (the rules stay as they were)", a->cfg.rules_dir,
                  strerror(errno));
        dsf_count(&a->stats.reload_failures, 1);
        return -1;
    }
    struct loading l = {a, NULL, 0};
    struct rule **rules = NULL;
    size_t n = 0, bad = 0;
    for (int i = 0; i < nfiles; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", a->cfg.rules_dir, names[i]->d_name);
        free(names[i]);
        size_t len;
        char *text = dsf_read_file(path, &len);
        if (!text) {
            char msg[4200];
            snprintf(msg, sizeof(msg), "%s: cannot read: %s", path, strerror(errno));
            note_error(&l, msg);
            bad++;
            continue;
        }
        bad += rule_parse_text(text, len, path, &rules, &n, note_error, &l);
        free(text);
    }
    free(names);
    size_t kept = drop_duplicates(rules, n, &l);
    kept = drop_beyond_max(rules, kept, (size_t)a->cfg.rules_max, &l);
    bad += n - kept;
    engine_set_rules(a->engine, rules, kept, dsf_now_ns());
    for (size_t i = 0; i < a->nrule_errors; i++)
        free(a->rule_errors[i]);
    free(a->rule_errors);
    a->rule_errors = l.errors;
    a->nrule_errors = l.nerrors;
    a->stats.rules_loaded = kept;
    dsf_count(&a->stats.rules_rejected, bad);
    dsf_count(&a->stats.reloads, 1);
    log_info("%zu rules loaded from %s, %zu rejected", kept, a->cfg.rules_dir, bad);
    alarm_state_dirty(a);
    return 0;
}

int alarm_write_rule_file(struct alarm *a, const char *name, const char *text, size_t len,
                          char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s.json", a->cfg.rules_dir, name);
    if (!text) {
        if (unlink(path) == 0)
            return 0;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char file[RULE_NAME_MAX + 8];
    snprintf(file, sizeof(file), "%s.json", name);
    return dsf_write_file_atomic(a->cfg.rules_dir, file, text, len, err, errlen);
}
