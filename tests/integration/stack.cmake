dsf_script(stack_up stack_up.sh)
dsf_script(stack_grafana stack_grafana.sh)
