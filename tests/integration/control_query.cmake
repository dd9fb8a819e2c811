# The monitoring query API against a real InfluxDB with known points: values of every path
# (CB-Dragonfly's included), 401s, bad input refused naming the parameter, the store gone.
dsf_script(control_query_api control_query_api.sh)
# On-demand collection through the controller: real agents of a local MCI answer over the
# broker with the project's ACL (JSON, line protocol, the netlatency matrix); a stopped agent
# gives 504 within ondemand.timeout; the cap, bad names, unknown VMs and tokens refused.
dsf_script(control_ondemand control_ondemand.sh)
