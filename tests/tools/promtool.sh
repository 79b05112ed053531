#!/usr/bin/env bash
# tests/tools/promtool.sh : prints the path of promtool (Prometheus' own checker), taken from
# Debian's `prometheus` package, which is downloaded and unpacked under target/tools, not
# installed (installing it would start a Prometheus server). Idempotent; tests/run.sh runs it
# once and exports BATON_PROMTOOL, and tests/metrics.rs runs it when that is not set.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
dir=$REPO/target/tools/prometheus
bin=$dir/usr/bin/promtool
mkdir -p "$REPO/target/tools"
exec 9>"$REPO/target/tools/.promtool.lock"
flock 9
if [ ! -x "$bin" ]; then
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	if ! (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1); then
		apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null 2>&1 || true
		(cd "$tmp" && apt-get download prometheus >/dev/null)
	fi
	rm -rf "$dir"
	mkdir -p "$dir"
	dpkg-deb -x "$tmp"/prometheus_*.deb "$dir"
fi
"$bin" --version >/dev/null 2>&1 || { echo "promtool at $bin does not run" >&2; exit 1; }
echo "$bin"
