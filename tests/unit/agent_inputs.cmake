# The host inputs (cpu, mem, swap, disk, diskio, net, system, processes) against this
# machine's /proc; malloc, calloc and realloc are wrapped to count the project's allocations.
dsf_unit(agent_inputs_proc ${CMAKE_CURRENT_LIST_DIR}/test_agent_inputs.c)
target_link_options(agent_inputs_proc PRIVATE
  -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc)
# net and disk against a fake host root, where the host's /proc is not the agent's own.
dsf_unit(agent_host_root ${CMAKE_CURRENT_LIST_DIR}/test_agent_host_root.c)
