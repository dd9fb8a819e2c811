/* Healing policies: one JSON file each in policies.dir (schemas/policy.schema.json) maps an
 * alarm (rule, state, severity, group labels) to a chain of healing steps tried in order.
 * This is parsing and matching only; running the steps is elsewhere.
 *
 * Every refusal names the origin (the file), the key path ("steps[1].region") and the value:
 *   "deploy/policies/x.json: key 'steps[1].region': expected a non-empty string (got 5)"
 * Unknown keys are refused, with "did you mean 'x'?" when a known key is one or two edits
 * away.
 *
 * CB-Tumblebug import (policy_from_tumblebug): Tumblebug's MCI auto-control policy is
 *   {"Name": "mci1", "policy": [{"autoCondition": {"metric": "cpu", "operator": ">=",
 *    "operand": "80", "evaluationPeriod": "10"}, "autoAction": {"actionType": "ScaleOut",
 *    "vmDynamicReq": {...}, "postCommand": {...}, "placementAlgo": "random"},
 *    "status": "Ready"}], "description": "..."}
 * (MciPolicyInfo; MciPolicyReq is the same without Name/Id; a bare Policy object is also
 * taken). It becomes:
 *   name           "tumblebug-<mci or 'mci'>-<metric>-<scale_out|scale_in>"
 *   match.rule     the condition's metric (an alarm rule of that name holds the threshold:
 *                  Tumblebug evaluates operator/operand itself, Damselfly's alarm engine does)
 *   match.state    "firing"; match.labels {"mci": Name} when Name (or Id) is given
 *   steps          ScaleOut -> [{"action": "scale_out", "by": 1}],
 *                  ScaleIn  -> [{"action": "scale_in", "by": 1}]
 *   description    "imported from CB-Tumblebug: <metric> <operator> <operand> over
 *                  <evaluationPeriod> evaluations", so the threshold to put in the alarm rule
 *                  is kept in view
 *   the rest       the defaults below
 * vmDynamicReq, postCommand, placementAlgo, status and evaluationValue are Tumblebug's own
 * run-time details and are not imported. Exactly one policy entry is imported; a list of
 * several is refused (import them one by one), as is any other actionType or operator. */
#ifndef DSF_CONTROL_POLICY_H
#define DSF_CONTROL_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define POLICY_MAX_STEPS 10
#define POLICY_MAX_LABELS 16
/* Defaults when the key is absent. */
#define POLICY_DEFAULT_VERIFY_TIMEOUT_MS INT64_C(120000) /* 2m */
#define POLICY_DEFAULT_COOLDOWN_MS INT64_C(600000)       /* 10m */
#define POLICY_DEFAULT_HOLD_MS INT64_C(3600000)          /* 1h */

enum policy_action {
    POLICY_SUSPEND,
    POLICY_RESUME,
    POLICY_REBOOT,
    POLICY_MIGRATE,   /* region */
    POLICY_SCALE_OUT, /* by, min, max */
    POLICY_SCALE_IN,  /* by, min, max */
    POLICY_K8S_CORDON,
    POLICY_K8S_DRAIN,
    POLICY_K8S_SCALE, /* replicas */
    POLICY_NOTIFY,
    POLICY_WEBHOOK, /* url */
};

struct policy_step {
    enum policy_action action;
    char *region; /* migrate: required */
    char *url;    /* webhook: required, http or https */
    int by;       /* scale_out/scale_in: VMs per step, 1..1000, default 1 */
    int min, max; /* scale_out/scale_in: group size bounds; -1 when not given */
    int replicas; /* k8s_scale: required, 0..100000; -1 otherwise */
};

struct policy_label {
    char *name, *value;
};

struct policy {
    char *name;        /* unique across the directory */
    char *origin;      /* the file (or what the caller passed) */
    char *description; /* NULL when not given */
    /* match: rule is required; state defaults to "firing"; severity NULL matches any. */
    char *rule, *state, *severity;
    struct policy_label labels[POLICY_MAX_LABELS]; /* all must equal the alarm's */
    size_t nlabels;
    struct policy_step steps[POLICY_MAX_STEPS]; /* 1..POLICY_MAX_STEPS, as written */
    size_t nsteps;
    int64_t verify_timeout_ms, cooldown_ms, hold_ms;
    int dry_run, approval; /* 0 or 1 */
};

struct policy_set {
    struct policy *policies; /* in file name order */
    size_t n;
};

/* Parses one policy from text[0..len). 0, or -1 with err naming origin, key path and value;
 * out is then empty (policy_free on it is harmless either way). */
int policy_parse(const char *text, size_t len, const char *origin, struct policy *out, char *err,
                 size_t errlen);
void policy_free(struct policy *p);

/* 1 when an alarm of rule/state/severity whose group label name has the value label(arg,
 * name) (NULL: no such label) is one this policy heals, else 0. label may be NULL when the
 * policy has no labels to check (then a policy with labels never matches). */
int policy_matches(const struct policy *p, const char *rule, const char *state,
                   const char *severity, const char *(*label)(void *arg, const char *name),
                   void *arg);

/* Every *.json file of dir (not starting with '.'), in name order. 0, or -1 with err naming
 * the first bad file (or a name defined twice, naming both files); out is then empty. An
 * empty directory loads as no policies. */
int policy_load_dir(const char *dir, struct policy_set *out, char *err, size_t errlen);
void policy_set_free(struct policy_set *s);

/* Imports CB-Tumblebug's auto-control policy JSON (see the mapping above); origin in errors
 * is "tumblebug". 0, or -1 with err. */
int policy_from_tumblebug(const char *json, size_t len, struct policy *out, char *err,
                          size_t errlen);

/* The policy in the form of its file (a new reference): policy_parse of its text gives the
 * same policy back. */
json_t *policy_to_json(const struct policy *p);

/* "reboot", "scale_out", ...; the names the files use. */
const char *policy_action_name(enum policy_action a);

#endif
