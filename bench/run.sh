#!/usr/bin/env bash
# bench/run.sh [ROUNDS] [DURATION_S]
# baton (user buffers and splice) side by side with HAProxy, nginx stream and the direct path, in one
# run: keep-alive and new-connection rates, latency, bulk throughput (iperf3), CPU per request/GB,
# RSS idle and with 1,000 idle connections. Installs the peers (Debian packages) and builds the
# static binary first. `ours-splice` is splice mode with 256 KiB pipes (buffer_size 262144).
# Not a test: the machine is shared and noisy; read the ratios.
# Results: bench/results/bench-*.json, and markdown on stdout (report.py + targets.py).
set -euo pipefail
B=$(cd "$(dirname "$0")" && pwd)
cd "$B/.."
ROUNDS=${1:-3}; DUR=${2:-10}
bash "$B/prepare.sh"
export OURS_CMD="$B/baton-run.sh %L %U %R"
export OURS_SPLICE_CMD="$B/baton-run.sh %L %U %R ',\"splice\":true,\"buffer_size\":262144'"
mkdir -p "$B/results" /tmp/bench
OUT="$B/results/bench-$(date +%Y%m%d-%H%M%S).json"
bash "$B/bench.sh" --rounds "$ROUNDS" --dur "$DUR" --proxies direct,haproxy,nginx,ours,ours-splice --out "$OUT"
python3 "$B/report.py" "$OUT"
python3 "$B/targets.py" "$OUT" ours
python3 "$B/targets.py" "$OUT" ours-splice
