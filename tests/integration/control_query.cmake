# The monitoring query API against a real InfluxDB with known points: values of every path
# (CB-Dragonfly's included), 401s, bad input refused naming the parameter, the store gone.
dsf_script(control_query_api control_query_api.sh)
