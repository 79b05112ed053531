#!/usr/bin/env bash
# cross/build.sh [TARGET...] : static release builds of baton, each checked against its size
# budget (cross/size-budget). Default: x86_64, aarch64 and armv7 (musl). Installs what it needs.
# Binaries: target/<TRIPLE>/release/baton
source "$(dirname "$0")/common.sh"
cd "$ROOT" || exit 1
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl "$ARMV7")
fail=0
for t in "${TARGETS[@]}"; do
  log "build $t"
  release_build "$t"
  bin=target/$t/release/baton
  file "$bin" | grep -q 'statically linked\|static-pie linked' || { echo "$bin is not statically linked" >&2; fail=1; }
  # fault injection is a test-only cargo feature: a shipped binary never reads BATON_FAULT
  if grep -q BATON_FAULT "$bin"; then echo "FAIL: $bin contains the BATON_FAULT test hook" >&2; fail=1; fi
  size=$(stat -c %s "$bin")
  budget=$(awk -v t="$t" '$1 == t {print $2}' cross/size-budget)
  printf '%-36s %8d bytes (%d KiB), budget %s KiB\n' "$t" "$size" $((size / 1024)) "${budget:-none}"
  if [ -n "$budget" ] && [ "$size" -gt $((budget * 1024)) ]; then
    echo "FAIL: $bin is over its size budget" >&2; fail=1
  fi
done
exit $fail
