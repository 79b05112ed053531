#!/usr/bin/env bash
# bench/ab.sh [ka|close] [ROUNDS] [SECONDS]
# Interleaved request rates: direct, baton and HAProxy in turn, ROUNDS times, wrk -c50 on CPU 0,
# the proxies on CPU 1 (as run.sh). Interleaving spreads the machine's drift over all three, so
# the medians compare better than separate runs do. Prints each path's rates and median. Not a test.
set -euo pipefail
B=$(cd "$(dirname "$0")" && pwd)
cd "$B/.."
LOAD=${1:-ka}; ROUNDS=${2:-6}; SECS=${3:-4}
bash "$B/prepare.sh"
export OURS_CMD="$B/baton-run.sh %L %U %R"
trap 'bash "$B/proxyctl.sh" stop ours >/dev/null 2>&1 || true; bash "$B/proxyctl.sh" stop haproxy >/dev/null 2>&1 || true; bash "$B/backend.sh" stop' EXIT
bash "$B/backend.sh" start >/dev/null
bash "$B/proxyctl.sh" start ours 19800 18080 >/dev/null
bash "$B/proxyctl.sh" start haproxy 19802 18080 >/dev/null
hdr=(); [ "$LOAD" = close ] && hdr=(-H 'Connection: close')
for i in $(seq "$ROUNDS"); do
  for pp in direct:18080 baton:19800 haproxy:19802; do
    rate=$(taskset -c 0 wrk -t1 -c50 -d"${SECS}s" "${hdr[@]}" "http://127.0.0.1:${pp#*:}/100b" | awk '/Requests\/sec/ {print $2}')
    echo "${pp%%:*} $rate"
  done
done | python3 "$B/ab_summary.py"
