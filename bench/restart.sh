#!/usr/bin/env bash
# bench/restart.sh [TRIALS]
# Reload under load, side by side: baton (SIGHUP in place; a second hand-started process) with a
# 3 s drain deadline and live connection transfer (the default), then without transfer, HAProxy master-worker with fd passing, HAProxy -sf without fd passing, and
# nginx -s reload. Each: wrk (-c50, Connection: close, then keep-alive) through the proxy while it
# is reloaded 20 times 0.5 s apart (reload_test.sh), then the proxy's processes are counted once
# the drain deadline has passed (during the load and 4 s after it). Also baton's start-to-ack
# times from its own log. Output: bench/results/restart-*.jsonl and markdown on stdout.
set -euo pipefail
B=$(cd "$(dirname "$0")" && pwd)
cd "$B/.."
TRIALS=${1:-1}
bash "$B/prepare.sh"
mkdir -p "$B/results" /tmp/bench
OUT="$B/results/restart-$(date +%Y%m%d-%H%M%S).jsonl"
export OURS_CMD="$B/baton-run.sh %L %U %R ',\"drain_timeout\":\"3s\",\"max_draining\":16'"
PORT=20101
"$B/backend.sh" start >/dev/null
cleanup() { "$B/backend.sh" stop; for n in ours haproxy-mw haproxy-legacy nginx; do "$B/proxyctl.sh" stop $n >/dev/null 2>&1; done; }
trap cleanup EXIT

procs() { # live processes of one proxy's run dir
  local n=0
  for d in /proc/[0-9]*; do
    { tr '\0' ' ' < "$d/cmdline"; } 2>/dev/null | grep -q "/tmp/bench/run/$1/" && n=$((n + 1))
  done
  echo $n
}

run() { # NAME MODE RELOAD LABEL
  "$B/proxyctl.sh" start "$1" $PORT 18080 >/dev/null || { echo "start $1 failed" >&2; return; }
  sleep 0.5
  # sample the process count during the last seconds of load (after the last reload + 3.5 s)
  ( sleep $((2 + 10 + 3)); procs "$1" > /tmp/bench/procs-during ) &
  local sampler=$!
  r=$("$B/reload_test.sh" -p $PORT -m "$2" -r "$3" -l "$4" -n 20 -i 0.5 -w 2)
  wait $sampler || true
  sleep 4
  local during after
  during=$(cat /tmp/bench/procs-during); after=$(procs "$1")
  "$B/proxyctl.sh" stop "$1" >/dev/null
  echo "${r%\}}, \"trial\": $t, \"procs_during_load_after_deadline\": $during, \"procs_4s_after_load\": $after}" | tee -a "$OUT"
  sleep 1
}

rm -f /tmp/bench/run/ours/log
for t in $(seq "$TRIALS"); do
  for mode in close ka; do
    run ours $mode 'kill -HUP $(cat /tmp/bench/run/ours/baton.pid)' "baton, SIGHUP (same PID)"
    run ours $mode "$B/baton-handstart.sh /tmp/bench/run/ours" "baton, second process started by hand"
    run haproxy-mw $mode "$B/proxyctl.sh reload haproxy-mw" "HAProxy master-worker, fd passing (expose-fd listeners)"
    run haproxy-legacy $mode "$B/proxyctl.sh reload haproxy-legacy" "HAProxy -sf, no fd passing"
    run nginx $mode "$B/proxyctl.sh reload nginx" "nginx stream, nginx -s reload"
  done
  # without transfer, keep-alive connections stay in the process that accepted them: with a
  # drain deadline shorter than the run they are cut at it
  OURS_CMD="$B/baton-run.sh %L %U %R ',\"drain_timeout\":\"3s\",\"max_draining\":16,\"transfer_connections\":false'"
  run ours ka 'kill -HUP $(cat /tmp/bench/run/ours/baton.pid)' "baton, SIGHUP, no transfer, 3 s drain deadline"
  run ours ka "$B/baton-handstart.sh /tmp/bench/run/ours" "baton, second process, no transfer, 3 s drain deadline"
  OURS_CMD="$B/baton-run.sh %L %U %R ',\"drain_timeout\":\"3s\",\"max_draining\":16'"
done
python3 - "$OUT" <<'PY'
import json, sys, statistics as S
rows = [json.loads(l) for l in open(sys.argv[1])]
print("\n| proxy / method | mode | requests | wrk errors (connect/read/write/timeout) | non-2xx | processes during load, after the deadline | processes 4 s after load |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['label']} | {r['mode']} | {r['requests']} | {r['errors_total']} ({r['err_connect']}/{r['err_read']}/{r['err_write']}/{r['err_timeout']}) | {r['non2xx']} | {r['procs_during_load_after_deadline']} | {r['procs_4s_after_load']} |")
PY
python3 - <<'PY'
import re, statistics as S
ms = [float(m) for m in re.findall(r"acknowledged ([\d.]+) ms after start", open("/tmp/bench/run/ours/log").read())]
if ms:
    ms.sort()
    print(f"\nbaton start-to-ack over {len(ms)} hot restarts: median {S.median(ms):.2f} ms, p90 {ms[int(len(ms) * 0.9)]:.2f} ms, max {ms[-1]:.2f} ms")
PY
