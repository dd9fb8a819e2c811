# The Kafka bus against librdkafka's in-process mock cluster.
if(DAMSELFLY_KAFKA)
  dsf_common_unit(common_bus_kafka ${CMAKE_CURRENT_LIST_DIR}/test_bus_kafka.c)
endif()
