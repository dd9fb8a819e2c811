# collector/aggregate.c: rules, windows, emitted points, late samples, held acknowledgements.
add_executable(collector_aggregate ${CMAKE_CURRENT_LIST_DIR}/test_collector_aggregate.c)
target_link_libraries(collector_aggregate dsf_collector_lib ${CMOCKA_LIB})
add_test(NAME collector_aggregate COMMAND collector_aggregate)
set_tests_properties(collector_aggregate PROPERTIES TIMEOUT 120)
