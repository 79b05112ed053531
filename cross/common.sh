# Shared helpers for the cross/ scripts (sourced). Every step is idempotent.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NIGHTLY=${BATON_NIGHTLY:-nightly}
ARMV7=armv7-unknown-linux-musleabihf
SYSROOT_ARMHF=$ROOT/target/cross/armhf-sysroot
export DEBIAN_FRONTEND=noninteractive

log() { printf '\n--- %s\n' "$*" >&2; }

apt_updated=
apt_install() { # apt_install PKG... : installs the missing ones
  local need=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
  [ ${#need[@]} -eq 0 ] && return 0
  if [ -z "$apt_updated" ]; then apt-get -o DPkg::Lock::Timeout=600 update -qq; apt_updated=1; fi
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

ensure_target() { # ensure_target TRIPLE (stable std from rustup)
  rustup target list --installed | grep -qx "$1" || rustup target add "$1"
}

ensure_foreign_arches() {
  if ! dpkg --print-foreign-architectures | grep -qx armhf || ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture armhf; dpkg --add-architecture arm64
    apt-get -o DPkg::Lock::Timeout=600 update -qq; apt_updated=1
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
  cp "$tmp"/x/usr/lib/musl/lib/{crt1.o,crti.o,crtn.o,libc.a} "$SYSROOT_ARMHF"/
  local gcc; gcc=$(dirname "$(find "$tmp/x" -name crtbegin.o | head -1)")
  cp "$gcc"/{crtbegin.o,crtend.o,libgcc.a} "$SYSROOT_ARMHF"/
  cp "$gcc"/libgcc_eh.a "$SYSROOT_ARMHF"/libunwind.a
  for l in dl pthread m rt util; do ar rc "$SYSROOT_ARMHF/lib$l.a"; done
  rm -rf "$tmp"; touch "$SYSROOT_ARMHF/.done"
}

armv7_env() { # exports the flags a cargo command for armv7 needs
  export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_MUSLEABIHF_RUSTFLAGS="-C target-feature=+crt-static -L native=$SYSROOT_ARMHF"
}

# cargo_for TRIPLE ARGS...: cargo with the right toolchain for the target
cargo_for() {
  local t=$1; shift
  if [ "$t" = "$ARMV7" ]; then
    armv7_env
    cargo +"$NIGHTLY" "$@" --target "$t" -Zbuild-std=std,panic_abort
  else
    cargo "$@" --target "$t"
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
