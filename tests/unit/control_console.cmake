# control/console_session.c: the web console's sessions (ids, idle timeout, max age, the
# least recently used one ended at the cap) and the Cookie header's parsing.
if(TARGET dsf_control_lib)
  dsf_common_unit(control_console_session ${CMAKE_CURRENT_LIST_DIR}/test_control_console_session.c)
  target_link_libraries(control_console_session dsf_control_lib)
endif()
