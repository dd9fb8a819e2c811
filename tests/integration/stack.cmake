dsf_script(stack_up stack_up.sh)
dsf_script(stack_grafana stack_grafana.sh)
dsf_script(stack_demo stack_demo.sh)
dsf_script(stack_user stack_user.sh)
# up (about 1.5 min on a busy machine), the demo (about 2.5 min: agent_down's 30 s, the
# breaker's 60 s hold), down.
set_tests_properties(stack_demo PROPERTIES TIMEOUT 900)
# up, then chromium: login, agent_down's 30 s, the reboot and its verification (about 2 min).
dsf_script(stack_console_browser stack_console_browser.sh)
