dsf_script(control_audit_verify control_audit_verify.sh)
dsf_script(control_policies_check control_policies_check.sh)
# The acceptance tests' stack (control_lib.sh) without the controller: faults seen on the bus.
dsf_script(control_stack_faults control_stack_faults.sh)
# Acceptance: the controller heals a dead VM, a silent VM, and holds still in a storm.
dsf_script(control_heal_lwt control_heal_lwt.sh)
dsf_script(control_heal_silent control_heal_silent.sh)
dsf_script(control_storm control_storm.sh)
# The guards, one case each, with alarm events published as the engine publishes them.
foreach(case cooldown fraction rate dry_run approval pause)
  dsf_script(control_guard_${case} control_guards.sh ${case})
endforeach()
# control/output.c against a real InfluxDB, mosquitto and a webhook sink; the records come
# from tests/tools/dsf-ctl-output-feed.
if(TARGET dsf_control_lib)
  add_executable(dsf-ctl-output-feed ${CMAKE_CURRENT_SOURCE_DIR}/tools/dsf-ctl-output-feed.c)
  target_link_libraries(dsf-ctl-output-feed dsf_control_lib)
  set_target_properties(dsf-ctl-output-feed PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/tools)
  dsf_script(control_output_deliver control_output.sh)
endif()
dsf_script(control_kafka control_kafka.sh)
# Acceptance: group alarms scale a subgroup out up to its max and in down to its min.
dsf_script(control_scaling control_scaling.sh)
# Acceptance: an Alertmanager webhook for a node cordons and drains it on the Kubernetes API
# double (PDB respected); with dry_run the planned evictions are audited, nothing evicted.
dsf_script(control_k8s control_k8s.sh)
# Bad input: the API without or with a wrong token, malformed bodies and policies, oversized
# and mistyped Alertmanager webhooks, malformed events on the bus; counted, and survived.
dsf_script(control_bad_input control_bad_input.sh)
# Acceptance: a chain that escalates (reboot -> migrate) and one that ends held; a controller
# killed in a migrate; an alarm that fired while the controller was down.
dsf_script(control_escalation control_escalation.sh)
foreach(case creating started)
  dsf_script(control_crash_${case} control_crash.sh ${case})
endforeach()
dsf_script(control_reconcile control_reconcile.sh)
# The web console's door: 401 (the login page) everywhere without a session, login, the
# session cookie on the API only with X-Damselfly-Console, logout, restart, idle timeout,
# CSP and ETags.
dsf_script(control_console_auth control_console_auth.sh)
# GET /api/v1/overview against a model with known MCIs, alarms and actions.
dsf_script(control_overview control_overview.sh)
