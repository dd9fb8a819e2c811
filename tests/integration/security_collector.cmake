# The collector's part of the bus trust model: what a client the broker admits can send it.
dsf_script(security_seq_poisoning security_seq_poisoning.sh)
dsf_script(security_wrong_bucket security_wrong_bucket.sh)
dsf_script(security_forged_assignment security_forged_assignment.sh)
