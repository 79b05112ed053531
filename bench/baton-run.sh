#!/usr/bin/env bash
# baton-run.sh LISTEN_PORT UPSTREAM_PORT RUNDIR [extra "baton" settings as JSON members]
# Writes a one-listener baton config for the peer harness and execs baton (same PID), so
# proxyctl.sh can start, signal and stop it like any other proxy. BATON_BENCH_ROUTED=1: the
# listener picks its cluster by a tcp_proxy route (127.0.0.0/8) and the cluster runs active
# health checks (every second), to measure what routes and checks cost. BATON_BENCH_WILDCARD=1:
# the listener is 0.0.0.0 (a dual-stack socket on [::]; the IPv4 load arrives v4-mapped).
set -eu
LP=$1; UP=$2; RD=$3; EXTRA=${4:-}
B=$(cd "$(dirname "$0")/.." && pwd)
PROXY='"cluster":"origin"'
CHECK=''
if [ -n "${BATON_BENCH_ROUTED:-}" ]; then
  PROXY='"routes":[{"cluster":"origin","SourceAddrs":[{"address":"127.0.0.0","length":8}],"DestinationAddrs":[{"address":"127.0.0.1","length":32}],"SourcePort":"1-65535","DestinationPort":"1-65535"}]'
  CHECK='"health_check":{"service_name":"origin","interval":"1s"},'
fi
LADDR=127.0.0.1
[ -n "${BATON_BENCH_WILDCARD:-}" ] && LADDR=0.0.0.0
BIN=${BATON_BIN:-$B/target/x86_64-unknown-linux-musl/release/baton}
mkdir -p "$RD"
cat > "$RD/baton.json" <<JSON
{"servers":[{"default_log_level":"WARN","listeners":[{"name":"bench","address":"$LADDR:$LP","bind_port":true,
  "filter_chains":[{"filters":[{"type":"tcp_proxy","config":{$PROXY}}]}]}]}],
 "cluster_manager":{"clusters":[{"name":"origin",$CHECK"lb_type":"LB_ROUNDROBIN","hosts":[{"address":"127.0.0.1:$UP"}]}]},
 "admin":{"address":{"socket_address":{"address":"127.0.0.1","port_value":$((LP + 1000))}}},
 "baton":{"runtime_dir":"$RD/run","pid_file":"$RD/baton.pid","max_connections":1200,"backlog":4096,"idle_timeout":"10m"$EXTRA}}
JSON
exec "$BIN" -c "$RD/baton.json"
