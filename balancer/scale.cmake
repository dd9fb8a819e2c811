# The pool-scaling half of the balancer as a library: the policy (pure), the runner.* and
# scale.* configuration, and the runners. The daemon and the tests link the same code.
add_library(dsf_balancer_scale STATIC
  ${CMAKE_CURRENT_LIST_DIR}/policy.c
  ${CMAKE_CURRENT_LIST_DIR}/runner_config.c
  ${CMAKE_CURRENT_LIST_DIR}/runner_local.c
  ${CMAKE_CURRENT_LIST_DIR}/runner_local_state.c
  ${CMAKE_CURRENT_LIST_DIR}/runner_k8s.c)
target_link_libraries(dsf_balancer_scale PUBLIC dsf_federation dsf_common)
