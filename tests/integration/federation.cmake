# federation/: the local driver end to end with the real agent and a real mosquitto.
dsf_script(federation_local_lifecycle federation_local_lifecycle.sh)
dsf_script(federation_local_readopt federation_local_readopt.sh)
dsf_script(federation_local_sigstop federation_local_sigstop.sh)
# The agents' broker users: provisioned at create, revoked at terminate, on a broker that
# refuses anonymous clients.
dsf_script(federation_local_credentials federation_local_credentials.sh)
# A removed VM's retained status is cleared and the alarm engine forgets its alarms.
dsf_script(federation_local_clear_status federation_local_clear_status.sh)
# Pulled VMs: an exporter VM (the real prometheus-node-exporter, no agent) and a pull VM
# (an agent with push off behind the pull token).
dsf_script(federation_local_exporter_vm federation_local_exporter_vm.sh)
# The kubernetes and tumblebug drivers against the API doubles in tests/tools/ (and kubectl).
dsf_script(federation_k8s_cordon_drain_scale federation_k8s_cordon_drain_scale.sh)
dsf_script(federation_k8s_auth_faults federation_k8s_auth_faults.sh)
dsf_script(federation_tumblebug_lifecycle federation_tumblebug_lifecycle.sh)
dsf_script(federation_tumblebug_errors federation_tumblebug_errors.sh)
# The command line itself: usage errors and the state directory key.
dsf_script(federation_cli_usage federation_cli_usage.sh)
