#!/usr/bin/env bash
# tests/runner.sh [EMULATOR] TEST-BINARY [ARGS...] : cargo's test runner for the suite
# (tests/run.sh and cross/test-qemu-user.sh set it through CARGO_TARGET_<TRIPLE>_RUNNER).
#
# Runs one test binary with a time limit, so that a hang fails that binary instead of the whole
# CI run timing out (a CI run once hung 80 minutes in one qemu-user test binary; the same test
# normally takes 13 s). On a hang it prints what every process of the binary's process group is
# blocked in (state and wchan per thread, from /proc), kills the group by its ID, and runs the
# binary once more. A second hang is a failure, reported as a "N failed" line that the suite's
# counters pick up. Hangs are appended to target/test-hangs.log, which tests/run.sh reports.
#
# BATON_TEST_BINARY_LIMIT: seconds per binary (default 300; the slowest binary under qemu-user
# takes about 15 s).
set -u
limit=${BATON_TEST_BINARY_LIMIT:-300}
root=$(cd "$(dirname "$0")/.." && pwd)
hangs=$root/target/test-hangs.log
name=""
for a in "$@"; do
  case $a in */deps/*) name=${a##*/}; break ;; esac
done
[ -n "$name" ] || name=${1##*/}

# what every thread of process group $1 waits in, to tell a qemu-user deadlock from a baton bug
diagnose() {
  echo "--- processes of the hung test binary (group $1):"
  ps -eo pgid=,pid=,ppid=,stat=,etimes=,wchan:32=,args= | awk -v g="$1" '$1 == g'
  for p in $(ps -eo pgid=,pid= | awk -v g="$1" '$1 == g {print $2}'); do
    for t in /proc/"$p"/task/*; do
      [ -r "$t/stat" ] || continue
      printf '  pid %s task %s state %s wchan %s\n' "$p" "${t##*/}" \
        "$(awk '{print $3}' "$t/stat" 2>/dev/null)" "$(cat "$t/wchan" 2>/dev/null)"
    done
  done
  echo "---"
}

# runs "$@" in its own process group; 0..255 its status, 124 after a hang (group killed)
attempt() {
  set -m # a background job gets its own process group: the binary and every baton it started
  "$@" &
  local pid=$! waited=0
  set +m
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$waited" -ge "$((limit * 10))" ]; then
      echo "HANG: $name still running after ${limit}s" >&2
      diagnose "$pid" >&2
      kill -KILL -- "-$pid" 2>/dev/null
      wait "$pid" 2>/dev/null
      return 124
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  wait "$pid"
  local rc=$?
  # whatever the binary left in its group (a baton it started, a fork that never reached exec)
  # would hold cargo's output pipe open and stall the run: gone with the binary
  kill -KILL -- "-$pid" 2>/dev/null
  return "$rc"
}

attempt "$@"
rc=$?
[ "$rc" -eq 124 ] || exit "$rc"
mkdir -p "$(dirname "$hangs")"
echo "$(date -u +%FT%TZ) $name: hung (killed after ${limit}s), run again" >> "$hangs"
echo "HANG: running $name once more" >&2
attempt "$@"
rc=$?
if [ "$rc" -eq 124 ]; then
  echo "$(date -u +%FT%TZ) $name: hung again, failed" >> "$hangs"
  echo "hang: $name: 1 failed (hung twice, killed after ${limit}s each)"
  exit 101
fi
echo "$(date -u +%FT%TZ) $name: second run ended with status $rc" >> "$hangs"
exit "$rc"
