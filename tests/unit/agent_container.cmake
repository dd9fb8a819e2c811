# Agent inputs that read cgroups, processes and the network: run as root against the real
# kernel interfaces (they create cgroups, processes and loopback listeners).
dsf_unit(agent_container_cgroup ${CMAKE_CURRENT_LIST_DIR}/test_agent_container.c)
dsf_unit(agent_procstat ${CMAKE_CURRENT_LIST_DIR}/test_agent_procstat.c)
dsf_unit(agent_netlatency ${CMAKE_CURRENT_LIST_DIR}/test_agent_netlatency.c)
# Their burners must get most of a CPU each: on a small machine, nothing else runs beside.
set_tests_properties(agent_container_cgroup agent_procstat PROPERTIES RUN_SERIAL TRUE)
