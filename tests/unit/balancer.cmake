# balancer/assign.c: every bucket owned once, a join moves at most ceil(B/N)+1 buckets and only
# to the newcomer, a leave only the leaver's, over many random pool sizes; load weighting.
# balancer/policy.c: the scale policy's rules and the runner.* / scale.* configuration.
if(TARGET dsf_balancer_lib)
  dsf_common_unit(balancer_assign ${CMAKE_CURRENT_LIST_DIR}/test_balancer_assign.c)
  target_link_libraries(balancer_assign dsf_balancer_lib)
  add_executable(balancer_policy ${CMAKE_CURRENT_LIST_DIR}/test_balancer_policy.c)
  target_link_libraries(balancer_policy dsf_balancer_lib ${CMOCKA_LIB})
  add_test(NAME balancer_policy COMMAND balancer_policy)
  set_tests_properties(balancer_policy PROPERTIES TIMEOUT 120)
  # dsf-runner-drive (tests/tools): a runner driven as the balancer drives it, for the
  # balancer_runner_* integration tests.
  add_executable(dsf-runner-drive ${CMAKE_SOURCE_DIR}/tests/tools/dsf-runner-drive.c)
  target_link_libraries(dsf-runner-drive dsf_balancer_lib)
  set_target_properties(dsf-runner-drive PROPERTIES RUNTIME_OUTPUT_DIRECTORY
    ${CMAKE_BINARY_DIR}/tests/tools)
endif()
