#!/usr/bin/env bash
# tests/packaging/systemd.sh : board/systemd/baton.service under a real systemd as PID 1. This
# machine's PID 1 is not systemd, so a Debian bookworm root filesystem (systemd 252, built once
# by mmdebstrap from Debian's mirror into target/systemd/rootfs) is booted with
# `systemd-nspawn --boot` (the host's kernel; writes go to a tmpfs overlay). Inside, a oneshot
# unit runs tests/packaging/systemd-guest.sh: start (ready only once listening), two reloads
# under load (MainPID unchanged, no failed connection), a reload with a bad config (reported,
# the old process serves on), restart, and stop with a generation still draining (no process,
# no socket left). Installs systemd-container and mmdebstrap. BATON_BIN: the static x86_64 build.
# Prints "ok - ..." / "not ok - ..." and "systemd: N passed, M failed".
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
BATON=${BATON_BIN:-$REPO/target/x86_64-unknown-linux-musl/release/baton}
[ -x "$BATON" ] || { echo "systemd: no baton binary at $BATON (run cross/build.sh)" >&2; exit 2; }
if ! command -v systemd-nspawn >/dev/null || ! command -v mmdebstrap >/dev/null; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=600 update -qq || echo "warning: apt-get update reported errors" >&2
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends systemd-container mmdebstrap >/dev/null
fi

ROOTFS=$REPO/target/systemd/rootfs
if [ ! -f "$ROOTFS/.complete" ]; then
	rm -rf "$ROOTFS"
	mkdir -p "$(dirname "$ROOTFS")"
	t0=$(date +%s)
	# shellcheck disable=SC2016 # the hook's $1 is mmdebstrap's, expanded by its shell
	mmdebstrap --variant=apt --mode=root --arch=amd64 \
		--include=systemd,systemd-sysv,iproute2,procps,python3-minimal \
		--dpkgopt=path-exclude=/usr/share/man/* --dpkgopt=path-exclude=/usr/share/doc/* \
		--dpkgopt=path-exclude=/usr/share/locale/* \
		--customize-hook='rm -rf "$1/var/cache/apt/archives/"*.deb "$1/var/lib/apt/lists/"*_Packages' \
		bookworm "$ROOTFS" http://deb.debian.org/debian >"$REPO/target/systemd/mmdebstrap.log" 2>&1
	touch "$ROOTFS/.complete"
	echo "# root filesystem built in $(($(date +%s) - t0)) s"
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/baton-systemd.XXXXXX")
trap 'rm -rf "$T"' EXIT
stage=$T/stage
cp -al "$ROOTFS" "$stage"
install -D -m 0755 "$BATON" "$stage/usr/bin/baton"
install -D -m 0644 "$REPO/board/systemd/baton.service" "$stage/usr/lib/systemd/system/baton.service"
install -D -m 0644 "$REPO/board/systemd/baton.sysusers" "$stage/usr/lib/sysusers.d/baton.conf"
# the shipped socket unit, with the test config's addresses
sed -e '/^ListenStream=/d' -e 's/^\[Socket\]$/[Socket]\nListenStream=127.0.0.1:15020\nListenStream=127.0.0.1:34901/' \
	"$REPO/board/systemd/baton.socket" >"$T/baton.socket"
install -D -m 0644 "$T/baton.socket" "$stage/usr/lib/systemd/system/baton.socket"
install -D -m 0755 "$REPO/tests/packaging/systemd-guest.sh" "$stage/usr/local/sbin/baton-test.sh"
mkdir -p "$stage/etc/baton"
cat >"$stage/etc/baton/baton.json" <<'EOF'
{
  "servers": [{ "listeners": [{ "name": "svc", "address": "127.0.0.1:15020", "bind_port": true,
    "filter_chains": [{ "filters": [{ "type": "tcp_proxy", "config": { "cluster": "echo" } }] }] }] }],
  "cluster_manager": { "clusters": [{ "name": "echo", "hosts": [{ "address": "127.0.0.1:15021" }] }] },
  "admin": { "address": { "socket_address": { "address": "127.0.0.1", "port_value": 34901 } } },
  "baton": { "max_connections": 256, "transfer_connections": false, "drain_timeout": "60s" }
}
EOF
install -D -m 0644 "$REPO/tests/tools/echo.py" "$stage/usr/local/lib/baton-echo.py"
cat >"$stage/usr/local/lib/baton-load.py" <<'EOF'
# checked round trips through baton, one after another, until SIGTERM; writes "ok failed"
import signal, socket, sys
stop = False
def on_term(*_):
    global stop; stop = True
signal.signal(signal.SIGTERM, on_term)
ok = failed = 0
n = 0
while not stop:
    n += 1
    data = (b"%08d" % n) * 128
    try:
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5); s.settimeout(5)
        s.sendall(data); s.shutdown(socket.SHUT_WR)
        back = b""
        while True:
            d = s.recv(65536)
            if not d: break
            back += d
        s.close()
        if back == data: ok += 1
        else: failed += 1
    except OSError:
        failed += 1
open(sys.argv[2], "w").write("%d %d\n" % (ok, failed))
EOF
mkdir -p "$stage/etc/systemd/system/multi-user.target.wants"
cat >"$stage/etc/systemd/system/baton-test.service" <<'EOF'
[Unit]
Description=baton under a real systemd: the test
After=multi-user.target
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/baton-test.sh
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=240
EOF
ln -s /etc/systemd/system/baton-test.service "$stage/etc/systemd/system/multi-user.target.wants/baton-test.service"

# --register=no --keep-unit: no machined or D-Bus on the host; --console=read-only: the
# container's console comes to our stdout
t0=$(date +%s)
timeout -k 5 300 systemd-nspawn -D "$stage" --volatile=overlay --register=no --keep-unit \
	--console=read-only --boot systemd.show_status=error >"$T/console.log" 2>&1 </dev/null || true
echo "# container booted, tested and powered off in $(($(date +%s) - t0)) s"
sed 's/\x1b\[[0-9;]*m//g' "$T/console.log" | tr -d '\r' | grep -aoE "BT-[A-Z]+ .*" >"$T/bt.log" || true
cp "$T/console.log" "$REPO/target/systemd/console.log" 2>/dev/null || true
grep -E '^BT-INFO' "$T/bt.log" | sed 's/^BT-INFO /# /'
passed=$(grep -c '^BT-PASS' "$T/bt.log" || true)
failed=$(grep -c '^BT-FAIL' "$T/bt.log" || true)
sed -n 's/^BT-PASS /ok - /p; s/^BT-FAIL /not ok - /p' "$T/bt.log"
if ! grep -q '^BT-DONE fails=0' "$T/bt.log"; then
	echo "not ok - the guest test did not finish cleanly (target/systemd/console.log)"
	grep '^BT-LOG' "$T/bt.log" | tail -n 20 | sed 's/^/# /'
	failed=$((failed + 1))
fi
echo "systemd: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
