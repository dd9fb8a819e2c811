# control/output.c's mappings: audit records as dsf_action lines and as alerts.
if(TARGET dsf_control_lib)
  dsf_common_unit(control_output ${CMAKE_CURRENT_LIST_DIR}/test_control_output.c)
  target_link_libraries(control_output dsf_control_lib)
endif()
