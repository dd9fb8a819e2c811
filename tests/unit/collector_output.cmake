# collector/: the store's write URL (query values percent-encoded) and output.gzip=auto's
# loopback decision.
add_executable(collector_output_url ${CMAKE_CURRENT_LIST_DIR}/test_collector_output_url.c)
target_link_libraries(collector_output_url dsf_collector_lib ${CMOCKA_LIB})
add_test(NAME collector_output_url COMMAND collector_output_url)
set_tests_properties(collector_output_url PROPERTIES TIMEOUT 120)
