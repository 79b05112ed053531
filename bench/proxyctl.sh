#!/usr/bin/env bash
# proxyctl.sh start|stop|reload|pids NAME [LISTEN_PORT UPSTREAM_PORT]
# Starts/stops/reloads one L4 proxy on 127.0.0.1:LISTEN_PORT -> 127.0.0.1:UPSTREAM_PORT.
# Every proxy runs pinned to $PROXY_CPU (default 1) in its own session (setsid), so stop
# can kill it by process-group id. All PGIDs/PIDs ever started are kept in $RUNDIR/pgids.
# NAMES: haproxy (foreground, 1 thread), haproxy-mw (master-worker, seamless reload via
#   master CLI; expose-fd listeners), haproxy-legacy (daemon, reload = new process -sf old,
#   no -x i.e. no fd passing), nginx (stream module, reload = nginx -s reload),
#   socat (fork; reload = kill whole group + restart), socat-parent (reload = kill only the
#   listening parent + restart; forked children keep their connections),
#   ours (OURS_CMD with %L=listen port, %U=upstream port, %R=rundir; reload = OURS_RELOAD,
#   same substitutions plus %P=pid of the process started by OURS_CMD).
set -u
CMD=$1; NAME=$2; LP=${3:-}; UP=${4:-}
B=$(cd "$(dirname "$0")" && pwd)
PROXY_CPU=${PROXY_CPU:-1}
RUNDIR=/tmp/bench/run/$NAME
mkdir -p "$RUNDIR"
PGIDS=$RUNDIR/pgids

subst() { sed -e "s#@LISTEN@#127.0.0.1:$LP#; s#@UPSTREAM@#127.0.0.1:$UP#; s#@RUNDIR@#$RUNDIR#g" "$1" > "$2"; }
ours_subst() { local s=$1; s=${s//%L/$LP}; s=${s//%U/$UP}; s=${s//%R/$RUNDIR}; s=${s//%P/$(cat $RUNDIR/pid 2>/dev/null)}; echo "$s"; }

launch() { # launch CMD... in new session pinned to PROXY_CPU; record pid
  setsid taskset -c "$PROXY_CPU" "$@" >>"$RUNDIR/log" 2>&1 < /dev/null &
  local p=$!
  echo $p > "$RUNDIR/pid"; echo $p >> "$PGIDS"
}

wait_listen() { # wait until something listens on LP (max 5s)
  for i in $(seq 50); do ss -Hltn "sport = :$1" | grep -q LISTEN && return 0; sleep 0.1; done
  echo "proxyctl: nothing listening on $1" >&2; return 1
}

alive() { # pid exists and is not a zombie (init here may reap late)
  [ -r /proc/$1/stat ] && [ "$(awk '{print $3}' /proc/$1/stat 2>/dev/null)" != Z ]; }
save_ports() { echo "$LP $UP" > "$RUNDIR/ports"; }
load_ports() { read LP UP < "$RUNDIR/ports"; }

case "$CMD" in
start)
  rm -f "$PGIDS" "$RUNDIR/log"; save_ports
  case "$NAME" in
    haproxy)     subst $B/conf/haproxy.cfg.tmpl $RUNDIR/haproxy.cfg; launch haproxy -db -f $RUNDIR/haproxy.cfg ;;
    haproxy-mw)  subst $B/conf/haproxy.cfg.tmpl $RUNDIR/haproxy.cfg
                 launch haproxy -W -db -S $RUNDIR/master.sock -p $RUNDIR/haproxy.pid -f $RUNDIR/haproxy.cfg ;;
    haproxy-legacy) subst $B/conf/haproxy.cfg.tmpl $RUNDIR/haproxy.cfg
                 taskset -c "$PROXY_CPU" haproxy -D -p $RUNDIR/haproxy.pid -f $RUNDIR/haproxy.cfg >>"$RUNDIR/log" 2>&1
                 cat $RUNDIR/haproxy.pid > $RUNDIR/pid; cat $RUNDIR/haproxy.pid >> "$PGIDS" ;;
    nginx)       subst $B/conf/nginx-stream.conf.tmpl $RUNDIR/nginx.conf; launch nginx -p $RUNDIR/ -c $RUNDIR/nginx.conf ;;
    socat|socat-parent) launch socat TCP-LISTEN:$LP,bind=127.0.0.1,reuseaddr,fork,backlog=4096 TCP:127.0.0.1:$UP ;;
    ours)        launch bash -c "exec $(ours_subst "$OURS_CMD")" ;;
    ours-splice) launch bash -c "exec $(ours_subst "$OURS_SPLICE_CMD")" ;;
    *) echo "unknown proxy $NAME" >&2; exit 2 ;;
  esac
  wait_listen "$LP" || exit 1
  cat "$RUNDIR/pid" ;;
reload)
  load_ports
  case "$NAME" in
    haproxy-mw)  echo reload | socat -t 5 - UNIX-CONNECT:$RUNDIR/master.sock >/dev/null ;;
    haproxy-legacy) old=$(cat $RUNDIR/haproxy.pid)
                 taskset -c "$PROXY_CPU" haproxy -D -p $RUNDIR/haproxy.pid -f $RUNDIR/haproxy.cfg -sf $old >>"$RUNDIR/log" 2>&1
                 cat $RUNDIR/haproxy.pid > $RUNDIR/pid; cat $RUNDIR/haproxy.pid >> "$PGIDS" ;;
    nginx)       nginx -p $RUNDIR/ -c $RUNDIR/nginx.conf -s reload 2>>"$RUNDIR/log" ;;
    socat)       p=$(cat $RUNDIR/pid); kill -TERM -- -$p 2>/dev/null
                 for i in $(seq 100); do alive $p || break; sleep 0.01; done
                 launch socat TCP-LISTEN:$LP,bind=127.0.0.1,reuseaddr,fork,backlog=4096 TCP:127.0.0.1:$UP ;;
    socat-parent) p=$(cat $RUNDIR/pid); kill -TERM $p 2>/dev/null
                 for i in $(seq 100); do alive $p || break; sleep 0.01; done
                 launch socat TCP-LISTEN:$LP,bind=127.0.0.1,reuseaddr,fork,backlog=4096 TCP:127.0.0.1:$UP ;;
    ours|ours-splice) bash -c "$(ours_subst "$OURS_RELOAD")" ;;
    *) echo "no reload for $NAME" >&2; exit 2 ;;
  esac ;;
stop)
  [ -f "$PGIDS" ] || exit 0
  for g in $(sort -u "$PGIDS"); do
    case "$NAME" in
      haproxy-legacy) kill -TERM $g 2>/dev/null ;;   # daemon made its own session; kill by pid
      *) kill -TERM -- -$g 2>/dev/null ;;
    esac
  done
  sleep 0.3
  for g in $(sort -u "$PGIDS"); do
    for i in $(seq 30); do kill -0 $g 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- -$g 2>/dev/null; kill -KILL $g 2>/dev/null
  done
  rm -f "$PGIDS" ;;
pids) cat "$PGIDS" ;;
esac
