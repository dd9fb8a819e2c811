dsf_script(stack_up stack_up.sh)
