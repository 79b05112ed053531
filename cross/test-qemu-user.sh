#!/usr/bin/env bash
# cross/test-qemu-user.sh [TARGET...] : the whole test suite (unit and integration) for ARM,
# run under qemu-user through the `runner` in .cargo/config.toml. Default: aarch64 and armv7.
# Installs qemu-user-static, registers binfmt_misc handlers (the tests spawn the ARM baton
# binary), and the armv7 toolchain pieces. Prints "N passed, N failed" per target.
source "$(dirname "$0")/common.sh"
cd "$ROOT" || exit 1
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(aarch64-unknown-linux-musl "$ARMV7")
ensure_qemu_user
status=0
for t in "${TARGETS[@]}"; do
  log "test $t under qemu-user"
  logf=target/test-$t.log
  # two test threads: emulation is slow and some tests wait on timers. Each test binary runs
  # under tests/runner.sh: a time limit, and a diagnosis when it hangs (see there).
  qemu=qemu-aarch64-static
  [ "$t" = "$ARMV7" ] && qemu=qemu-arm-static
  runner_var=CARGO_TARGET_$(echo "$t" | tr 'a-z-' 'A-Z_')_RUNNER
  # (a subshell: test_target is a function, and the runner's variable name depends on $t)
  if (export "$runner_var=$ROOT/tests/runner.sh $qemu" BATON_TEST_EMULATED=1
    test_target "$t" --no-fail-fast -- --test-threads=2) 2>&1 | tee "$logf"; then :; else status=1; fi
  p=$(grep -Eo '[0-9]+ passed' "$logf" | awk '{s+=$1} END {print s+0}')
  f=$(grep -Eo '[0-9]+ failed' "$logf" | awk '{s+=$1} END {print s+0}')
  echo "$t: ${p} passed, ${f} failed"
done
exit $status
