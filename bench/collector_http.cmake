# bench/collector_http: dsf-bench-http makes the request bodies of bench/collector_http.sh
# (line protocol, remote_write) once and posts them, P requests in flight, to InfluxDB,
# vmagent and the collector alike. Built with the tests; the script builds it optimised.
add_executable(dsf-bench-http ${CMAKE_SOURCE_DIR}/bench/collector_http_load.c)
target_link_libraries(dsf-bench-http dsf_prom dsf_common ${CURL_LIB})
set_target_properties(dsf-bench-http PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
