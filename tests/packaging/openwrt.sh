#!/usr/bin/env bash
# tests/packaging/openwrt.sh : board/openwrt/baton.init under OpenWrt's own /etc/rc.common,
# /lib/functions.sh, /lib/functions/procd.sh and libubox's jshn (vendored in
# ../shared/vendor/openwrt, run by its run-initscript.sh with a recording stand-in for ubus),
# with the real baton binary where the script calls it. Asserts on the JSON procd would
# receive for start, reload, stop and restart, on `check`, and that stop ends every baton
# process of the runtime directory (stand-ins with the same arguments, one ignoring SIGTERM)
# and nothing else. Prints "ok - ..." / "not ok - ..." and "openwrt-init: N passed, M failed".
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
VENDOR=$REPO/../shared/vendor/openwrt
[ -x "$VENDOR/run-initscript.sh" ] || { echo "openwrt-init: no $VENDOR/run-initscript.sh" >&2; exit 2; }
VENDOR=$(cd "$VENDOR" && pwd)

# prerequisites of run-initscript.sh (it builds libubox's jshn once), installed only if missing
need=()
for t in cmake:cmake gcc:gcc pkg-config:pkg-config busybox:busybox flock:util-linux python3:python3; do
	command -v "${t%%:*}" >/dev/null 2>&1 || need+=("${t#*:}")
done
pkg-config --exists json-c 2>/dev/null || need+=(libjson-c-dev)
if [ ${#need[@]} -gt 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=600 update -qq || echo "warning: apt-get update reported errors" >&2
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need[@]}" >/dev/null
fi

BATON=${BATON_BIN:-$REPO/target/release/baton}
if [ ! -x "$BATON" ]; then
	(cd "$REPO" && cargo build --release --locked)
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/baton-openwrt.XXXXXX")
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	rm -rf "$T"
}
trap cleanup EXIT

. "$REPO/tests/tools/check.sh"

# the shipped script with its paths pointed into $T (the variables procd itself never sees)
CONF=$T/etc/baton/baton.json
RUNDIR=$T/run/baton
PIDFILE=$T/run/baton.pid
mkdir -p "$T/etc/baton" "$T/run" "$T/jsonfilter"
sed -e "s#^PROG=.*#PROG=$BATON#" -e "s#^CONF=.*#CONF=$CONF#" \
	-e "s#^RUNDIR=.*#RUNDIR=$RUNDIR#" -e "s#^PIDFILE=.*#PIDFILE=$PIDFILE#" \
	"$REPO/board/openwrt/baton.init" >"$T/baton"
for v in "PROG=$BATON" "CONF=$CONF" "RUNDIR=$RUNDIR" "PIDFILE=$PIDFILE"; do
	grep -qx -- "$v" "$T/baton" || { echo "openwrt-init: could not set $v in the init script copy" >&2; exit 2; }
done

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
write_config() { # write_config MAX_CONNECTIONS SPLICE [EXTRA_BATON_KEY]
	cat >"$CONF" <<EOF
{
  "servers": [{ "listeners": [{ "name": "svc", "address": "127.0.0.1:$port", "bind_port": true,
    "filter_chains": [{ "filters": [{ "type": "tcp_proxy", "config": { "cluster": "local" } }] }] }] }],
  "cluster_manager": { "clusters": [{ "name": "local", "hosts": [{ "address": "127.0.0.1:9" }] }] },
  "baton": { "runtime_dir": "$RUNDIR", "max_connections": $1, "splice": $2${3:+, $3} }
}
EOF
}

# jsonfilter is not in the vendored tree: a stand-in for the calls the script makes
# (-q, -i FILE, -e @.a.b), printing values as OpenWrt's jsonfilter does (strings bare,
# numbers and booleans as JSON) and exiting 1 when nothing matches
cat >"$T/jsonfilter/jsonfilter" <<'EOF'
#!/usr/bin/env python3
import json, sys
args, src, exprs = sys.argv[1:], None, []
while args:
    a = args.pop(0)
    if a == "-i": src = args.pop(0)
    elif a == "-e": exprs.append(args.pop(0))
try:
    doc = json.load(open(src) if src else sys.stdin)
except (OSError, ValueError):
    sys.exit(126)
rc = 0
for e in exprs:
    v = doc
    for k in e.lstrip("@$").strip(".").split("."):
        v = v.get(k) if isinstance(v, dict) else None
    if v is None:
        rc = 1
    else:
        print(v if isinstance(v, str) else json.dumps(v))
sys.exit(rc)
EOF
chmod +x "$T/jsonfilter/jsonfilter"

# run ACTION [jsonfilter]: runs the init script; sets rc, out, err, calls (the ubus calls)
n=0
run() {
	n=$((n + 1))
	local extra=
	[ "${2:-}" = jsonfilter ] && extra=$T/jsonfilter
	set +e
	OPENWRT_ROOT=$T/root OPENWRT_SERVICE_NAME=baton OPENWRT_UBUS_LOG=$T/ubus-$n.log \
		OPENWRT_EXTRA_PATH=$extra "$VENDOR/run-initscript.sh" "$T/baton" "$1" \
		>"$T/out-$n" 2>"$T/err-$n"
	rc=$?
	set -e
	out=$(cat "$T/out-$n"); err=$(cat "$T/err-$n"); calls=$(cat "$T/ubus-$n.log")
}
mkdir -p "$T/root"

# json_get EXPR: evaluates a Python expression on the first `ubus call service set` message (j)
json_get() {
	CALLS=$calls python3 -c '
import json, os, sys
for line in os.environ["CALLS"].splitlines():
    f = line.split("\t")
    if f[:3] == ["call", "service", "set"]:
        j = json.loads(f[3]); inst = j["instances"]["instance1"]
        print(json.dumps(eval(sys.argv[1])))
        break
' "$1"
}
has() { grep -qF -- "$2" <<<"$1" || { echo "#   no \"$2\" in: $1" >&2; return 1; }; }
lacks() { ! grep -qF -- "$2" <<<"$1" || { echo "#   unexpected \"$2\" in: $1" >&2; return 1; }; }
methods() { cut -f1-3 <<<"$calls" | tr '\t' ' ' | paste -sd, -; }

# ---- start
write_config 512 false
run start
check "start exits 0" eq "$rc" 0
check "start sends one 'service set' and nothing else" eq "$(methods)" "call service set"
check "service name is baton" eq "$(json_get 'j["name"]')" '"baton"'
check "command line: baton -c CONF --runtime-dir RUNDIR --pid-file PIDFILE" \
	eq "$(json_get 'inst["command"]')" "$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' \
		"$BATON" -c "$CONF" --runtime-dir "$RUNDIR" --pid-file "$PIDFILE")"
check "respawn 3600 5 5 (threshold, delay, retries)" eq "$(json_get 'inst["respawn"]')" '["3600", "5", "5"]'
check "limits nofile: 2 x 1024 + 128 when jsonfilter is missing (default max_connections)" \
	eq "$(json_get 'inst["limits"]')" '{"nofile": "2176 2176"}'
check "file: the config, so a re-registration with a changed file signals the instance" \
	eq "$(json_get 'inst["file"]')" "[\"$CONF\"]"
check "reload_signal 1 (SIGHUP): procd signals instead of restarting on a changed file" \
	eq "$(json_get 'inst.get("reload_signal")')" 1
check "stdout and stderr go to syslog" eq "$(json_get '[inst.get("stdout"), inst.get("stderr")]')" '[true, true]'
check "no trigger is registered (nothing would fire it: the config is not UCI)" eq "$(json_get 'j["triggers"]')" '[]'

run start jsonfilter
check "limits nofile with jsonfilter: 2 x max_connections (512) + 128" eq "$(json_get 'inst["limits"]')" '{"nofile": "1152 1152"}'
write_config 512 true
run start jsonfilter
check "limits nofile with splice: 6 x 512 + 128" eq "$(json_get 'inst["limits"]')" '{"nofile": "3200 3200"}'
write_config 512 false

# ---- check and reload
alive() { # alive PID: the process exists and is not a zombie
	local s
	s=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
	[ -n "$s" ] && [ "$s" != Z ] && [ "$s" != X ]
}
dead() { ! alive "$1"; }
run check
check "check on a good config exits 0 and prints ok" eq "$rc/$out" "0/ok"
check "check sends nothing to procd" eq "$calls" ""
# reload talks to the running baton: one runs here, as procd would run it
"$BATON" -c "$CONF" --runtime-dir "$RUNDIR" --pid-file "$PIDFILE" 2>"$T/reload.log" & rbaton=$!; disown "$rbaton"; PIDS+=("$rbaton")
for _ in $(seq 100); do [ -s "$PIDFILE" ] && break; sleep 0.1; done
run reload
check "reload on a good config exits 0" eq "$rc" 0
check "reload reports the new process serving, same PID" matches "$out" "^pid $rbaton took over and serves; pid [0-9]+ drains$"
check "reload needs nothing from procd" eq "$calls" ""
write_config 512 false '"max_conections": 10'
run check
check "check on a bad config fails" test "$rc" -ne 0
check "check shows baton's error (the bad key) on stderr" has "$err" "max_conections"
check "check prints no ok for a bad config" eq "$out" ""
run reload
check "reload on a bad config fails" test "$rc" -ne 0
check "reload on a bad config sends nothing to procd" eq "$calls" ""
check "reload shows baton's error on stderr" has "$err" "max_conections"
check "reload says nothing was changed" has "$err" "nothing was changed"
check "the running baton still serves" alive "$rbaton"
kill -KILL "$rbaton"
for _ in $(seq 50); do alive "$rbaton" || break; sleep 0.1; done
rm -f "$PIDFILE" # SIGKILL left it
write_config 512 false

run help
check "help lists check" has "$out$err" "check"

# ---- stop: procd's own process (the recorded command, run for real), two processes with the
# same runtime directory (one ignores SIGTERM, as a stuck old generation would) and one of
# another runtime directory that must survive
run start
mapfile -d '' cmd < <(CALLS=$calls python3 -c '
import json, os, sys
for line in os.environ["CALLS"].splitlines():
    f = line.split("\t")
    if f[:3] == ["call", "service", "set"]:
        sys.stdout.write("".join(a + "\0" for a in json.loads(f[3])["instances"]["instance1"]["command"]))
')
# run it only when it is confined to this test's directories (never the host's /var/run)
case " ${cmd[*]} " in
	*" --runtime-dir $RUNDIR --pid-file $PIDFILE "*) ;;
	*) echo "openwrt-init: the recorded command line is not confined to $T; not running it" >&2
		cmd=(sleep 600) ;;
esac
"${cmd[@]}" 2>"$T/baton.log" & main=$!; disown "$main"; PIDS+=("$main")
for _ in $(seq 100); do [ -s "$PIDFILE" ] && break; sleep 0.1; done
check "procd's command line runs baton (PID file written)" eq "$(cat "$PIDFILE" 2>/dev/null)" "$main"
sleeper='import signal, sys, time
if sys.argv[1] == "ignore-term": signal.signal(signal.SIGTERM, signal.SIG_IGN)
time.sleep(600)'
python3 -c "$sleeper" plain -c "$CONF" --runtime-dir "$RUNDIR" --pid-file "$PIDFILE" & drain1=$!; disown "$drain1"; PIDS+=("$drain1")
python3 -c "$sleeper" ignore-term -c "$CONF" --runtime-dir "$RUNDIR" & drain2=$!; disown "$drain2"; PIDS+=("$drain2")
python3 -c "$sleeper" plain -c "$CONF" --runtime-dir "${RUNDIR}2" & other=$!; disown "$other"; PIDS+=("$other")
sleep 0.5
t0=$(date +%s%N)
run stop
t1=$(date +%s%N)
check "stop exits 0" eq "$rc" 0
check "stop asks procd to delete the service" eq "$(methods)" "call service delete"
check "stop ends baton (procd's instance)" dead "$main"
check "stop ends a process draining in the same runtime dir" dead "$drain1"
check "stop kills one that ignores SIGTERM" dead "$drain2"
check "stop leaves a process of another runtime dir alone" alive "$other"
ms=$(((t1 - t0) / 1000000))
check "stop returns within procd's 5 s respawn delay (${ms} ms)" test "$ms" -lt 5000
run stop
check "stop with nothing running exits 0 and only deletes" eq "$rc/$(methods)" "0/call service delete"

# ---- restart: stop, then start
run restart
check "restart exits 0" eq "$rc" 0
check "restart deletes, then sets the service" eq "$(methods)" "call service delete,call service set"

finish openwrt-init
