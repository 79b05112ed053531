#!/usr/bin/env bash
# tests/packaging/sysv-init.sh : board/rootfs/etc/init.d/S50baton on the host under BusyBox sh,
# with the real baton binary on loopback and every path in a temporary directory (the script's
# /etc/default/baton is pointed at a temporary overrides file). Checks start, reload, restart,
# stop and status, that the PID the script waits on is baton's own, and the logging: baton's
# output reaches `logger -t baton` (a recording stand-in here) and no file; without a logger
# command it goes to LOGFILE, which is rotated at LOG_SIZE; the log sinks end with baton.
# Prints "ok - ..." / "not ok - ..." and "sysv-init: N passed, M failed".
# (The same script runs in the QEMU firmware image under the real BusyBox logger and syslogd:
# cross/test-system.sh.)
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
if ! command -v busybox >/dev/null 2>&1; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=600 update -qq || echo "warning: apt-get update reported errors" >&2
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq busybox >/dev/null
fi
BB=$(command -v busybox)
BATON=${BATON_BIN:-$REPO/target/release/baton}
if [ ! -x "$BATON" ]; then
	(cd "$REPO" && cargo build --release --locked)
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/baton-sysv.XXXXXX")
# every process this test caused has $T in its command line (baton, the log sinks)
ours() {
	local d
	for d in /proc/[0-9]*; do
		case "$({ tr '\0' ' ' <"$d/cmdline"; } 2>/dev/null)" in
			*"$T"*) echo "${d#/proc/}" ;;
		esac
	done
}
cleanup() {
	local p
	for p in $(ours); do
		if [ "$p" != $$ ]; then kill -KILL "$p" 2>/dev/null || true; fi
	done
	rm -rf "$T"
}
trap cleanup EXIT

. "$REPO/tests/tools/check.sh"
has() { grep -qF -- "$2" "$1" 2>/dev/null || { echo "#   no \"$2\" in $1" >&2; return 1; }; }

mkdir -p "$T/run" "$T/log" "$T/bin" "$T/bb"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
LPORT=$(port) APORT=$(port)
CONF=$T/baton.json
write_config() { # write_config [EXTRA_BATON_KEY]
	cat >"$CONF" <<EOF
{
  "servers": [{ "listeners": [{ "name": "svc", "address": "127.0.0.1:$LPORT", "bind_port": true,
    "filter_chains": [{ "filters": [{ "type": "tcp_proxy", "config": { "cluster": "local" } }] }] }] }],
  "cluster_manager": { "clusters": [{ "name": "local", "hosts": [{ "address": "127.0.0.1:9" }] }] },
  "admin": { "address": { "socket_address": { "address": "127.0.0.1", "port_value": $APORT } } },
  "baton": { "max_connections": 64, "drain_timeout": "2s"${1:+, $1} }
}
EOF
}
write_config
cat >"$T/defaults" <<EOF
DAEMON="$BATON"
CONFIG="$CONF"
PIDFILE="$T/run/baton.pid"
RUNDIR="$T/run/baton"
LOGFILE="$T/log/baton.log"
LOG_SIZE=1024
STOP_TIMEOUT=5
EOF
sed "s#/etc/default/\$DAEMON#$T/defaults#g" "$REPO/board/rootfs/etc/init.d/S50baton" >"$T/S50baton"
grep -qF "$T/defaults" "$T/S50baton" || { echo "sysv-init: could not point the script at $T/defaults" >&2; exit 2; }

# the logger stand-in records its arguments and every line it is given
cat >"$T/bin/logger" <<EOF
#!/bin/sh
echo "args: \$*" >>"$T/log/syslog"
while IFS= read -r l; do echo "line: \$l" >>"$T/log/syslog"; done
EOF
chmod +x "$T/bin/logger"
# for the fallback: a PATH with BusyBox's applets but no logger
for a in cat kill tr setsid mkfifo rm sleep mkdir dirname wc mv; do ln -s "$BB" "$T/bb/$a"; done

S() { # S ACTION [PATH]: runs the script; sets rc and out
	set +e
	out=$(timeout 60 env PATH="${2:-$T/bin:$PATH}" "$BB" sh "$T/S50baton" "$1" 2>&1)
	rc=$?
	set -e
}
owner() { cat "$T/run/baton.pid" 2>/dev/null || true; }
batons() { # PIDs of baton processes of this runtime dir
	local d
	for d in /proc/[0-9]*; do
		case "$({ tr '\0' ' ' <"$d/cmdline"; } 2>/dev/null)" in
			*"--runtime-dir $T/run/baton "*) echo "${d#/proc/}" ;;
		esac
	done
}
sinks() { # PIDs of log sinks (the logger stand-in, or the script's own fallback reader)
	local d
	for d in /proc/[0-9]*; do
		case "$({ tr '\0' ' ' <"$d/cmdline"; } 2>/dev/null)" in
			*"$T/bin/logger"*|*"$T/S50baton"*) echo "${d#/proc/}" ;;
		esac
	done
}
stats() { python3 -c '
import json, sys, urllib.request
print(json.load(urllib.request.urlopen("http://127.0.0.1:%s/stats" % sys.argv[1], timeout=5))[sys.argv[2]])' "$APORT" "$1"; }
wait_gone() { # wait_gone FUNCTION: until it prints nothing, at most 5 s
	for _ in $(seq 50); do [ -z "$($1)" ] && return 0; sleep 0.1; done
	return 1
}

# ---- syslog through logger
S start
check "start: OK with the PID" matches "$out" "^Starting baton: OK \(pid ([0-9]+)\)$"
pid=$(owner)
check "the PID file names a running baton" matches "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" "^$BATON -c "
check "baton's stderr is a pipe to the log sink, not a file" \
	matches "$(readlink "/proc/$pid/fd/2")" "^$T/run/baton\.log\.[0-9]+ \(deleted\)$"
check "the FIFO's name is gone" eq "$(compgen -G "$T/run/baton.log.*" || true)" ""
sleep 0.5
check "logger is run as logger -t baton -p daemon.info" has "$T/log/syslog" "args: -t baton -p daemon.info"
check "baton's log lines reach logger" has "$T/log/syslog" "serving (pid $pid"
check "no log file is written" eq "$(ls "$T/log")" "syslog"
S start
check "start again: already running" eq "$rc/$out" "0/Starting baton: already running (pid $pid)"
gen=$(stats generation)
S status
check "status: baton status's table" matches "$rc/$out" "^0/baton [0-9.]+, pid $pid, generation $gen, serving, up "
check "status: the listener" matches "$out" $'\nsvc +127\\.0\\.0\\.1:'"$LPORT"' +local '
S reload
check "reload: OK once the new process serves, same PID" \
	matches "$rc/$out" "^0/Reloading baton: OK \(pid $pid took over and serves; pid [0-9]+ drains\)$"
check "reload: a hot restart (generation + 1), done when reload returns" eq "$(stats generation)" "$((gen + 1))"
# a reload the running baton cannot complete: a new listener on a port that is taken
TAKEN=$(port)
python3 -c 'import socket, sys, time; s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); time.sleep(30)' "$TAKEN" &
holder=$!
sleep 0.3
cp "$CONF" "$T/good.json"
sed -i "s#\"listeners\": \[#\"listeners\": [{ \"name\": \"extra\", \"address\": \"127.0.0.1:$TAKEN\", \"bind_port\": true, \"filter_chains\": [{ \"filters\": [{ \"type\": \"tcp_proxy\", \"config\": { \"cluster\": \"local\" } }] }] },#" "$CONF"
S reload
check "reload that cannot bind: FAIL with baton's reason" matches "$rc/$out" "^1/Reloading baton: FAIL: hot restart aborted: .*$TAKEN.*keeps serving"
kill "$holder" 2>/dev/null || true
survivor=$(owner)
check "after the failed reload a baton serves and the PID file names it" eq "$(stats pid)" "$survivor"
cp "$T/good.json" "$CONF"
S reload
check "reload after the fix: OK" matches "$rc/$out" "^0/Reloading baton: OK \(pid $survivor took over"
pid=$survivor
S restart
check "restart: OK, a new process" matches "$out" "^Restarting baton: OK \(pid $pid -> ([0-9]+)\)$"
new=$(owner)
check "restart: the PID file names the new process" test "$new" != "$pid"
old_gone() { # the process that was replaced has exited (or is a zombie)
	local s
	for _ in $(seq 50); do
		s=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
		case "$s" in ''|Z|X) return 0 ;; esac
		sleep 0.1
	done
	return 1
}
check "restart: the old process exits" old_gone
write_config '"max_conections": 1'
S reload
check "reload with a bad config fails with baton's error" matches "$rc/$out" "^1/Reloading baton: FAIL: .*max_conections"
check "the running baton keeps serving" eq "$(owner)" "$new"
write_config
S stop
check "stop: OK" eq "$rc/$out" "0/Stopping baton: OK"
check "stop leaves no baton of the runtime dir" wait_gone batons
check "the log sinks end with baton" wait_gone sinks
check "stop removes the PID file" test ! -e "$T/run/baton.pid"
S status
check "status after stop: 3, stopped" eq "$rc/$out" "3/baton is stopped"

# ---- no logger: a bounded file
S start "$T/bb"
check "start without logger: OK" matches "$out" "^Starting baton: OK \(pid [0-9]+\)$"
sleep 0.5
check "without logger, baton's log goes to LOGFILE" has "$T/log/baton.log" "serving (pid $(owner)"
for _ in 1 2 3 4 5 6; do S reload "$T/bb"; S restart "$T/bb"; done
sleep 1
size() { if [ -f "$1" ]; then wc -c <"$1"; else echo 0; fi; }
check "LOGFILE was rotated to LOGFILE.0" test -s "$T/log/baton.log.0"
check "LOGFILE stays bounded ($(size "$T/log/baton.log") bytes, LOG_SIZE 1024)" test "$(size "$T/log/baton.log")" -le 2560
check "LOGFILE.0 stays bounded ($(size "$T/log/baton.log.0") bytes)" test "$(size "$T/log/baton.log.0")" -le 2560
# (right after a rotation LOGFILE is not there until the next line arrives)
only_two() {
	local f
	for f in "$T"/log/*; do
		case ${f##*/} in baton.log | baton.log.0 | syslog) ;; *) echo "#   also kept: ${f##*/}" >&2; return 1 ;; esac
	done
}
check "only LOGFILE and LOGFILE.0 are kept ($(cd "$T/log" && echo *))" only_two
S stop "$T/bb"
check "stop without logger: OK" eq "$rc/$out" "0/Stopping baton: OK"
check "the fallback log sinks end with baton" wait_gone sinks

finish sysv-init
