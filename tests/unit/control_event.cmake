# control/event.c: alarm events, an engine's alarm list, Alertmanager webhooks and agent
# status payloads parsed and keyed; common/rfc3339.c's strict times.
if(TARGET dsf_control_lib)
  dsf_common_unit(control_event ${CMAKE_CURRENT_LIST_DIR}/test_control_event.c)
  target_link_libraries(control_event dsf_control_lib)
endif()
