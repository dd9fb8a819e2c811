/* libFuzzer target: the federation store's JSON loader (the file of one MCI) and the MCI
 * request parser. Any input must load or be refused with a message, never crash; what loads
 * must write back and load again to the same text, so a save never changes what was read.
 * The monitoring labels of what loads are read, and each VM's scrape URL built. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "federation/federation.h"
#include "federation/scrape.h"

/* A refusal says why; a URL is whole or refused. */
static void monitoring(const struct fed_vm_spec *s, const char *address)
{
    struct fed_monitoring_spec ms;
    struct fed_error err;
    if (fed_spec_monitoring(s, &ms, &err) != 0) {
        if (!err.message[0])
            abort();
        return;
    }
    char url[2 * FED_LONG_MAX + 32];
    if (fed_scrape_url(address, &ms, url, sizeof(url)) == 0 && strncmp(url, "http://", 7) != 0)
        abort();
}

static void round_trip(const struct fed_mci *m)
{
    char status[96];
    fed_mci_status(m, status, sizeof(status));
    char *text = fed_mci_to_json(m);
    if (!text)
        abort();
    struct fed_mci again;
    struct fed_error err;
    if (fed_mci_from_json(text, strlen(text), &again, &err) != 0)
        abort(); /* the store could not read back what it wrote */
    char *text2 = fed_mci_to_json(&again);
    if (!text2 || strcmp(text, text2) != 0)
        abort();
    struct fed_mci copy;
    if (fed_mci_copy(&copy, &again) == 0)
        fed_mci_free(&copy);
    free(text);
    free(text2);
    fed_mci_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fed_mci m;
    struct fed_error err;
    if (fed_mci_from_json((const char *)data, size, &m, &err) == 0) {
        for (size_t i = 0; i < m.nvms; i++)
            monitoring(&m.vms[i].spec, m.vms[i].address);
        round_trip(&m);
        fed_mci_free(&m);
    } else if (!err.message[0]) {
        abort(); /* a refusal must say why */
    }
    struct fed_vm_spec *specs;
    size_t n;
    char name[FED_NAME_MAX];
    if (fed_mci_request_parse((const char *)data, size, name, sizeof(name), &specs, &n, &err) ==
        0) {
        for (size_t i = 0; i < n; i++) {
            monitoring(&specs[i], "10.0.0.1");
            fed_vm_spec_free(&specs[i]);
        }
        free(specs);
    } else if (!err.message[0]) {
        abort();
    }
    return 0;
}
