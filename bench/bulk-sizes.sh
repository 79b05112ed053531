#!/usr/bin/env bash
# bench/bulk-sizes.sh [RUNS] [SECONDS]
# Bulk CPU per GB and throughput of baton for several buffer and pipe sizes: iperf3 (client on
# CPU 0) through baton (CPU 1) to the harness's iperf3 server, RUNS runs of SECONDS each per
# setting. How docs/benchmarks.md chose 256 KiB pipes for splice mode. Not a test.
set -euo pipefail
B=$(cd "$(dirname "$0")" && pwd)
cd "$B/.."
RUNS=${1:-3}; SECS=${2:-4}
bash "$B/prepare.sh"
trap 'bash "$B/proxyctl.sh" stop ours >/dev/null 2>&1 || true; bash "$B/backend.sh" stop' EXIT
bash "$B/backend.sh" start >/dev/null
for extra in ',"buffer_size":16384' ',"buffer_size":65536' ',"buffer_size":262144' \
             ',"splice":true,"buffer_size":65536' ',"splice":true,"buffer_size":262144' ',"splice":true,"buffer_size":1048576'; do
  export OURS_CMD="$B/baton-run.sh %L %U %R '$extra'"
  bash "$B/proxyctl.sh" start ours 19601 15201 >/dev/null
  pid=$(cat /tmp/bench/run/ours/pid)
  for i in $(seq "$RUNS"); do
    t0=$(awk '{print $14 + $15}' /proc/$pid/stat)
    json=$(taskset -c 0 iperf3 -c 127.0.0.1 -p 19601 -t "$SECS" -J)
    t1=$(awk '{print $14 + $15}' /proc/$pid/stat)
    python3 -c 'import json, sys
b = json.loads(sys.argv[1])["end"]["sum_received"]["bytes"]; secs, ticks, hz = float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
print(f"{sys.argv[5]:42} {b * 8 / secs / 1e9:6.2f} Gbit/s {ticks / hz / (b / 1e9):6.3f} CPU s/GB")' \
      "$json" "$SECS" "$((t1 - t0))" "$(getconf CLK_TCK)" "${extra#,}"
  done
  bash "$B/proxyctl.sh" stop ours >/dev/null
done
