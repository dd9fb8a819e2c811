#!/usr/bin/env bash
# Email with STARTTLS and AUTH against aiosmtpd (STARTTLS and AUTH required by the server):
# with the default require_tls, the server's CA and the right password the message arrives
# over TLS, authenticated; a wrong password and an untrusted certificate fail for good (no
# retries), counted as failed, and nothing is sent.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/alarm_notify_lib.sh"

/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null ||
    fail "python3-aiosmtpd not installed (scripts/install-deps.sh test)"
loopback_cert
SMTP_PORT=$(free_port)
bg smtp-tls /usr/bin/python3 "$TOOLS/smtp_tls_sink.py" "$SMTP_PORT" "$WORK/smtp.port" "$WORK/mail" \
    "$WORK/cert.pem" "$WORK/key.pem" alarm s3cret
wait_for 10 test -s "$WORK/smtp.port" || fail "aiosmtpd did not start"
mail() { # NAME USER PASSWORD [CA]
    printf '{"name": "%s", "retry": {"initial": "100ms", "attempts": 3}, "email_configs": [{"to": "%s@example.org", "from": "alarm@example.org", "smarthost": "127.0.0.1:%s", "auth_username": "%s", "auth_password": "%s"%s}]}' \
        "$1" "$1" "$SMTP_PORT" "$2" "$3" "${4:+, \"ca_file\": \"$4\"}"
}
cat >"$WORK/notify.json" <<JSON
{
  "route": {"receiver": "secure", "group_wait": "100ms", "group_interval": "1h",
            "routes": [{"receiver": "badpw", "continue": true},
                       {"receiver": "untrusted", "continue": true},
                       {"receiver": "secure"}]},
  "receivers": [$(mail secure alarm s3cret "$WORK/cert.pem"), $(mail badpw alarm wrong "$WORK/cert.pem"),
                $(mail untrusted alarm s3cret)]
}
JSON
start_drive "$WORK/notify.json"
drive fire alertname=HighCPU,severity=critical,ns=ns1,mci=m1,vm=vm1
wait_for 10 test -s "$WORK/mail/1.json" || fail "no email over STARTTLS"
sleep 1.5
for r in badpw untrusted; do
    f=$(notify_metric "damselfly_alarm_notifications_failed_total{receiver=\"$r\"}")
    t=$(notify_metric "damselfly_alarm_notifications_retried_total{receiver=\"$r\"}")
    [ "${f%.*}" = 1 ] && [ "${t%.*}" = 0 ] || fail "$r: failed $f retried $t, expected 1 and 0"
done
sent=$(notify_metric 'damselfly_alarm_notifications_sent_total{receiver="secure"}')
stop_drive
[ "${sent%.*}" = 1 ] || fail "secure sent $sent"
[ ! -e "$WORK/mail/2.json" ] || fail "a refused receiver sent mail: $(cat "$WORK/mail/2.json")"
python3 - "$WORK/mail/1.json" <<'PY' || fail "delivery over TLS with AUTH"
import json, sys
m = json.load(open(sys.argv[1]))
assert m == {"from": "alarm@example.org", "to": ["secure@example.org"], "tls": True,
             "authenticated": True}, m
print("mail delivered over STARTTLS with AUTH; wrong password and untrusted CA refused, not retried")
PY
log "ok"
