# The alarm notifier against real receivers: a local HTTP sink (Slack, webhook), python3's
# smtpd, and a real Alertmanager. tests/tools/dsf-notify-drive pushes alerts with the timing
# each test chooses.
if(TARGET dsf_alarm_notify)
  add_executable(dsf-notify-drive ${CMAKE_CURRENT_SOURCE_DIR}/tools/dsf-notify-drive.c)
  target_link_libraries(dsf-notify-drive dsf_alarm_notify dsf_common)
  set_target_properties(dsf-notify-drive PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/tools)
  dsf_script(alarm_notify_alertmanager alarm_notify_alertmanager.sh)
  dsf_script(alarm_notify_webhook_v4 alarm_notify_webhook_v4.sh)
  dsf_script(alarm_notify_slack_email alarm_notify_slack_email.sh)
  dsf_script(alarm_notify_grouping alarm_notify_grouping.sh)
  dsf_script(alarm_notify_restart alarm_notify_restart.sh)
  dsf_script(alarm_notify_silence_flap alarm_notify_silence_flap.sh)
  dsf_script(alarm_notify_rate_limit alarm_notify_rate_limit.sh)
  dsf_script(alarm_notify_email_tls alarm_notify_email_tls.sh)
  dsf_script(alarm_notify_storm alarm_notify_storm.sh)
endif()
