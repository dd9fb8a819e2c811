#!/usr/bin/env bash
# Bad scrape bodies, each from its own target of one scraper (a static file server stands in
# for exporters answering garbage): random bytes, exposition text mixing good lines with
# malformed ones and NaN, and 10^6 series beyond scrape.max_body. Every bad line is rejected
# and counted by reason, the oversized body fails its scrape (too_large: its VM goes offline,
# nothing of it is stored), the good lines of the mixed body are stored, and the good target
# beside them loses nothing; the scraper stays up.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/alarm_lib.sh"
. "$(dirname "$0")/scraper_lib.sh"

scraper_pipeline
mkdir -p "$WORK/www"
head -c 65536 /dev/urandom >"$WORK/www/garbage.txt"
cat >"$WORK/www/mixed.prom" <<'PROM'
# HELP good_total A good counter.
# TYPE good_total counter
good_total{k="a"} 1
bad{ 1
good_total{k="b"} 2
nan_gauge NaN
inf_gauge +Inf
good_total{k="c"} 3 1700000000000
}{ garbage
PROM
printf '# TYPE good_total counter\ngood_total{k="x"} 7\n' >"$WORK/www/good.prom"
python3 - "$WORK/www/big.prom" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("# TYPE big gauge\n")
    for i in range(1000000):
        f.write(f'big{{series="{i}"}} {i}\n')
PY
WPORT=$(free_port)
bg www python3 -m http.server --bind 127.0.0.1 "$WPORT" --directory "$WORK/www"
wait_for 10 curl -sf "http://127.0.0.1:$WPORT/good.prom" || fail "the file server did not start"
target() { # VM FILE
    printf '{"targets": ["127.0.0.1:%s"], "labels": {"ns": "ns1", "mci": "mci1", "vm": "%s", "__metrics_path__": "/%s"}}' \
        "$WPORT" "$1" "$2"
}
printf '[%s, %s, %s, %s]\n' "$(target garbage garbage.txt)" "$(target mixed mixed.prom)" \
    "$(target big big.prom)" "$(target good good.prom)" >"$WORK/targets.json"
start_scraper --set scrape.targets_file="$WORK/targets.json" --set scrape.max_body=1MiB

rejected() { metric "$SAPI/metrics" damselfly_scraper_samples_rejected_total "reason=\"$1\"" || echo 0; }
at_least() { [ "$("${@:2}")" -ge "$1" ]; }
wait_for 20 at_least 3 scrapes too_large || fail "the 10^6 series body did not fail as too_large"
wait_for 20 status_is ns1/mci1/big offline || fail "the target of the oversized body is not offline"
wait_for 20 stored_some good_total good || fail "the good target's sample was not stored"
wait_for 20 stored_some good_total mixed || fail "the good lines of the mixed body were not stored"
[ "$(stored good_total mixed)" -ge 3 ] || fail "$(stored good_total mixed) good lines of the mixed body stored, want 3 a scrape"
at_least 2 rejected parse || fail "the malformed lines were not counted"
at_least 2 rejected not_representable || fail "NaN and +Inf were not counted"
[ "$(stored big big)" = 0 ] || fail "part of the oversized body was stored"
for vm in garbage mixed good; do
    status_is ns1/mci1/$vm online || fail "$vm is '$(retained_status ns1/mci1/$vm)', not online"
done
log "rejected: parse $(rejected parse), not_representable $(rejected not_representable);" \
    "too_large scrapes $(scrapes too_large)"
curl -sf "$SAPI/healthz" | grep -q '"up":3,"down":1' || fail "healthz: $(curl -s "$SAPI/healthz")"
stop_scraper_clean
log "ok"
