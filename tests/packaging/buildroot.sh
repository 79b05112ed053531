#!/usr/bin/env bash
# tests/packaging/buildroot.sh : the Buildroot package (board/buildroot) built the way Buildroot
# builds it, without a Buildroot tree: the source tarball from board/buildroot/source.sh (what
# the package's file site serves), Buildroot's own support/download/cargo-post-process (from
# ../shared/vendor/buildroot, run unchanged) to vendor the crates with an empty CARGO_HOME,
# then pkg-cargo.mk's build command with its environment (PKG_CARGO_ENV: 16 codegen units, no
# LTO, the global optimisation level, the target, the toolchain's linker) followed by the
# package's BATON_CARGO_ENV from baton.mk, `cargo build --offline --release --locked`, for
# aarch64 musl, in a network namespace with no network at all. Checks the binary (static
# aarch64, runs under qemu, the right version) and its size against cross/size-budget's
# `buildroot/aarch64-unknown-linux-musl` line. The rust-lld shipped with rustup stands in for
# the toolchain's gcc as the linker; Buildroot's stable rust has no std sources, so std is the
# prebuilt one (no -Zbuild-std, unlike cross/build.sh).
# Prints "ok - ..." / "not ok - ..." and "buildroot: N passed, M failed".
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
BR=$REPO/../shared/vendor/buildroot
TARGET=aarch64-unknown-linux-musl
[ -x "$BR/support/download/cargo-post-process" ] || { echo "buildroot: no $BR (the shared vendor folder)" >&2; exit 2; }
rustup target list --installed | grep -qx "$TARGET" || rustup target add "$TARGET" >/dev/null
if ! command -v file >/dev/null 2>&1; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq file >/dev/null
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/baton-br.XXXXXX")
trap 'rm -rf "$T"' EXIT

. "$REPO/tests/tools/check.sh"

version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/Cargo.toml" | head -n 1)
name=baton-$version

# ---- download: the file site's tarball, then Buildroot's cargo post-processing (vendoring)
tarball=$(sh "$REPO/board/buildroot/source.sh" "$T/site")
check "source.sh makes the tarball the file site serves ($name.tar.gz)" test "$tarball" = "$T/site/$name.tar.gz" -a -s "$tarball"
mkdir -p "$T/dl/tmp" "$T/cargo-home"
cp "$tarball" "$T/dl/tmp/output"
(
	cd "$T/dl/tmp"
	# what dl-wrapper runs after the file backend, with the environment pkg-cargo gives it
	TAR=tar CARGO_HOME="$T/cargo-home" "$BR/support/download/cargo-post-process" -o "$T/dl/tmp/output" -n "$name"
) >"$T/post-process.log" 2>&1 || true
check "cargo-post-process vendored the crates" sh -c "tar tzf '$T/dl/tmp/output' | grep -q '^$name/VENDOR/serde/'"
check "and wrote the source replacement into .cargo/config.toml" \
	sh -c "tar xzOf '$T/dl/tmp/output' '$name/.cargo/config.toml' | grep -q 'directory = \"VENDOR\"'"

# ---- build: pkg-cargo.mk's BUILD_CMDS, offline, in a namespace without network
mkdir -p "$T/build"
tar -C "$T/build" -xzf "$T/dl/tmp/output"
src=$T/build/$name
upper=$(echo "$TARGET" | tr 'a-z-' 'A-Z_')
lld=$(find "$(rustc --print sysroot)/lib/rustlib" -name rust-lld -type f | head -n 1)
# a CARGO_HOME with nothing in it (not even the registry cache the vendoring filled): the
# crates can only come from the tarball's VENDOR directory
mkdir -p "$T/cargo-home-build"
pkg_cargo_env=(
	CARGO_HOME="$T/cargo-home-build"
	__CARGO_TEST_CHANNEL_OVERRIDE_DO_NOT_USE_THIS=nightly
	CARGO_UNSTABLE_HOST_CONFIG=true
	CARGO_UNSTABLE_TARGET_APPLIES_TO_HOST=true
	CARGO_TARGET_APPLIES_TO_HOST=false
	CARGO_BUILD_TARGET="$TARGET"
	"CARGO_TARGET_${upper}_LINKER=$lld"
	CARGO_PROFILE_DEV_INCREMENTAL=false CARGO_PROFILE_RELEASE_INCREMENTAL=false
	CARGO_PROFILE_DEV_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
	CARGO_PROFILE_DEV_SPLIT_DEBUGINFO=off CARGO_PROFILE_RELEASE_SPLIT_DEBUGINFO=off
	CARGO_PROFILE_DEV_OPT_LEVEL=2 CARGO_PROFILE_RELEASE_OPT_LEVEL=2
	CARGO_PROFILE_DEV_LTO=false CARGO_PROFILE_RELEASE_LTO=false
	CARGO_PROFILE_DEV_DEBUG=0 CARGO_PROFILE_RELEASE_DEBUG=0
	CARGO_PROFILE_DEV_DEBUG_ASSERTIONS=false CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=false
	CARGO_PROFILE_DEV_OVERFLOW_CHECKS=false CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=false
)
# the package's own BATON_CARGO_ENV, as baton.mk writes it
mapfile -t baton_cargo_env < <(awk '/^BATON_CARGO_ENV =/ {on=1; next} on && /^\t/ {gsub(/[\t\\ ]/, ""); print; next} {on=0}' \
	"$REPO/board/buildroot/package/baton/baton.mk")
check "baton.mk sets the profile back (${#baton_cargo_env[@]} settings)" test "${#baton_cargo_env[@]}" -ge 3
offline() { if unshare -n true 2>/dev/null; then unshare -n "$@"; else "$@"; fi; }
(
	cd "$src"
	offline env "${pkg_cargo_env[@]}" "${baton_cargo_env[@]}" \
		cargo build --offline --release --manifest-path Cargo.toml --locked
) >"$T/build.log" 2>&1 && built=yes || built=no
tail -n 5 "$T/build.log"
check "cargo build --offline --locked with Buildroot's environment, an empty CARGO_HOME, no network" test "$built" = yes
check "the crates came from VENDOR (nothing downloaded into CARGO_HOME)" test ! -e "$T/cargo-home-build/registry"
bin=$src/target/$TARGET/release/baton
check "a static aarch64 binary" sh -c "file '$bin' | grep -q 'ARM aarch64.*statically linked'"
check "it runs (qemu-aarch64) and is $version" sh -c "qemu-aarch64-static '$bin' --version | grep -qx 'baton $version'"
budget=$(awk -v t="buildroot/$TARGET" '$1 == t {print $2}' "$REPO/cross/size-budget")
size=$(stat -c %s "$bin" 2>/dev/null || echo 0)
stripped=$T/baton.stripped
cp "$bin" "$stripped" 2>/dev/null && { llvm-strip "$stripped" 2>/dev/null || strip "$stripped" 2>/dev/null || true; }
ssize=$(stat -c %s "$stripped" 2>/dev/null || echo 0)
echo "# buildroot-built $TARGET: $size bytes as built, $ssize stripped ($((ssize / 1024)) KiB), budget ${budget:-none} KiB"
check "within cross/size-budget's buildroot/$TARGET (${budget:-none} KiB)" test -n "$budget" -a "$ssize" -gt 0 -a "$ssize" -le "$((${budget:-0} * 1024))"

finish buildroot
