#include "agent/input.h"

extern const struct dsf_input dsf_input_cpu, dsf_input_mem, dsf_input_swap, dsf_input_disk,
    dsf_input_diskio, dsf_input_net, dsf_input_system, dsf_input_processes, dsf_input_procstat,
    dsf_input_container, dsf_input_netlatency, dsf_input_synthetic;

const struct dsf_input *const dsf_inputs[] = {
    &dsf_input_cpu,
    &dsf_input_mem,
    &dsf_input_swap,
    &dsf_input_disk,
    &dsf_input_diskio,
    &dsf_input_net,
    &dsf_input_system,
    &dsf_input_processes,
    &dsf_input_procstat,
    &dsf_input_container,
    &dsf_input_netlatency,
    &dsf_input_synthetic,
    NULL,
};
