dsf_common_unit(alarm_eval ${CMAKE_CURRENT_LIST_DIR}/test_alarm_eval.c)
target_link_libraries(alarm_eval dsf_alarm_engine)
# alarm/events.c with the store, the state and the notifier stubbed by the test.
dsf_common_unit(alarm_events ${CMAKE_CURRENT_LIST_DIR}/test_alarm_events.c
  ${CMAKE_SOURCE_DIR}/alarm/events.c)
target_compile_definitions(alarm_events PRIVATE DSF_HAVE_NOTIFIER=1)
target_link_libraries(alarm_events dsf_alarm_engine)
