/* libFuzzer target: the policy parser, matching with whatever it accepted, and the
 * CB-Tumblebug import on the same bytes. Any input must load or be refused with a message
 * naming the origin and a key, never crash or leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control/policy.h"

static void check_refusal(const char *err, const char *origin)
{
    if (strncmp(err, origin, strlen(origin)) != 0)
        abort(); /* every refusal names where the policy came from */
    if (!strstr(err, "key '") && !strstr(err, "not JSON") && !strstr(err, "JSON object") &&
        !strstr(err, "out of memory"))
        abort(); /* and what is wrong */
}

static const char *label(void *arg, const char *name)
{
    return strcmp(name, "mci") == 0 ? "web" : name;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct policy p;
    char err[512] = "";
    if (policy_parse((const char *)data, size, "fuzz.json", &p, err, sizeof(err)) == 0) {
        if (p.nsteps < 1 || p.nsteps > POLICY_MAX_STEPS || !p.name || !p.rule || !p.state)
            abort();
        policy_matches(&p, p.rule, p.state, p.severity, label, NULL);
        policy_matches(&p, "agent_down", "firing", "crit", NULL, NULL);
        policy_free(&p);
    } else {
        check_refusal(err, "fuzz.json: ");
    }
    err[0] = '\0';
    if (policy_from_tumblebug((const char *)data, size, &p, err, sizeof(err)) == 0) {
        if (p.nsteps != 1 || !p.rule)
            abort();
        policy_free(&p);
    } else {
        check_refusal(err, "tumblebug: ");
    }
    return 0;
}
