# privs_drop: user switch, kept capabilities, bounding set, no-new-privs (forks; needs root).
dsf_unit(agent_privs ${CMAKE_CURRENT_LIST_DIR}/test_agent_privs.c)
