# bench/collector_parse: the collector's intake (pipeline, ingest, aggregate) into a null
# writer, beside a naive validator. Built with the tests; bench/collector_parse.sh builds it
# optimised and prints the figures.
add_executable(collector_parse
  ${CMAKE_SOURCE_DIR}/bench/collector_parse.c
  ${CMAKE_SOURCE_DIR}/collector/pipeline.c
  ${CMAKE_SOURCE_DIR}/collector/agents.c
  ${CMAKE_SOURCE_DIR}/collector/aggregate.c
  ${CMAKE_SOURCE_DIR}/collector/aggregate_emit.c
  ${CMAKE_SOURCE_DIR}/collector/aggregate_format.c
  ${CMAKE_SOURCE_DIR}/collector/aggregate_rules.c
  ${CMAKE_SOURCE_DIR}/collector/aggregate_series.c
  ${CMAKE_SOURCE_DIR}/collector/marks.c
  ${CMAKE_SOURCE_DIR}/collector/progress.c
  ${CMAKE_SOURCE_DIR}/collector/ack.c
  ${CMAKE_SOURCE_DIR}/collector/config.c)
target_link_libraries(collector_parse dsf_common)
set_target_properties(collector_parse PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
