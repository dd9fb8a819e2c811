/* A policy back to the JSON form of its file (schemas/policy.schema.json): what the API
 * writes for a policy it did not get as a file (CB-Tumblebug's import). */
#include "control/policy.h"

#include <stdio.h>

static json_t *duration(int64_t ms)
{
    char text[32];
    if (ms % 1000 == 0)
        snprintf(text, sizeof(text), "%llds", (long long)(ms / 1000));
    else
        snprintf(text, sizeof(text), "%lldms", (long long)ms);
    return json_string(text);
}

static json_t *step_json(const struct policy_step *s)
{
    json_t *o = json_pack("{s:s}", "action", policy_action_name(s->action));
    switch (s->action) {
    case POLICY_MIGRATE:
        json_object_set_new(o, "region", json_string(s->region));
        break;
    case POLICY_SCALE_OUT:
    case POLICY_SCALE_IN:
        json_object_set_new(o, "by", json_integer(s->by));
        if (s->min >= 0)
            json_object_set_new(o, "min", json_integer(s->min));
        if (s->max >= 0)
            json_object_set_new(o, "max", json_integer(s->max));
        break;
    case POLICY_K8S_SCALE:
        json_object_set_new(o, "replicas", json_integer(s->replicas));
        break;
    case POLICY_WEBHOOK:
        json_object_set_new(o, "url", json_string(s->url));
        break;
    default:
        break;
    }
    return o;
}

json_t *policy_to_json(const struct policy *p)
{
    json_t *match = json_pack("{s:s}", "rule", p->rule);
    if (p->state)
        json_object_set_new(match, "state", json_string(p->state));
    if (p->severity)
        json_object_set_new(match, "severity", json_string(p->severity));
    if (p->nlabels) {
        json_t *labels = json_object();
        for (size_t i = 0; i < p->nlabels; i++)
            json_object_set_new(labels, p->labels[i].name, json_string(p->labels[i].value));
        json_object_set_new(match, "labels", labels);
    }
    json_t *steps = json_array();
    for (size_t i = 0; i < p->nsteps; i++)
        json_array_append_new(steps, step_json(&p->steps[i]));
    json_t *o = json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:b, s:b}", "name", p->name, "match",
                          match, "steps", steps, "verify_timeout", duration(p->verify_timeout_ms),
                          "cooldown", duration(p->cooldown_ms), "hold", duration(p->hold_ms),
                          "dry_run", p->dry_run, "approval", p->approval);
    if (p->description)
        json_object_set_new(o, "description", json_string(p->description));
    return o;
}
