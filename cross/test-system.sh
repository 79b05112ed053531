#!/usr/bin/env bash
# cross/test-system.sh [ARCH...] : full-system tests of the firmware image (aarch64, armv7).
# Builds baton for the target twice (the release, and an "-upgrade" build for the binary-upgrade
# step, in target/upgrade), builds the image (board/qemu/build-image.sh), boots it under
# qemu-system and runs cross/test-system.py. Installs qemu-system-arm. Idempotent.
source "$(dirname "$0")/common.sh"
cd "$ROOT" || exit 1
ARCHES=("$@")
[ ${#ARCHES[@]} -gt 0 ] || ARCHES=(aarch64 armv7)
apt_install qemu-system-arm xz-utils zstd
version=$(awk -F'"' '/^version/ {print $2; exit}' Cargo.toml)
status=0
for a in "${ARCHES[@]}"; do
  case $a in
    aarch64) t=aarch64-unknown-linux-musl ;;
    armv7) t=$ARMV7 ;;
    *) echo "unknown arch $a" >&2; exit 2 ;;
  esac
  log "full-system test $a"
  release_build "$t"
  BATON_VERSION="$version-upgrade" release_build "$t" --target-dir target/upgrade
  bash board/qemu/build-image.sh "$a" "target/$t/release/baton" "target/upgrade/$t/release/baton" >/dev/null
  python3 cross/test-system.py "$a" || status=1
done
exit $status
