# federation/: the model, the store, the composite operations (over a driver test double) and
# the agents' broker users.
foreach(what model store ops bus_creds)
  add_executable(federation_${what} ${CMAKE_CURRENT_LIST_DIR}/test_federation_${what}.c)
  target_link_libraries(federation_${what} dsf_federation ${CMOCKA_LIB})
  add_test(NAME federation_${what} COMMAND federation_${what})
  set_tests_properties(federation_${what} PROPERTIES TIMEOUT 120)
endforeach()

# The VMs the scraper pulls, from the model's labels.
add_executable(federation_scrape_targets ${CMAKE_CURRENT_LIST_DIR}/test_federation_scrape.c)
target_link_libraries(federation_scrape_targets dsf_federation ${CMOCKA_LIB})
add_test(NAME federation_scrape_targets COMMAND federation_scrape_targets)
set_tests_properties(federation_scrape_targets PROPERTIES TIMEOUT 120)
