# Sourced by the federation_tumblebug_* tests after lib.sh: the CB-Tumblebug double on a free
# port with basic auth, damselfly-fed on it, and helpers to read the double's request log.

FED="$DSF_BUILD/federation/damselfly-fed"
[ -x "$FED" ] || fail "$FED is missing"
TB_USER=tbuser
TB_PASS="pw-$RANDOM$RANDOM"

# tb_start [DOUBLE ARGS...]: sets TB_PORT, TB_URL (ends in /tumblebug), TB_LOG.
tb_start() {
    TB_PORT=$(free_port)
    TB_URL="http://127.0.0.1:$TB_PORT/tumblebug"
    TB_LOG="$WORK/tb-requests.jsonl"
    bg tb-double python3 "$DSF_SRC/tests/tools/tumblebug_double.py" --port "$TB_PORT" \
        --user "$TB_USER" --password "$TB_PASS" --log "$TB_LOG" "$@"
    TB_PID=$BG_PID
    wait_for 15 curl -sf "$TB_URL/readyz" || fail "the Tumblebug double did not start"
}

# fed ARGS...: damselfly-fed with the tumblebug driver on the double; fast polling.
fed() {
    "$FED" --driver tumblebug --state-dir "$WORK/state" --set tumblebug.url="$TB_URL" \
        --set tumblebug.user="$TB_USER" --set tumblebug.password="$TB_PASS" \
        --set tumblebug.poll_interval=100ms "$@"
}

# reqs [SINCE]: "METHOD PATH[?QUERY] STATUS USER BODY" per request from line SINCE on.
reqs() {
    python3 - "$TB_LOG" "${1:-1}" <<'PY'
import json, sys
for i, line in enumerate(open(sys.argv[1]), 1):
    if i < int(sys.argv[2]):
        continue
    e = json.loads(line)
    q = "?" + e["query"] if e["query"] else ""
    print(e["method"], e["path"] + q, e["status"], e["user"] or "-", e["body"] or "-")
PY
}

log_lines() { if [ -f "$TB_LOG" ]; then wc -l <"$TB_LOG"; else echo 0; fi; }

# fault JSON: arms a fault in the double; clear_faults removes them.
fault() { curl -sf -X POST -d "$1" "http://127.0.0.1:$TB_PORT/__double/fault" >/dev/null || fail "fault $1"; }
clear_faults() { curl -sf -X DELETE "http://127.0.0.1:$TB_PORT/__double/fault" >/dev/null; }

expect_in() { # FILE TEXT: FILE contains TEXT
    grep -qF -- "$2" "$1" || fail "$(basename "$1") lacks '$2': $(head -c 800 "$1")"
}

# vm_state NS MCI VM: the state damselfly-fed reports after refreshing from the driver.
vm_state() {
    fed status --json "$1" "$2" 2>/dev/null | python3 -c '
import json, sys
doc = json.load(sys.stdin)
mcis = doc if isinstance(doc, list) else doc.get("mcis", [doc])
for m in mcis:
    for vm in m.get("vms", m.get("vm", [])):
        if vm["id"] == sys.argv[1]:
            print(vm.get("state") or vm.get("status"))' "$3"
}
