#!/usr/bin/env bash
# baton-run.sh LISTEN_PORT UPSTREAM_PORT RUNDIR [extra "baton" settings as JSON members]
# Writes a one-listener baton config for the peer harness and execs baton (same PID), so
# proxyctl.sh can start, signal and stop it like any other proxy.
set -eu
LP=$1; UP=$2; RD=$3; EXTRA=${4:-}
B=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BATON_BIN:-$B/target/x86_64-unknown-linux-musl/release/baton}
mkdir -p "$RD"
cat > "$RD/baton.json" <<JSON
{"servers":[{"default_log_level":"WARN","listeners":[{"name":"bench","address":"127.0.0.1:$LP","bind_port":true,
  "filter_chains":[{"filters":[{"type":"tcp_proxy","config":{"cluster":"origin"}}]}]}]}],
 "cluster_manager":{"clusters":[{"name":"origin","lb_type":"LB_ROUNDROBIN","hosts":[{"address":"127.0.0.1:$UP"}]}]},
 "admin":{"address":{"socket_address":{"address":"127.0.0.1","port_value":$((LP + 1000))}}},
 "baton":{"runtime_dir":"$RD/run","pid_file":"$RD/baton.pid","max_connections":1200,"backlog":4096,"idle_timeout":"10m"$EXTRA}}
JSON
exec "$BIN" -c "$RD/baton.json"
