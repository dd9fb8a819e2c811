# control/audit.c: the audit trail's hash chain on a real file.
if(TARGET dsf_control_lib)
  dsf_common_unit(control_audit ${CMAKE_CURRENT_LIST_DIR}/test_control_audit.c)
  target_link_libraries(control_audit dsf_control_lib)
endif()
