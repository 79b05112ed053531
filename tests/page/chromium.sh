#!/usr/bin/env bash
# tests/page/chromium.sh : the status page (GET / on the admin port) in a real headless
# Chromium (Debian's `chromium`, installed here if missing). baton (BATON_BIN, the static
# x86_64 build) runs on loopback with listeners, a live host and a dead one, an access log, and
# a hot restart behind it. Checks what Chromium renders (the DOM after parsing: headings, rows,
# health), that the page needs no script, its size and answer time against the admin's limits
# (128 KiB response, 5 s), and takes screenshots at phone and desktop widths (kept in
# target/status-page-*.png) that must be real images of the page's size.
# Prints "ok - ..." / "not ok - ..." and "status-page: N passed, M failed".
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
if ! command -v chromium >/dev/null 2>&1; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=600 update -qq || echo "warning: apt-get update reported errors" >&2
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium >/dev/null
fi
BATON=${BATON_BIN:-$REPO/target/release/baton}
if [ ! -x "$BATON" ]; then
	(cd "$REPO" && cargo build --release --locked)
fi
OUT=$REPO/target
mkdir -p "$OUT"

T=$(mktemp -d "${TMPDIR:-/tmp}/baton-page.XXXXXX")
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	# baton's hot-restart generations and Chromium's helpers carry $T in their command lines
	for p in $(pgrep -f -- "$T" || true); do [ "$p" != $$ ] && kill -KILL "$p" 2>/dev/null || true; done
	rm -rf "$T"
}
trap cleanup EXIT

. "$REPO/tests/tools/check.sh"
has() { grep -qF -- "$2" <<<"$1" || { echo "#   no \"$2\"" >&2; return 1; }; }

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
APORT=$(port) L1=$(port) L2=$(port) DEAD=$(port)
# a live upstream: an echo server
python3 "$REPO/tests/tools/echo.py" 0 >"$T/echo.port" & PIDS+=($!); disown
for _ in $(seq 50); do [ -s "$T/echo.port" ] && break; sleep 0.1; done
LIVE=$(cat "$T/echo.port")
cat >"$T/baton.json" <<EOF
{
  "servers": [{ "listeners": [
    { "name": "modbus", "address": "127.0.0.1:$L1", "bind_port": true,
      "access_logs": [{ "log_path": "$T/access.log" }],
      "filter_chains": [{ "filters": [{ "type": "tcp_proxy", "config": { "cluster": "plc" } }] }] },
    { "name": "mqtt", "address": "127.0.0.1:$L2", "bind_port": true,
      "filter_chains": [{ "filters": [{ "type": "tcp_proxy", "config": { "cluster": "broker" } }] }] } ] }],
  "cluster_manager": { "clusters": [
    { "name": "plc", "hosts": [{ "address": "127.0.0.1:$LIVE" }] },
    { "name": "broker", "lb_type": "LB_ROUNDROBIN", "hosts": [{ "address": "127.0.0.1:$LIVE", "weight": 2 }, { "address": "127.0.0.1:$DEAD" }] } ] },
  "admin": { "address": { "socket_address": { "address": "127.0.0.1", "port_value": $APORT } } },
  "baton": { "fail_threshold": 1 }
}
EOF
"$BATON" -c "$T/baton.json" --runtime-dir "$T/run" 2>"$T/baton.log" & PIDS+=($!); disown
for _ in $(seq 100); do python3 -c "import socket; socket.create_connection(('127.0.0.1', $APORT), 1)" 2>/dev/null && break; sleep 0.1; done
# a hot restart first (the history shows it), then traffic through both listeners (one client
# meets the dead host and fails over)
"$BATON" reload -c "$T/baton.json" --runtime-dir "$T/run" >/dev/null
python3 -c '
import socket, sys
for port in (int(sys.argv[1]),) * 3 + (int(sys.argv[2]),) * 4:
    s = socket.create_connection(("127.0.0.1", port), 5); s.sendall(b"x" * 1000); s.shutdown(socket.SHUT_WR)
    while s.recv(65536): pass
' "$L1" "$L2"

# size and answer time, as the admin serves it
read -r size ms ctype < <(python3 -c '
import sys, time, urllib.request
t = time.time(); r = urllib.request.urlopen("http://127.0.0.1:%s/" % sys.argv[1], timeout=5); body = r.read()
print(len(body), int((time.time() - t) * 1000), r.headers["Content-Type"].replace(" ", ""))' "$APORT")
check "the page is served as text/html; charset=utf-8" test "$ctype" = "text/html;charset=utf-8"
check "the page is within the admin's 128 KiB response ($size bytes)" test "$size" -lt 131072
check "the page answers within the admin's 5 s (${ms} ms)" test "$ms" -lt 5000

URL="http://127.0.0.1:$APORT/"
chrome() { timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
	--user-data-dir="$T/chrome" --hide-scrollbars "$@" 2>>"$T/chrome.log"; }
dom=$(chrome --dump-dom "$URL" || true)
check "Chromium renders the page (a DOM came back)" has "$dom" "<h1>baton "
check "no script on the page" test "$(grep -c '<script' <<<"$dom" || true)" -eq 0
check "both listeners are rows" has "$dom" "<td>modbus</td><td>127.0.0.1:$L1</td><td>plc</td>"
check "the dead host is shown down, with its reason" has "$dom" "<td>127.0.0.1:$DEAD</td><td class=\"n\">1</td><td class=\"down\">down (passive)</td>"
check "the live host is shown up" has "$dom" "<td>127.0.0.1:$LIVE</td><td class=\"n\">2</td><td class=\"up\">up</td>"
check "the counters are there (7 accepted)" has "$dom" "<b>7</b><span>accepted</span>"
check "the hot restart is in the history" has "$dom" "took over from"
check "the cold start is in the history" has "$dom" "cold start, pid"
check "the access log is counted" has "$dom" "Access log: 3 lines written, 0 dropped."

png_size() { python3 -c '
import struct, sys
b = open(sys.argv[1], "rb").read(24)
assert b[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
print(*struct.unpack(">II", b[16:24]))' "$1"; }
for shot in phone:412,915 desktop:1280,900; do
	name=${shot%%:*} size=${shot#*:}
	png=$OUT/status-page-$name.png
	rm -f "$png"
	chrome --screenshot="$png" --window-size="$size" "$URL" >/dev/null || true
	dims=$(png_size "$png" 2>/dev/null || echo "none")
	check "screenshot at $name width: ${size/,/x} ($dims)" test "$dims" = "${size/,/ }"
	# a blank page compresses to almost nothing; the page's text and tables do not
	bytes=$(wc -c <"$png" 2>/dev/null || echo 0)
	check "the $name screenshot shows content ($bytes bytes)" test "$bytes" -gt 15000
done

finish status-page
