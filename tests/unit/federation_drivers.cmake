# federation/ drivers' helpers: the kubeconfig reader and the REST client's encoders. The
# drivers themselves are tested against the API doubles (tests/integration/federation_*.sh).
add_executable(federation_kubeconfig ${CMAKE_CURRENT_LIST_DIR}/test_federation_kubeconfig.c)
target_link_libraries(federation_kubeconfig dsf_federation ${CMOCKA_LIB})
add_test(NAME federation_kubeconfig COMMAND federation_kubeconfig)
set_tests_properties(federation_kubeconfig PROPERTIES TIMEOUT 120)
