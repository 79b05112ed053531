#!/usr/bin/env bash
# baton-handstart.sh RUNDIR : hot restart by a second, hand-started baton on the same config (the
# operator model); returns when the PID file names the new process (bounded), exit 1 otherwise.
# The new PID is recorded for proxyctl.sh stop.
set -u
RD=$1
B=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BATON_BIN:-$B/target/x86_64-unknown-linux-musl/release/baton}
old=$(cat "$RD/baton.pid" 2>/dev/null)
setsid taskset -c "${PROXY_CPU:-1}" "$BIN" -c "$RD/baton.json" >>"$RD/log" 2>&1 </dev/null &
new=$!
echo "$new" >> "$RD/pgids"
echo "$new" > "$RD/pid"
for _ in $(seq 100); do
  [ "$(cat "$RD/baton.pid" 2>/dev/null)" = "$new" ] && exit 0
  kill -0 "$new" 2>/dev/null || exit 1
  sleep 0.05
done
exit 1
