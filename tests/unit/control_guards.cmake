# control/guards*.c: every guard at its boundary, the storm breaker (per MCI, fleet,
# observers), replay of past actions, the API's JSON and bounded memory.
dsf_common_unit(control_guards ${CMAKE_CURRENT_LIST_DIR}/test_control_guards.c
  ${CMAKE_CURRENT_LIST_DIR}/test_control_guards_breaker.c)
target_link_libraries(control_guards dsf_control_lib)
