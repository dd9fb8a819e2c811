# control/query_parse.c and control/query_influxql.c: the monitoring API's requests checked
# and turned into escaped InfluxQL.
if(TARGET dsf_control_lib)
  dsf_common_unit(control_query ${CMAKE_CURRENT_LIST_DIR}/test_control_query.c)
  target_link_libraries(control_query dsf_control_lib)
endif()
