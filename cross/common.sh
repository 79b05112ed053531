# Shared helpers for the cross/ scripts (sourced). Every step is idempotent.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NIGHTLY=${BATON_NIGHTLY:-nightly}
ARMV7=armv7-unknown-linux-musleabihf
SYSROOT_ARMHF=$ROOT/target/cross/armhf-sysroot
export DEBIAN_FRONTEND=noninteractive

log() { printf '\n--- %s\n' "$*" >&2; }

apt_updated=
# a mirror in the middle of a sync can fail one index; what is needed usually still resolves
apt_update() { apt-get -o DPkg::Lock::Timeout=600 update -qq || echo "warning: apt-get update reported errors" >&2; apt_updated=1; }
apt_install() { # apt_install PKG... : installs the missing ones
  local need=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
  [ ${#need[@]} -eq 0 ] && return 0
  if [ -z "$apt_updated" ]; then apt_update; fi
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

ensure_target() { # ensure_target TRIPLE (stable std from rustup)
  rustup target list --installed | grep -qx "$1" || rustup target add "$1"
}

ensure_foreign_arches() {
  if ! dpkg --print-foreign-architectures | grep -qx armhf || ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture armhf; dpkg --add-architecture arm64
    apt_update
  fi
}

# armv7 has no prebuilt std: nightly builds it (-Zbuild-std) and links against musl's start files
# and libc plus libgcc from Debian's armhf packages, extracted (never installed) here.
ensure_armv7() {
  rustup toolchain list | grep -q "^$NIGHTLY" || rustup toolchain install "$NIGHTLY" --profile minimal
  rustup component list --toolchain "$NIGHTLY" --installed | grep -q '^rust-src' || rustup component add rust-src --toolchain "$NIGHTLY"
  [ -f "$SYSROOT_ARMHF/.done" ] && return 0
  ensure_foreign_arches
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && apt-get -o DPkg::Lock::Timeout=600 download musl-dev:armhf libgcc-12-dev:armhf >/dev/null)
  rm -rf "$SYSROOT_ARMHF"; mkdir -p "$SYSROOT_ARMHF"
  for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$tmp/x"; done
  local musl; musl=$(dirname "$(find "$tmp/x" -path '*musl*' -name crt1.o | head -1)")
  cp "$musl"/{crt1.o,crti.o,crtn.o,libc.a} "$SYSROOT_ARMHF"/
  local gcc; gcc=$(dirname "$(find "$tmp/x" -name crtbegin.o | head -1)")
  cp "$gcc"/{crtbegin.o,crtend.o,libgcc.a} "$SYSROOT_ARMHF"/
  cp "$gcc"/libgcc_eh.a "$SYSROOT_ARMHF"/libunwind.a
  for l in dl pthread m rt util; do ar rc "$SYSROOT_ARMHF/lib$l.a"; done
  rm -rf "$tmp"; touch "$SYSROOT_ARMHF/.done"
}

ensure_nightly_src() {
  rustup toolchain list | grep -q "^$NIGHTLY" || rustup toolchain install "$NIGHTLY" --profile minimal
  rustup component list --toolchain "$NIGHTLY" --installed | grep -q '^rust-src' || rustup component add rust-src --toolchain "$NIGHTLY"
}

# musl start files and libc for a target: stable's self-contained copy (aarch64, x86_64) or the
# one extracted from Debian (armv7, which has no prebuilt std)
crt_dir() {
  if [ "$1" = "$ARMV7" ]; then echo "$SYSROOT_ARMHF"; else echo "$(rustc --print sysroot)/lib/rustlib/$1/lib/self-contained"; fi
}

flags_var() { echo "CARGO_TARGET_$(echo "$1" | tr 'a-z-' 'A-Z_')_RUSTFLAGS"; }

# release_build TRIPLE [CARGO ARGS...]: the shipped binary. Every target builds std from source
# with nightly (-Zbuild-std) and aborts on panic without unwinding or messages: about half the
# size (aarch64: 615 -> 324 KiB; x86_64: 842 -> 460 KiB). baton returns errors as values and is
# not built to panic. armv7 is built as Thumb-2 (+thumb-mode; the target's default is the ARM
# instruction set), std included: 499 -> 375 KiB, and every ARMv7-A core runs it.
release_build() {
  local t=$1; shift
  local features=+crt-static
  if [ "$t" = "$ARMV7" ]; then ensure_armv7; features=+crt-static,+thumb-mode; else ensure_target "$t"; fi
  ensure_nightly_src
  env "$(flags_var "$t")=-C target-feature=$features -L native=$(crt_dir "$t") -Zunstable-options -Cpanic=immediate-abort" \
    cargo +"$NIGHTLY" build --release --locked --target "$t" -Zbuild-std=std,panic_abort "$@"
}

# test_target TRIPLE [CARGO TEST ARGS...]: the test suite for a target (run by its runner).
# Tests unwind, so armv7's std is built with panic_unwind; aarch64 uses the prebuilt std.
test_target() {
  local t=$1; shift
  if [ "$t" = "$ARMV7" ]; then
    ensure_armv7; ensure_nightly_src
    env "$(flags_var "$t")=-C target-feature=+crt-static -L native=$SYSROOT_ARMHF" \
      cargo +"$NIGHTLY" test --locked --features fault-injection --target "$t" -Zbuild-std=std,panic_unwind "$@"
  else
    ensure_target "$t"
    cargo test --locked --features fault-injection --target "$t" "$@"
  fi
}

ensure_qemu_user() {
  apt_install qemu-user-static binfmt-support
  # qemu-user does not follow execve of another ARM binary without binfmt_misc handlers
  # (tests spawn the baton binary); register them if the kernel has binfmt_misc.
  if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
  fi
  for a in aarch64 arm; do
    [ -e "/proc/sys/fs/binfmt_misc/qemu-$a" ] && continue
    [ -f "/usr/lib/binfmt.d/qemu-$a.conf" ] && [ -w /proc/sys/fs/binfmt_misc/register ] \
      && cat "/usr/lib/binfmt.d/qemu-$a.conf" > /proc/sys/fs/binfmt_misc/register 2>/dev/null || true
  done
}
