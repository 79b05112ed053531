#!/usr/bin/env bash
# fuzz/run.sh [SECONDS] [TARGET...] : libFuzzer (cargo fuzz, nightly) on the parsers of outside
# input: config, handoff, admin_http, values. Each target runs SECONDS (default 60) from the seeds
# in fuzz/corpus/<target> (new inputs go to target/fuzz-corpus/<target>, the repo is not
# modified). Prints executions per target; a crash fails the run and leaves its input in
# fuzz/artifacts/<target>/ -- copy it to fuzz/regressions/<target>/ to keep it as a test
# (tests/fuzz_corpus.rs runs those on stable). Installs cargo-fuzz and nightly rust-src if needed.
set -euo pipefail
cd "$(dirname "$0")"
SECS=${1:-60}; shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(config handoff admin_http values)
NIGHTLY=${BATON_NIGHTLY:-nightly}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
rustup toolchain list | grep -q "^$NIGHTLY" || rustup toolchain install "$NIGHTLY" --profile minimal
status=0
for t in "${TARGETS[@]}"; do
  work=../target/fuzz-corpus/$t
  mkdir -p "$work"
  log=../target/fuzz-$t.log
  if cargo +"$NIGHTLY" fuzz run "$t" "$work" "corpus/$t" -- -max_total_time="$SECS" -print_final_stats=1 -rss_limit_mb=2048 >"$log" 2>&1; then
    result=ok
  else
    result=CRASH; status=1
    grep -E "panicked|ERROR|Test unit written" "$log" | head -5 >&2
  fi
  execs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -1)
  printf 'fuzz %-10s %s, %s executions in %ss\n' "$t" "$result" "${execs:-?}" "$SECS"
done
exit $status
