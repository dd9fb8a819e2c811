# The notifier's routing file, matchers and silences (alarm/notify/).
if(TARGET dsf_alarm_notify)
  add_executable(alarm_notify_config ${CMAKE_CURRENT_LIST_DIR}/test_alarm_notify_config.c)
  target_link_libraries(alarm_notify_config dsf_alarm_notify dsf_common ${CMOCKA_LIB})
  add_test(NAME alarm_notify_config COMMAND alarm_notify_config)
  set_tests_properties(alarm_notify_config PROPERTIES TIMEOUT 120)
endif()
