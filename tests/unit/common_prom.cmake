# common/prom_*.c: the exposition text parser, the remote_write decoder and their mapping to
# line protocol (the dsf_prom library, which the static agent build does not have).
if(TARGET dsf_prom)
  dsf_common_unit(common_prom_text ${CMAKE_CURRENT_LIST_DIR}/test_prom_text.c)
  target_link_libraries(common_prom_text dsf_prom)
  target_compile_definitions(common_prom_text PRIVATE DSF_SRC="${CMAKE_SOURCE_DIR}")
  dsf_common_unit(common_prom_remote ${CMAKE_CURRENT_LIST_DIR}/test_prom_remote.c)
  target_link_libraries(common_prom_remote dsf_prom)
endif()
