# collector/: per-agent seq tracking (gaps, late arrivals, duplicates).
add_executable(collector_agents ${CMAKE_CURRENT_LIST_DIR}/test_collector_agents.c)
target_link_libraries(collector_agents dsf_collector_lib ${CMOCKA_LIB})
add_test(NAME collector_agents COMMAND collector_agents)
set_tests_properties(collector_agents PROPERTIES TIMEOUT 120)
