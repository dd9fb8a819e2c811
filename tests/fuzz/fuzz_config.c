/* libFuzzer target: the configuration loader, over the agent's real tables (every input's
 * section included). Any input must load or be refused with a message, never crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "common/config.h"

static struct dsf_cfg_section *sections(struct agent_config *cfg, void **options)
{
    size_t n = 0;
    while (dsf_inputs[n])
        n++;
    struct dsf_cfg_section *secs = calloc(n + 2, sizeof(*secs));
    secs[0] = (struct dsf_cfg_section){"", agent_config_keys, cfg, NULL};
    for (size_t i = 0; i < n; i++) {
        static char prefixes[32][64];
        snprintf(prefixes[i], sizeof(prefixes[i]), "inputs.%s", dsf_inputs[i]->name);
        options[i] = calloc(1, dsf_inputs[i]->options_size);
        secs[i + 1] =
            (struct dsf_cfg_section){prefixes[i], dsf_inputs[i]->options, options[i], NULL};
    }
    return secs;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct agent_config cfg;
    void *options[32] = {0};
    char err[DSF_CFG_ERRLEN];
    memset(&cfg, 0, sizeof(cfg));
    struct dsf_cfg_section *secs = sections(&cfg, options);
    if (dsf_cfg_defaults(secs, err, sizeof(err)))
        abort(); /* the built-in defaults must always load */
    err[0] = '\0';
    if (dsf_cfg_load_json(secs, (const char *)data, size, "fuzz.json", err, sizeof(err)) == 0)
        agent_config_validate(secs, "fuzz.json", err, sizeof(err));
    else if (!err[0])
        abort(); /* a refusal must say why */
    /* The same bytes as a --set assignment. */
    char *assignment = strndup((const char *)data, size);
    dsf_cfg_set(secs, assignment, "--set", err, sizeof(err));
    free(assignment);
    dsf_cfg_free(secs);
    for (size_t i = 0; i < 32; i++)
        free(options[i]);
    free(secs);
    return 0;
}
