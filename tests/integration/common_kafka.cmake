# Kafka wire contract against dsf-kafka-mock, read back with kcat.
if(DAMSELFLY_KAFKA)
  dsf_script(common_kafka_kcat common_kafka_kcat.sh)
endif()
