# damselfly-balancer with real mosquitto, InfluxDB and collectors following its assignments
# (balancer_lib.sh); its runners driven by dsf-runner-drive as the balancer drives them: real
# collectors on a real mosquitto, and the Kubernetes API double.
if(TARGET damselfly-balancer)
  foreach(t assign_basic failover join_leave restart_ha collector_restart bad_input move_timeout roles pools
            runner_local runner_k8s scale_local scale_k8s)
    dsf_script(balancer_${t} balancer_${t}.sh)
  endforeach()
  # They bound detection and failover latencies in seconds: run alone.
  foreach(t failover restart_ha)
    set_tests_properties(balancer_${t} PROPERTIES RUN_SERIAL TRUE)
  endforeach()
endif()
# Issue 12's acceptance under the load of 200 agents (tests/CMakeLists.txt runs them alone).
if(TARGET damselfly-balancer)
  foreach(t zero_failover zero_join_leave zero_ha)
    dsf_script(balancer_${t} balancer_${t}.sh)
  endforeach()
endif()
