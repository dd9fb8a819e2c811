# The alarm engines' API through the controller: two real engines with their own tokens,
# alarms and silences merged, an engine down, 401s and bad bodies.
dsf_script(control_alarm_proxy control_alarm_proxy.sh)
