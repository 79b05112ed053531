#!/usr/bin/env bash
# bench/profile.sh [DURATION_S] [PROXIES]
# Where a proxy's CPU goes, per keep-alive request and per new connection: the proxy (pinned to
# CPU 1, as in run.sh) serves wrk (CPU 0) while `perf record -C 1` samples that CPU. Prints, per
# proxy and load: requests/s, proxy CPU per request (utime+stime), TCP segments sent per request
# (nstat), and how the proxy's samples split between user space and the kernel, and among the
# system calls. The kernel share is the part no proxy code can remove: it is the TCP work of the
# calls any read/write proxy makes. Not a test; run on a quiet machine.
set -euo pipefail
B=$(cd "$(dirname "$0")" && pwd)
cd "$B/.."
DUR=${1:-6}; PROXIES=${2:-ours haproxy nginx}
bash "$B/prepare.sh"
command -v perf >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq linux-perf; }
command -v nstat >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq iproute2; }
export OURS_CMD="$B/baton-run.sh %L %U %R"
W=$(mktemp -d /tmp/baton-profile.XXXXXX)
cleanup() { for p in $PROXIES; do bash "$B/proxyctl.sh" stop "$p" >/dev/null 2>&1 || true; done; bash "$B/backend.sh" stop; rm -rf "$W"; }
trap cleanup EXIT
bash "$B/backend.sh" start >/dev/null
LP=19300
for p in $PROXIES; do
  LP=$((LP + 2))
  bash "$B/proxyctl.sh" start "$p" $LP 18080 >/dev/null
  # the process that does the proxying: baton and HAProxy are one process; nginx's worker
  pid=$(cat /tmp/bench/run/$p/pid)
  [ "$p" = nginx ] && pid=$(pgrep -P "$pid" | head -1)
  for load in ka close; do
    hdr=(); [ $load = close ] && hdr=(-H 'Connection: close')
    taskset -c 0 wrk -t1 -c50 -d2s "${hdr[@]}" http://127.0.0.1:$LP/100b >/dev/null   # warm-up
    nstat -n
    t0=$(awk '{print $14 + $15}' /proc/$pid/stat)
    taskset -c 0 wrk -t1 -c50 -d${DUR}s "${hdr[@]}" http://127.0.0.1:$LP/100b > "$W/wrk" &
    wp=$!
    perf record -q -o "$W/perf.data" -C 1 -g -- sleep $((DUR - 2)) >/dev/null 2>&1
    wait $wp
    t1=$(awk '{print $14 + $15}' /proc/$pid/stat)
    segs=$(nstat | awk '$1 == "TcpOutSegs" {print $2}')
    reqs=$(awk '/requests in/ {print $1}' "$W/wrk")
    perf report -i "$W/perf.data" --comm "$(cat /proc/$pid/comm)" --children --sort sym --stdio -g none 2>/dev/null > "$W/sym"
    python3 - "$p" "$load" "$DUR" "$reqs" "$((t1 - t0))" "$(getconf CLK_TCK)" "$segs" "$W/sym" <<'PY'
import re, sys
p, load, dur, reqs, ticks, hz, segs, sym = sys.argv[1:]
reqs, cpu = int(reqs), int(ticks) / int(hz)
us = 1e6 * cpu / reqs
kern = user = 0.0
calls = {}
for l in open(sym):
    # children%  self%  [k] kernel symbol | [.] user-space symbol: the self column sums to 100
    m = re.match(r'\s*[\d.]+%\s+([\d.]+)%\s+\[(k|\.)\]', l)
    if m:
        if m.group(2) == 'k': kern += float(m.group(1))
        else: user += float(m.group(1))
    # (writev's entry is inlined into the dispatcher: count it by do_writev)
    m = re.match(r'\s*([\d.]+)%\s+[\d.]+%\s+\[k\] (?:__x64_sys_(\w+)|do_(writev))\s*$', l)
    if m:
        name = m.group(2) or m.group(3)
        calls[name] = max(calls.get(name, 0), float(m.group(1)))
tot = kern + user or 1
top = ", ".join(f"{k} {v / tot * 100:.0f}%" for k, v in sorted(calls.items(), key=lambda kv: -kv[1])[:8])
print(f"{p:8} {load:5} {reqs / int(dur):8.0f} req/s  {us:6.1f} µs CPU/req  {int(segs) / reqs:4.1f} segs/req  "
      f"kernel {kern / tot * 100:4.1f}% = {us * kern / tot:6.1f} µs/req, user {us * user / tot:5.1f} µs/req")
print(f"{'':14} system calls (share of the proxy's samples): {top}")
PY
  done
  bash "$B/proxyctl.sh" stop "$p" >/dev/null
done
