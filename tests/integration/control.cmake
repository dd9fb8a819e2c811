dsf_script(control_audit_verify control_audit_verify.sh)
dsf_script(control_policies_check control_policies_check.sh)
# control/output.c against a real InfluxDB, mosquitto and a webhook sink; the records come
# from tests/tools/dsf-ctl-output-feed.
if(TARGET dsf_control_lib)
  add_executable(dsf-ctl-output-feed ${CMAKE_CURRENT_SOURCE_DIR}/tools/dsf-ctl-output-feed.c)
  target_link_libraries(dsf-ctl-output-feed dsf_control_lib)
  set_target_properties(dsf-ctl-output-feed PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/tools)
  dsf_script(control_output_deliver control_output.sh)
endif()
