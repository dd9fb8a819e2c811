# balancer/: the runners that scale a pool, driven by dsf-runner-drive as the balancer
# drives them: real collectors on a real mosquitto, and the Kubernetes API double.
if(TARGET dsf_balancer_scale)
  dsf_script(balancer_runner_local balancer_runner_local.sh)
  dsf_script(balancer_runner_k8s balancer_runner_k8s.sh)
endif()
