# control/policy.c: policy files, their refusals (naming the key path), matching, the
# directory loader on deploy/policies, and the CB-Tumblebug import.
dsf_common_unit(control_policy ${CMAKE_CURRENT_LIST_DIR}/test_control_policy.c)
target_link_libraries(control_policy dsf_control_lib)
target_compile_definitions(control_policy PRIVATE DSF_SRC="${CMAKE_SOURCE_DIR}")
