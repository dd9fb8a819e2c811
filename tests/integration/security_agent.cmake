# The agent's side of the bus trust model: what it accepts from its ack, request and status
# topics, whoever publishes there.
dsf_script(security_forged_ack security_forged_ack.sh)
dsf_script(security_ondemand_reply_topic security_ondemand_reply_topic.sh)
dsf_script(security_forged_status security_forged_status.sh)
