#!/usr/bin/env bash
# The tumblebug driver, through damselfly-fed, against the CB-Tumblebug double: an MCI made
# with mciDynamic, VM suspend/resume/reboot through the control API (waiting on the VM
# status until the target state), subgroup scale out with numVMsToAdd, a new subgroup with
# vmDynamic, scale in and terminate (control terminate, then DELETE), a migration to another
# region (a subgroup of its own), and the same calls in the v0.13 path style. Every request
# is checked against Tumblebug's documented paths, verbs, bodies and basic auth. With
# bus.password_file, each VM is created by a request of its own whose user data (the
# agent's cloud-init) carries the broker user and password added for it to the password
# file, and terminate removes that user.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/federation_tumblebug_setup.sh"

tb_start
cat >"$WORK/mci.json" <<'EOF'
{"vm": [{"name": "g1", "subGroupSize": "2", "commonSpec": "aws+ap-northeast-2+t2.small",
         "commonImage": "ubuntu22.04", "rootDiskSize": "50", "label": {"role": "web"}},
        {"name": "g2", "subGroupSize": "1", "commonSpec": "gcp+asia-northeast3+e2-small",
         "commonImage": "ubuntu22.04"}]}
EOF

log "create an MCI (mciDynamic)"
fed create-mci ns01 mci01 --spec "$WORK/mci.json" >"$WORK/out" 2>"$WORK/err" || fail "create-mci: $(cat "$WORK/err")"
reqs >"$WORK/reqs"
python3 - "$TB_LOG" <<'PY' || fail "mciDynamic request: $(head -1 "$WORK/reqs")"
import json, sys
first = [e for e in map(json.loads, open(sys.argv[1])) if e["method"] == "POST"][0]
assert (first["method"], first["path"], first["user"]) == ("POST", "/tumblebug/ns/ns01/mciDynamic", "tbuser"), first
assert first["content_type"] == "application/json", first
b = json.loads(first["body"])
assert b["name"] == "mci01" and [v["name"] for v in b["vm"]] == ["g1", "g2"], b
g1 = b["vm"][0]
assert g1["subGroupSize"] == "2" and g1["commonSpec"] == "aws+ap-northeast-2+t2.small", g1
assert g1["commonImage"] == "ubuntu22.04" and g1["rootDiskSize"] == "50" and g1["label"] == {"role": "web"}, g1
PY
expect_in "$WORK/reqs" "GET /tumblebug/ns/ns01/mci/mci01 200 tbuser"
for vm in g1-1 g1-2 g2-1; do
    expect_in "$WORK/reqs" "GET /tumblebug/ns/ns01/mci/mci01/vm/$vm 200 tbuser"
    [ "$(vm_state ns01 mci01 $vm)" = Running ] || fail "$vm is $(vm_state ns01 mci01 $vm)"
done

log "suspend, resume, reboot one VM (control API, then status until the target)"
for action in suspend resume reboot; do
    since=$(($(log_lines) + 1))
    fed vm $action ns01 mci01 g1-1 >"$WORK/out" 2>"$WORK/err" || fail "$action: $(cat "$WORK/err")"
    reqs "$since" >"$WORK/reqs"
    expect_in "$WORK/reqs" "GET /tumblebug/ns/ns01/control/mci/mci01/vm/g1-1?action=$action 200 tbuser"
    # The driver waited: it saw the transient state, then the final one.
    [ "$(grep -c '^GET /tumblebug/ns/ns01/mci/mci01/vm/g1-1 200' "$WORK/reqs")" -ge 2 ] ||
        fail "$action returned without polling the VM status: $(cat "$WORK/reqs")"
done
[ "$(vm_state ns01 mci01 g1-1)" = Running ] || fail "g1-1 is $(vm_state ns01 mci01 g1-1) after reboot"
fed vm suspend ns01 mci01 g2-1 >"$WORK/out" 2>"$WORK/err" || fail "suspend g2-1: $(cat "$WORK/err")"
[ "$(vm_state ns01 mci01 g2-1)" = Suspended ] || fail "g2-1 is $(vm_state ns01 mci01 g2-1)"
fed status ns01 mci01 >"$WORK/status" 2>"$WORK/err" || fail "status: $(cat "$WORK/err")"
expect_in "$WORK/status" "Partial-Suspended:1 (R:2/3)"

log "scale out subgroup g1 by 2 (numVMsToAdd)"
since=$(($(log_lines) + 1))
fed scale-out ns01 mci01 g1 2 >"$WORK/out" 2>"$WORK/err" || fail "scale-out: $(cat "$WORK/err")"
reqs "$since" >"$WORK/reqs"
expect_in "$WORK/reqs" 'POST /tumblebug/ns/ns01/mci/mci01/subgroup/g1 200 tbuser {"numVMsToAdd":"2"}'
for vm in g1-3 g1-4; do
    [ "$(vm_state ns01 mci01 $vm)" = Running ] || fail "$vm is $(vm_state ns01 mci01 $vm)"
done

log "a new subgroup in the existing MCI (vmDynamic)"
cat >"$WORK/g3.json" <<'EOF'
{"vm": [{"name": "g3", "subGroupSize": "1", "commonSpec": "azure+koreacentral+Standard_B1s",
         "commonImage": "ubuntu22.04", "connectionName": "azure-koreacentral"}]}
EOF
since=$(($(log_lines) + 1))
fed create-mci ns01 mci01 --spec "$WORK/g3.json" >"$WORK/out" 2>"$WORK/err" || fail "add g3: $(cat "$WORK/err")"
reqs "$since" >"$WORK/reqs"
expect_in "$WORK/reqs" 'POST /tumblebug/ns/ns01/mci/mci01/vmDynamic 200 tbuser {"name":"g3","subGroupSize":"1","commonSpec":"azure+koreacentral+Standard_B1s","commonImage":"ubuntu22.04","label":{},"connectionName":"azure-koreacentral"}'
[ "$(vm_state ns01 mci01 g3-1)" = Running ] || fail "g3-1 is $(vm_state ns01 mci01 g3-1)"

log "scale in by 1: the newest autogen VM is terminated and deleted"
since=$(($(log_lines) + 1))
fed scale-in ns01 mci01 g1 1 >"$WORK/out" 2>"$WORK/err" || fail "scale-in: $(cat "$WORK/err")"
reqs "$since" >"$WORK/reqs"
expect_in "$WORK/reqs" "GET /tumblebug/ns/ns01/control/mci/mci01/vm/g1-4?action=terminate 200 tbuser"
expect_in "$WORK/reqs" "DELETE /tumblebug/ns/ns01/mci/mci01/vm/g1-4 200 tbuser"
curl -s -o /dev/null -w '%{http_code}' -u "$TB_USER:$TB_PASS" "$TB_URL/ns/ns01/mci/mci01/vm/g1-4" >"$WORK/code"
[ "$(cat "$WORK/code")" = 404 ] || fail "g1-4 still in Tumblebug ($(cat "$WORK/code"))"

log "migrate g1-1 to us-east-1: a Tumblebug subgroup of its own, then the old VM goes"
since=$(($(log_lines) + 1))
fed migrate ns01 mci01 g1-1 --region us-east-1 >"$WORK/out" 2>"$WORK/err" || fail "migrate: $(cat "$WORK/err")"
reqs "$since" >"$WORK/reqs"
grep -q '^POST /tumblebug/ns/ns01/mci/mci01/vmDynamic 200 tbuser {"name":"g1-[0-9]*","subGroupSize":"1","commonSpec":"aws+us-east-1+t2.small"' "$WORK/reqs" ||
    fail "migration did not create through vmDynamic in us-east-1: $(grep POST "$WORK/reqs")"
expect_in "$WORK/reqs" "GET /tumblebug/ns/ns01/control/mci/mci01/vm/g1-1?action=terminate 200"
expect_in "$WORK/reqs" "DELETE /tumblebug/ns/ns01/mci/mci01/vm/g1-1 200"
new=$(sed -n 's/.*migrated ns01\/mci01\/g1-1 to \([^ ]*\).*/\1/p' "$WORK/out")
[ -n "$new" ] || fail "migrate did not name the new VM: $(cat "$WORK/out")"
[ "$(vm_state ns01 mci01 "$new")" = Running ] || fail "$new is $(vm_state ns01 mci01 "$new")"
curl -sf -u "$TB_USER:$TB_PASS" "$TB_URL/ns/ns01/mci/mci01/vm/$new" >"$WORK/newvm" || fail "$new unknown to Tumblebug"
expect_in "$WORK/newvm" '"specId": "aws+us-east-1+t2.small"'

log "terminate g2-1 from Suspended"
fed vm terminate ns01 mci01 g2-1 >"$WORK/out" 2>"$WORK/err" || fail "terminate: $(cat "$WORK/err")"
[ "$(vm_state ns01 mci01 g2-1)" = Terminated ] || fail "g2-1 is $(vm_state ns01 mci01 g2-1)"

log "v0.13 path style: infraDynamic, control/infra/../node/.., nodegroup scale out"
since=$(($(log_lines) + 1))
fed --set tumblebug.api=v0.13 create-mci ns02 infra01 --spec "$WORK/mci.json" >"$WORK/out" 2>"$WORK/err" ||
    fail "v0.13 create: $(cat "$WORK/err")"
fed --set tumblebug.api=v0.13 vm suspend ns02 infra01 g2-1 >"$WORK/out" 2>"$WORK/err" || fail "v0.13 suspend: $(cat "$WORK/err")"
fed --set tumblebug.api=v0.13 scale-out ns02 infra01 g1 1 >"$WORK/out" 2>"$WORK/err" || fail "v0.13 scale-out: $(cat "$WORK/err")"
reqs "$since" >"$WORK/reqs"
grep -q '^POST /tumblebug/ns/ns02/infraDynamic 200 tbuser {"name":"infra01",.*"nodeGroups":\[{"name":"g1","nodeGroupSize":"2","specId":"aws+ap-northeast-2+t2.small","imageId":"ubuntu22.04"' "$WORK/reqs" ||
    fail "v0.13 infraDynamic: $(grep POST "$WORK/reqs")"
expect_in "$WORK/reqs" "GET /tumblebug/ns/ns02/control/infra/infra01/node/g2-1?action=suspend 200 tbuser"
expect_in "$WORK/reqs" "GET /tumblebug/ns/ns02/infra/infra01/node/g2-1 200 tbuser"
expect_in "$WORK/reqs" 'POST /tumblebug/ns/ns02/infra/infra01/nodegroup/g1 200 tbuser {"numNodesToAdd":1}'
grep -q "/mci/\|/vm/" "$WORK/reqs" && fail "v0.11 paths in v0.13 mode: $(grep '/mci/\|/vm/' "$WORK/reqs")"

log "broker credentials: each new VM's user data carries its own user, terminate revokes it"
printf 'operator:$7$101$AAAAAAAAAAAAAAAA$xx==\n' >"$WORK/passwd"
fedc() {
    fed --set bus.password_file="$WORK/passwd" \
        --set tumblebug.agent_cloud_init="$DSF_SRC/deploy/cloud-init/agent.yaml" \
        --set tumblebug.mqtt_url=tcp://broker.example.net:1883 \
        --set tumblebug.release_url=https://downloads.example.net/damselfly/0.1.0 "$@"
}
if fed --set bus.password_file="$WORK/passwd" status >"$WORK/out" 2>&1; then
    fail "bus.password_file without tumblebug.agent_cloud_init accepted"
fi
expect_in "$WORK/out" "tumblebug.agent_cloud_init is empty"
since=$(($(log_lines) + 1))
fedc create-mci ns03 mci03 --spec "$WORK/mci.json" >"$WORK/fedc.out" 2>&1 || fail "create: $(cat "$WORK/fedc.out")"
fedc scale-out ns03 mci03 g1 1 >>"$WORK/fedc.out" 2>&1 || fail "scale-out: $(cat "$WORK/fedc.out")"
for vm in g1-1 g1-2 g1-3 g2-1; do
    [ "$(vm_state ns03 mci03 $vm)" = Running ] || fail "$vm is $(vm_state ns03 mci03 $vm)"
done
# One request per VM, each with the user data made for the VM Tumblebug then named.
python3 - "$TB_LOG" "$since" "$WORK/passwd" "$WORK/passwords" <<'PY' || fail "user data: $(reqs "$since" | cut -c1-300)"
import base64, hashlib, json, sys, yaml
entries = [json.loads(l) for l in open(sys.argv[1])][int(sys.argv[2]) - 1:]
lines = dict(l.rstrip("\n").split(":", 1) for l in open(sys.argv[3]) if ":" in l)
seen = {}
for e in entries:
    if e["method"] != "POST":
        continue
    b = json.loads(e["body"])
    subs = b.get("vm", [b])
    for s in subs:
        assert s.get("subGroupSize", "1") == "1" and s.get("numVMsToAdd", "1") == "1", e
        ud = yaml.safe_load(s["userData"])
        run = next(c for c in ud["runcmd"] if any(str(a).endswith("install-agent.sh") for a in c))
        arg = lambda k: str(run[run.index(k) + 1])
        files = {f["path"]: f for f in ud["write_files"]}
        pw = files["/var/lib/damselfly-install/mqtt-password"]["content"].strip()
        vm = arg("--vm")
        assert arg("--ns") == "ns03" and arg("--mci") == "mci03", run
        assert arg("--mqtt-username") == "ns03/mci03/" + vm, run
        assert arg("--mqtt-url") == "tcp://broker.example.net:1883", run
        assert pw and pw not in run, "no password, or it is on the command line"
        _, kind, it, salt, want = lines["ns03/mci03/" + vm].split("$")
        got = hashlib.pbkdf2_hmac("sha512", pw.encode(), base64.b64decode(salt), int(it), 64)
        assert base64.b64encode(got).decode() == want, vm + ": the password does not match"
        seen[vm] = pw
assert sorted(seen) == ["g1-1", "g1-2", "g1-3", "g2-1"], sorted(seen)
assert len(set(seen.values())) == 4, "VMs share a password"
open(sys.argv[4], "w").write("\n".join(seen.values()) + "\n")
PY
expect_in "$WORK/fedc.out" "broker user ns03/mci03/g1-1 added"
expect_in "$WORK/fedc.out" "bus.broker_pid_file is not set"
fedc vm terminate ns03 mci03 g1-2 >>"$WORK/fedc.out" 2>&1 || fail "terminate: $(cat "$WORK/fedc.out")"
grep -q '^ns03/mci03/g1-2:' "$WORK/passwd" && fail "g1-2's user survived its terminate"
grep -q '^ns03/mci03/g1-1:' "$WORK/passwd" || fail "terminating g1-2 removed g1-1's user"
fedc mci delete ns03 mci03 >>"$WORK/fedc.out" 2>&1 || fail "mci delete: $(cat "$WORK/fedc.out")"
grep -q '^ns03/' "$WORK/passwd" && fail "users of the deleted MCI remain: $(cat "$WORK/passwd")"
grep -q '^operator:' "$WORK/passwd" || fail "the operator's line is gone"
while read -r pw; do
    grep -qF -- "$pw" "$WORK/fedc.out" && fail "damselfly-fed printed a password"
done <"$WORK/passwords"

reqs >"$WORK/reqs"
awk '$4 != "tbuser" && $2 != "/tumblebug/readyz"' "$WORK/reqs" | grep . && fail "requests without basic auth"
log "ok"
