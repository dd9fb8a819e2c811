# balancer/assign.c: every bucket owned once, a join moves at most ceil(B/N)+1 buckets and only
# to the newcomer, a leave only the leaver's, over many random pool sizes; load weighting.
if(TARGET dsf_balancer_lib)
  dsf_common_unit(balancer_assign ${CMAKE_CURRENT_LIST_DIR}/test_balancer_assign.c)
  target_link_libraries(balancer_assign dsf_balancer_lib)
endif()
