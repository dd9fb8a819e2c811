/* The rule index: (measurement, field) -> the rules selecting it, rebuilt at each reload.
 * Its lookup is on the per-sample path, in eval.c. */
#include "alarm/eval_impl.h"

#include <stdlib.h>
#include <string.h>

static uint64_t index_hash(const char *m, size_t mn, const char *f, size_t fn)
{
    return eval_mix(eval_fnv(eval_fnv(eval_fnv(EVAL_FNV_OFFSET, m, mn), "", 1), f, fn));
}

void eval_index_free(struct engine *e)
{
    for (size_t i = 0; i < e->index_cap; i++)
        free(e->index[i].rules);
    free(e->index);
    e->index = NULL;
    e->index_cap = 0;
    free(e->offline_rules);
    e->offline_rules = NULL;
    e->noffline = 0;
}

void eval_index_build(struct engine *e)
{
    size_t cap = 16;
    while (cap < e->nrules * 2 + 2)
        cap *= 2;
    e->index = calloc(cap, sizeof(*e->index));
    e->index_cap = cap;
    e->offline_rules = calloc(e->nrules + 1, sizeof(uint32_t));
    for (uint32_t r = 0; r < e->nrules; r++) {
        const struct rule *ru = e->rules[r];
        if (ru->signal == RULE_OFFLINE) {
            e->offline_rules[e->noffline++] = r;
            continue;
        }
        uint64_t h =
            index_hash(ru->measurement, strlen(ru->measurement), ru->field, strlen(ru->field));
        size_t i = h & (cap - 1);
        while (e->index[i].rules &&
               (e->index[i].hash != h || strcmp(e->index[i].measurement, ru->measurement) ||
                strcmp(e->index[i].field, ru->field)))
            i = (i + 1) & (cap - 1);
        struct index_entry *x = &e->index[i];
        uint32_t *grown = realloc(x->rules, (x->n + 1) * sizeof(uint32_t));
        if (!grown)
            continue;
        x->rules = grown;
        x->rules[x->n++] = r;
        x->hash = h;
        x->measurement = ru->measurement;
        x->field = ru->field;
    }
}
