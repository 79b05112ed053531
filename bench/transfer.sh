#!/usr/bin/env bash
# bench/transfer.sh [N] [ROUNDS] : live connection transfer. With N (default 1000) connections
# open through baton, idle (one checked round trip, then silence) and busy (every connection
# keeps a checked 512-byte round trip in flight), hand-starts ROUNDS (default 5) successors and
# reports, per restart: the time the old process took to move them (its log), the time the new
# one took to receive them (its log), and the old process's exit after the ack. The clients
# check every echo and must see 0 errors. Static musl build; loopback only; bounded in time.
# Writes bench/results/transfer-<date>.json.
set -euo pipefail
B=$(cd "$(dirname "$0")/.." && pwd); N=${1:-1000}; R=${2:-5}
BIN=$B/target/x86_64-unknown-linux-musl/release/baton
[ -x "$BIN" ] || (cd "$B" && cargo build --release --target x86_64-unknown-linux-musl)
D=$(mktemp -d /tmp/baton-transfer.XXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done; pkill -KILL -f "$D/" 2>/dev/null || true; rm -rf "$D"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
stat_num() { curl -s "http://127.0.0.1:$AP/stats" | python3 -c "import json,sys;d=json.load(sys.stdin);print($1)"; }
out=$B/bench/results/transfer-$(date +%Y%m%d-%H%M%S).json
echo "[" > "$out"
first=1
for mode in idle busy; do
  rm -rf "$D/run" "$D/pid" "$D/stop" "$D/bport"
  python3 "$B/bench/transfer_load.py" backend "$D/bport" & PIDS+=($!)
  for _ in $(seq 100); do [ -s "$D/bport" ] && break; sleep 0.05; done
  BP=$(cat "$D/bport"); LP=$(free_port); AP=$(free_port)
  cat > "$D/c.json" <<JSON
{"servers":[{"listeners":[{"name":"l","address":"127.0.0.1:$LP","bind_port":true,"filter_chains":[{"filters":[{"type":"tcp_proxy","config":{"cluster":"c"}}]}]}]}],
 "cluster_manager":{"clusters":[{"name":"c","hosts":[{"address":"127.0.0.1:$BP"}]}]},
 "admin":{"address":{"socket_address":{"address":"127.0.0.1","port_value":$AP}}},
 "baton":{"runtime_dir":"$D/run","pid_file":"$D/pid","drain_timeout":"60s","idle_timeout":"10m","max_connections":4096,"transfer_connections":true}}
JSON
  : > "$D/log.$mode"
  setsid "$BIN" -c "$D/c.json" 2>>"$D/log.$mode" </dev/null & PIDS+=($!)
  for _ in $(seq 100); do [ -s "$D/pid" ] && break; sleep 0.02; done
  python3 "$B/bench/transfer_load.py" clients "$LP" "$N" "$mode" 300 "$D/stop" > "$D/clients.$mode" & CL=$!
  for _ in $(seq 300); do [ "$(stat_num "d['clusters'][0]['hosts'][0]['active']" 2>/dev/null)" = "$N" ] && break; sleep 0.1; done
  sleep 1
  : > "$D/exit.$mode"
  for _ in $(seq "$R"); do
    old=$(cat "$D/pid"); t0=$(date +%s%N)
    setsid "$BIN" -c "$D/c.json" 2>>"$D/log.$mode" </dev/null & new=$!; PIDS+=($new)
    while [ "$(cat "$D/pid" 2>/dev/null)" != "$new" ]; do sleep 0.001; done
    while [ -d "/proc/$old" ] && ! grep -q '^State:.*Z' "/proc/$old/status" 2>/dev/null; do sleep 0.001; done
    echo "$(( ($(date +%s%N) - t0) / 1000 ))" >> "$D/exit.$mode"
    sleep 1
  done
  active=$(stat_num "d['connections']['active']")
  touch "$D/stop"; wait "$CL" || true
  kill -TERM "$(cat "$D/pid")" 2>/dev/null || true
  [ $first = 1 ] || echo "," >> "$out"; first=0
  python3 - "$mode" "$N" "$active" "$D/log.$mode" "$D/exit.$mode" "$D/clients.$mode" >> "$out" <<'PY'
import json, re, sys, statistics as S
mode, n, active, log, ex, cl = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), open(sys.argv[4]).read(), sys.argv[5], sys.argv[6]
moved = [(int(a), float(b)) for a, b in re.findall(r"moved (\d+) connections to pid \d+ in ([\d.]+) ms", log)]
recv = [(int(a), float(b)) for a, b in re.findall(r"received (\d+) connections from pid \d+ in ([\d.]+) ms", log)]
ack = [float(x) for x in re.findall(r"acknowledged ([\d.]+) ms after start", log)]
exit_us = [int(l) for l in open(ex)]
after_ack = [e / 1000 - a for e, a in zip(exit_us, ack)]
c = json.load(open(cl))
r = {"mode": mode, "connections": n, "active_after": active, "moved": [m for m, _ in moved],
     "send_ms": [t for _, t in moved], "receive_ms": [t for _, t in recv], "ack_ms": ack,
     "old_exit_after_ack_ms": after_ack, "clients": c}
print(json.dumps(r))
q = lambda v: f"median {S.median(v):7.1f} ms, max {max(v):7.1f} ms" if v else "n/a"
sys.stderr.write(f"{mode:5s} {n} connections, {len(moved)} restarts, moved {[m for m, _ in moved]}\n")
sys.stderr.write(f"  old process, moving them:        {q([t for _, t in moved])}\n")
sys.stderr.write(f"  new process, receiving them:     {q([t for _, t in recv])}\n")
sys.stderr.write(f"  old process exit after the ack:  {q(after_ack)}\n")
sys.stderr.write(f"  clients: {c['round_trips']} checked round trips, {c['errors']} errors {c['first_errors']}\n")
PY
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done; PIDS=()
  pkill -KILL -f "$D/c.json" 2>/dev/null || true
done
echo "]" >> "$out"
echo "results: $out"
