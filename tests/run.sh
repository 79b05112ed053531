#!/usr/bin/env bash
# The whole test suite, as CI runs it (`.ci/run` calls this):
#   1. host: cargo fmt --check, clippy -D warnings, unit and integration tests, and the no_std
#      build of src/sansio (tests/nostd)
#   2. qemu-user: the same tests for aarch64 and armv7 (cross/test-qemu-user.sh)
#   3. release builds for x86_64, aarch64, armv7: static, within their size budgets (cross/build.sh)
#   3b. packaging: the OpenWrt procd script under OpenWrt's rc.common/procd.sh (vendored in
#      ../shared), S50baton under BusyBox sh, Buildroot's check-package, the Buildroot package
#      built the way pkg-cargo builds it (vendored, offline, aarch64), and the systemd unit under
#      a real systemd in systemd-nspawn (tests/packaging)
#   3c. the status page in a headless Chromium (tests/page/chromium.sh; installs chromium)
#   4. full system: the firmware image booted under qemu-system for aarch64 and armv7, with
#      reloads, restarts and a binary upgrade through the init script under load (cross/test-system.sh)
#   5. fuzz smoke: each libFuzzer target for 60 s (fuzz/run.sh)
# BATON_TESTS=host runs stage 1 only (a quick local loop). Idempotent: installs what it needs
# (rustfmt, clippy, rustup targets, nightly rust-src, qemu, Debian armhf/arm64 pieces).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { printf '\n=== %s (%ss)\n' "$*" $(( $(date +%s) - start )); }
summary=()
count() { # LABEL LOG: add "N passed, N failed" from cargo's result lines
  local p f
  p=$(grep -Eo '[0-9]+ passed' "$2" | awk '{s+=$1} END {print s+0}')
  f=$(grep -Eo '[0-9]+ failed' "$2" | awk '{s+=$1} END {print s+0}')
  summary+=("$1: $p passed, $f failed")
  total_p=$(( ${total_p:-0} + p )); total_f=$(( ${total_f:-0} + f ))
}
# script_result LABEL SCRIPT LOG: runs a test script (with the static x86_64 build from
# cross/build.sh as BATON_BIN), adds its last "NAME: N passed, N failed" line to the summary,
# or a failure when it printed none
script_result() {
  local line
  BATON_BIN=$PWD/target/x86_64-unknown-linux-musl/release/baton bash "$2" > "$3" 2>&1 || true
  tail -n 3 "$3"
  line=$(grep -E '^[a-z-]+: [0-9]+ passed, [0-9]+ failed$' "$3" | tail -1)
  if [ -n "$line" ]; then
    summary+=("$line")
    total_p=$((total_p + $(echo "$line" | grep -Eo '[0-9]+ passed' | grep -Eo '[0-9]+')))
    total_f=$((total_f + $(echo "$line" | grep -Eo '[0-9]+ failed' | grep -Eo '[0-9]+')))
  else
    summary+=("$1: no result (see $3)"); total_f=$((total_f + 1))
  fi
}
mkdir -p target
rm -f target/test-hangs.log # tests/runner.sh notes hung test binaries here
# every host test binary runs under tests/runner.sh: a time limit, so a hang fails one binary
# with a diagnosis instead of stalling the whole run
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="$PWD/tests/runner.sh"

step "toolchain components"
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy

step "test tools (prlimit, chattr, python3)"
# tests/faults.rs lowers a running process's descriptor limit and makes a directory immutable
if ! command -v prlimit >/dev/null || ! command -v chattr >/dev/null || ! command -v python3 >/dev/null; then
  source cross/common.sh
  apt_install util-linux e2fsprogs python3
fi

step "promtool (Debian's prometheus package, unpacked under target/tools)"
BATON_PROMTOOL=$(bash tests/tools/promtool.sh)
export BATON_PROMTOOL

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
cargo clippy --all-targets --locked --features fault-injection -- -D warnings

step "host tests"
cargo test --all-targets --locked --features fault-injection 2>&1 | tee target/test-host.log
count host target/test-host.log

step "no_std build of the sans-io core (tests/nostd, x86_64-unknown-none)"
rustup target list --installed | grep -qx x86_64-unknown-none || rustup target add x86_64-unknown-none
if cargo build --locked --manifest-path tests/nostd/Cargo.toml --target x86_64-unknown-none --target-dir target/nostd; then
  summary+=("nostd: 1 passed, 0 failed"); total_p=$((total_p + 1))
else
  summary+=("nostd: 0 passed, 1 failed"); total_f=$((total_f + 1))
fi

if [ "${BATON_TESTS:-all}" != host ]; then
  step "qemu-user tests (aarch64, armv7)"
  bash cross/test-qemu-user.sh
  count aarch64-qemu-user target/test-aarch64-unknown-linux-musl.log
  count armv7-qemu-user target/test-armv7-unknown-linux-musleabihf.log

  step "release builds and size budgets"
  bash cross/build.sh | tee target/sizes.log

  step "packaging: OpenWrt procd, BusyBox init, Buildroot check-package and cargo build, systemd"
  # the static x86_64 build from cross/build.sh runs where the init scripts call baton
  for t in openwrt sysv-init check-package buildroot systemd; do
    script_result "packaging $t" "tests/packaging/$t.sh" "target/packaging-$t.log"
  done

  step "the status page in a headless Chromium"
  script_result status-page tests/page/chromium.sh target/status-page.log

  step "full-system tests under qemu-system (aarch64, armv7)"
  bash cross/test-system.sh 2>&1 | tee target/test-system.log
  grep -E '^(aarch64|armv7): [0-9]+ passed' target/test-system.log | sed 's/^/full-system /' | while read -r l; do echo "$l"; done > target/system-summary.log
  while read -r l; do summary+=("$l"); done < target/system-summary.log
  p=$(grep -Eo '[0-9]+ passed' target/system-summary.log | awk '{s+=$1} END {print s+0}')
  f=$(grep -Eo '[0-9]+ failed' target/system-summary.log | awk '{s+=$1} END {print s+0}')
  total_p=$((total_p + p)); total_f=$((total_f + f))

  step "fuzz smoke run, 60 s per target"
  bash fuzz/run.sh 60 | tee target/fuzz.log
  while read -r l; do summary+=("$l"); done < target/fuzz.log
  f=$(grep -c ' CRASH' target/fuzz.log || true)
  total_p=$((total_p + $(grep -c ' ok,' target/fuzz.log || true))); total_f=$((total_f + f))
fi

step "done"
if [ -s target/test-hangs.log ]; then
  echo "test binaries that hung (killed by tests/runner.sh; a second hang counts as failed):"
  cat target/test-hangs.log
  summary+=("hung test binaries: $(grep -c 'hung' target/test-hangs.log) (target/test-hangs.log)")
fi
printf '%s\n' "${summary[@]}"
echo "all: ${total_p} passed, ${total_f} failed"
[ "$total_f" -eq 0 ]
