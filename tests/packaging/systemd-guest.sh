#!/bin/bash
# Runs inside the container that tests/packaging/systemd.sh boots (systemd is PID 1), as a
# oneshot unit after multi-user.target; prints "BT-PASS name detail" / "BT-FAIL name detail"
# lines, then "BT-DONE fails=N", and powers the container off.
export SYSTEMD_PAGER='' SYSTEMD_COLORS=0 LC_ALL=C
fails=0
say() { echo "BT-$*"; }
check() { # check NAME STATUS DETAIL
	if [ "$2" = 0 ]; then say "PASS $1 $3"; else say "FAIL $1 $3"; fails=$((fails + 1)); fi
}
mainpid() { systemctl show -P MainPID baton; }
stats() { # GET /stats (python3-minimal has sockets, not urllib)
	python3 -c '
import socket
s = socket.create_connection(("127.0.0.1", 34901), 5); s.sendall(b"GET /stats HTTP/1.0\r\n\r\n")
out = b""
while True:
    d = s.recv(65536)
    if not d: break
    out += d
print(out.decode().split("\r\n\r\n", 1)[-1])' 2>/dev/null
}
listening() { ss -Hltn "sport = :$1" | grep -q LISTEN; }
batons() { pgrep -x baton | wc -l; }

say "INFO $(systemctl --version | head -1); $(/usr/bin/baton --version)"
systemd-analyze verify /usr/lib/systemd/system/baton.service 2>&1 | sed 's/^/BT-INFO verify: /'

# an upstream: an echo server
python3 /usr/local/lib/baton-echo.py 15021 >/dev/null &
for _ in $(seq 50); do listening 15021 && break; sleep 0.1; done

# 1. start (Type=notify: active only once it serves, so the listeners are up when start returns)
systemctl start baton; rc=$?
check start "$rc" "is-active=$(systemctl is-active baton)"
listening 15020 && listening 34901; check ready-only-once-listening $? "15020 and 34901 listen when start returns"
pid1=$(mainpid)
[ "$(cat /run/baton/baton.pid 2>/dev/null)" = "$pid1" ]; check pid-file-names-mainpid $? "MainPID=$pid1"

# 2. reload under load: a hot restart, MainPID unchanged, no connection fails
python3 /usr/local/lib/baton-load.py 15020 /tmp/load.result &
load=$!
sleep 1
systemctl reload baton; rc1=$?
sleep 0.5
systemctl reload baton; rc2=$?
sleep 0.5
kill -TERM "$load"; wait "$load"
check reload "$((rc1 + rc2))" "two reloads: rc $rc1, $rc2"
[ "$(mainpid)" = "$pid1" ]; check reload-keeps-mainpid $? "MainPID $pid1 -> $(mainpid)"
case $(stats) in *'"generation":2'*) r=0 ;; *) r=1 ;; esac
check reload-is-a-hot-restart $r "generation 2 after two reloads"
read -r ok failed < /tmp/load.result
[ "${failed:-1}" = 0 ] && [ "${ok:-0}" -gt 0 ]; check no-failed-connection-under-load $? "$ok ok, $failed failed"

# 3. a reload with a bad config: reported by systemctl, the running baton serves on
cp /etc/baton/baton.json /tmp/good.json
sed -i 's/"max_connections"/"max_conections"/' /etc/baton/baton.json
systemctl reload baton >/dev/null 2>&1; rc=$?
[ "$rc" != 0 ]; check bad-config-reload-fails $? "systemctl reload rc=$rc"
journalctl -u baton -n 20 --no-pager -o cat | grep -q "max_conections"; check failure-reason-in-the-journal $? ""
systemctl is-active -q baton && [ "$(mainpid)" = "$pid1" ]; check old-process-serves-on $? "MainPID=$(mainpid)"
case $(stats) in *'"generation":2'*) r=0 ;; *) r=1 ;; esac
check generation-unchanged $r ""
cp /tmp/good.json /etc/baton/baton.json

# 4. restart
systemctl restart baton; rc=$?
pid4=$(mainpid)
[ "$rc" = 0 ] && [ "$pid4" != "$pid1" ] && [ "$pid4" != 0 ]; check restart $? "MainPID $pid1 -> $pid4"
# the sandbox: baton runs as a user of its own, not root, with only CAP_NET_BIND_SERVICE
user=$(ps -o user= -p "$pid4" 2>/dev/null | tr -d ' ')
caps=$(grep CapEff "/proc/$pid4/status" 2>/dev/null | awk '{print $2}')
[ "$user" = baton ] && [ "$caps" = 0000000000000400 ]; check runs-as-baton-with-only-net-bind-service $? "user=$user CapEff=$caps"

# 5. stop with a generation still draining (transfer_connections is off in this config): no
#    process and no socket left
python3 -c 'import socket, time; s = socket.create_connection(("127.0.0.1", 15020)); time.sleep(120)' &
holder=$!
sleep 0.5
systemctl reload baton
sleep 0.5
n=$(batons)
[ "$n" = 2 ]; check a-generation-drains-before-stop $? "$n baton processes"
systemctl stop baton; rc=$?
sleep 0.5
n=$(batons)
[ "$rc" = 0 ] && [ "$n" = 0 ]; check stop-leaves-no-process $? "rc=$rc, $n baton processes left"
left=$(find /run/baton -name '*.sock' 2>/dev/null | wc -l)
[ "$left" = 0 ]; check stop-leaves-no-socket $? "left in /run/baton: $(find /run/baton -mindepth 1 -printf '%f ' 2>/dev/null)"
kill "$holder" 2>/dev/null

say "INFO $(systemd-analyze security baton --no-pager 2>/dev/null | tail -n 1)"

# 7. socket activation: systemd holds the listeners, the first client starts baton
systemctl start baton.socket; rc=$?
check socket-unit-starts "$rc" "$(systemctl is-active baton.socket), service $(systemctl is-active baton)"
[ "$(systemctl is-active baton)" != active ] && listening 15020; check systemd-holds-the-listener $? ""
python3 -c '
import socket
s = socket.create_connection(("127.0.0.1", 15020), 10); s.settimeout(10)
s.sendall(b"activated"); s.shutdown(socket.SHUT_WR)
back = b""
while True:
    d = s.recv(100)
    if not d: break
    back += d
assert back == b"activated", back' 2>/dev/null
check first-client-starts-baton-and-is-served $? "service $(systemctl is-active baton)"
journalctl -u baton -n 30 --no-pager -o cat | grep -q "socket activation: listener socket 127.0.0.1:15020 taken from the supervisor"
check baton-takes-the-passed-sockets $? ""
pid7=$(mainpid)
systemctl reload baton; rc=$?
[ "$rc" = 0 ] && [ "$(mainpid)" = "$pid7" ]; check reload-with-activated-sockets $? "rc=$rc MainPID $pid7 -> $(mainpid)"
systemctl stop baton.socket baton; rc=$?
[ "$rc" = 0 ] && [ "$(batons)" = 0 ] && ! listening 15020; check socket-and-service-stop $? "rc=$rc"

journalctl -b -u baton --no-pager -o cat | tail -n 40 | sed 's/^/BT-LOG /'
say "DONE fails=$fails"
