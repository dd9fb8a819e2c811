dsf_common_unit(alarm_eval ${CMAKE_CURRENT_LIST_DIR}/test_alarm_eval.c)
target_link_libraries(alarm_eval dsf_alarm_engine)
