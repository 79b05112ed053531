#!/usr/bin/env bash
# bench/ab-binaries.sh BIN_A BIN_B [ka|close] [ROUNDS] [SECONDS]
# Two baton binaries side by side (e.g. before and after a refactor), interleaved with the
# direct path, ROUNDS times, wrk -c50 on CPU 0 and the proxies on CPU 1 (as ab.sh). Prints each
# path's rates and median, and B / A. B_ENV (e.g. BATON_BENCH_ROUTED=1, see baton-run.sh) is
# set for B only: the same binary twice then measures a config feature. Not a test.
set -euo pipefail
B=$(cd "$(dirname "$0")" && pwd)
cd "$B/.."
A_BIN=$(realpath "$1"); B_BIN=$(realpath "$2")
LOAD=${3:-ka}; ROUNDS=${4:-6}; SECS=${5:-4}
bash "$B/prepare.sh" >/dev/null
export OURS_CMD="env BATON_BIN=$A_BIN $B/baton-run.sh %L %U %R"
export OURS_SPLICE_CMD="env BATON_BIN=$B_BIN ${B_ENV:-} $B/baton-run.sh %L %U %R"
trap 'bash "$B/proxyctl.sh" stop ours >/dev/null 2>&1 || true; bash "$B/proxyctl.sh" stop ours-splice >/dev/null 2>&1 || true; bash "$B/backend.sh" stop' EXIT
bash "$B/backend.sh" start >/dev/null
bash "$B/proxyctl.sh" start ours 19800 18080 >/dev/null
bash "$B/proxyctl.sh" start ours-splice 19804 18080 >/dev/null
hdr=(); [ "$LOAD" = close ] && hdr=(-H 'Connection: close')
for i in $(seq "$ROUNDS"); do
  for pp in direct:18080 A:19800 B:19804; do
    rate=$(taskset -c 0 wrk -t1 -c50 -d"${SECS}s" "${hdr[@]}" "http://127.0.0.1:${pp#*:}/100b" | awk '/Requests\/sec/ {print $2}')
    echo "${pp%%:*} $rate"
  done
done | python3 "$B/ab_summary.py"
