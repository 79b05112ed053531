#!/usr/bin/env bash
# bench/ack-time.sh [N] : time from a new baton's start to its ack (logged by the new process),
# over N hand-started takeovers and N SIGHUP restarts of an idle baton; and the old process's
# exit after the ack with no connections. Uses the static musl build; loopback only.
set -euo pipefail
B=$(cd "$(dirname "$0")/.." && pwd); N=${1:-20}
BIN=$B/target/x86_64-unknown-linux-musl/release/baton
[ -x "$BIN" ] || (cd "$B" && cargo build --release --target x86_64-unknown-linux-musl)
D=$(mktemp -d /tmp/baton-ack.XXXX); trap 'pkill -KILL -f "$D/" 2>/dev/null; rm -rf "$D"' EXIT
LP=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
cat > "$D/c.json" <<JSON
{"servers":[{"listeners":[{"name":"l","address":"127.0.0.1:$LP","bind_port":true,"filter_chains":[{"filters":[{"type":"tcp_proxy","config":{"cluster":"c"}}]}]}]}],
 "cluster_manager":{"clusters":[{"name":"c","hosts":[{"address":"127.0.0.1:9"}]}]},
 "baton":{"runtime_dir":"$D/run","pid_file":"$D/pid","drain_timeout":"5s"}}
JSON
setsid "$BIN" -c "$D/c.json" 2>>"$D/log" </dev/null & first=$!
for _ in $(seq 100); do [ -s "$D/pid" ] && break; sleep 0.02; done
for _ in $(seq "$N"); do
  old=$(cat "$D/pid"); t0=$(date +%s%N)
  setsid "$BIN" -c "$D/c.json" 2>>"$D/log" </dev/null &
  new=$!
  while [ "$(cat "$D/pid" 2>/dev/null)" != "$new" ]; do sleep 0.002; done
  while kill -0 "$old" 2>/dev/null && [ -d "/proc/$old" ] && ! grep -q '^State:.*Z' "/proc/$old/status"; do sleep 0.002; done
  echo "handstart old_exit_after_start_ms $(( ($(date +%s%N) - t0) / 1000000 ))" >> "$D/exit"
done
for _ in $(seq "$N"); do
  pid=$(cat "$D/pid"); gen_before=$(grep -c "acknowledged" "$D/log")
  kill -HUP "$pid"
  for _ in $(seq 500); do [ "$(grep -c "acknowledged" "$D/log")" -gt "$gen_before" ] && break; sleep 0.01; done
  sleep 0.05
done
python3 - "$D/log" "$D/exit" <<'PY'
import re, sys, statistics as S
log = open(sys.argv[1]).read()
ms = [float(x) for x in re.findall(r"acknowledged ([\d.]+) ms after start", log)]
hs, hup = ms[:len(ms)//2], ms[len(ms)//2:]
ex = [int(l.split()[-1]) for l in open(sys.argv[2])]
q = lambda v: f"median {S.median(v):.2f} ms, max {max(v):.2f} ms (n={len(v)})"
print("start to ack, second process started by hand:", q(hs))
print("start to ack, SIGHUP (exec in place):        ", q(hup))
print("new process start to old process exit, no connections:", q(ex))
PY
