#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests on the host.
# Usage: tests/run.sh            (what CI runs; see README "Testing")
# Idempotent: installs what it needs (rustfmt, clippy) on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { printf '\n=== %s (%ss)\n' "$*" $(( $(date +%s) - start )); }

step "toolchain components"
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --all-targets -- -D warnings

step "cargo test (host)"
cargo test --all-targets 2>&1 | tee target/test-host.log
# a summary line for CI: N passed, N failed
passed=$(grep -Eo '[0-9]+ passed' target/test-host.log | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' target/test-host.log | awk '{s+=$1} END {print s+0}')

step "done"
echo "host: ${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
