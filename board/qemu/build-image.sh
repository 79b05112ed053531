#!/usr/bin/env bash
# board/qemu/build-image.sh ARCH BATON_BIN [UPGRADE_BIN] : a QEMU test firmware image
# (kernel + initramfs with BusyBox, baton, its init script and config) for ARCH = aarch64 | armv7.
# Output: target/qemu-ARCH/{vmlinuz,initramfs.cpio.gz}. Kernel, modules and BusyBox come from
# Debian's arm64/armhf packages (downloaded and extracted, never installed). Idempotent.
set -euo pipefail
ARCH=$1; BIN=$2; UPGRADE=${3:-}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/board/qemu
OUT=$ROOT/target/qemu-$ARCH
case $ARCH in
  aarch64) DEB=arm64; KPKG=linux-image-arm64 ;;
  armv7)   DEB=armhf; KPKG=linux-image-armmp ;;
  *) echo "ARCH must be aarch64 or armv7" >&2; exit 2 ;;
esac
mkdir -p "$OUT"
CACHE=$ROOT/target/qemu-cache/$DEB
if [ ! -f "$CACHE/.done" ]; then
  export DEBIAN_FRONTEND=noninteractive
  if ! dpkg --print-foreign-architectures | grep -qx "$DEB"; then
    dpkg --add-architecture "$DEB"; apt-get -o DPkg::Lock::Timeout=600 update -qq || echo "warning: apt-get update reported errors" >&2
  fi
  # the current kernel package behind the meta package, e.g. linux-image-6.1.0-50-arm64
  kver=$(apt-cache depends "$KPKG:$DEB" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}' | sed 's/:.*//')
  [ -n "$kver" ] || { apt-get -o DPkg::Lock::Timeout=600 update -qq || true; kver=$(apt-cache depends "$KPKG:$DEB" | awk '/Depends: linux-image-[0-9]/ {print $2; exit}' | sed 's/:.*//'); }
  rm -rf "$CACHE"; mkdir -p "$CACHE/x"
  (cd "$CACHE" && apt-get -o DPkg::Lock::Timeout=600 download "$kver:$DEB" "busybox-static:$DEB" >/dev/null)
  for d in "$CACHE"/*.deb; do dpkg-deb -x "$d" "$CACHE/x"; done
  cp "$CACHE"/x/boot/vmlinuz-* "$CACHE/vmlinuz"
  mkdir -p "$CACHE/modules"
  for m in failover net_failover virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_net; do
    f=$(find "$CACHE/x/lib/modules" -name "$m.ko*" | head -1)
    [ -n "$f" ] || continue
    case $f in
      *.xz) xz -dc "$f" > "$CACHE/modules/$m.ko" ;;
      *.zst) zstd -qdc "$f" > "$CACHE/modules/$m.ko" ;;
      *) cp "$f" "$CACHE/modules/$m.ko" ;;
    esac
  done
  cp "$CACHE/x/bin/busybox" "$CACHE/busybox"
  rm -rf "$CACHE/x" "$CACHE"/*.deb
  touch "$CACHE/.done"
fi
cp "$CACHE/vmlinuz" "$OUT/vmlinuz"
# the root filesystem
R=$OUT/rootfs
rm -rf "$R"; mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,etc/init.d,etc/default,etc/baton,lib/modules,proc,sys,dev,tmp,var/run,var/log,www,opt}
cp "$CACHE/busybox" "$R/bin/busybox"
ln -s busybox "$R/bin/sh"
cp "$CACHE"/modules/*.ko "$R/lib/modules/" 2>/dev/null || true
install -m 0755 "$BIN" "$R/usr/bin/baton"
[ -n "$UPGRADE" ] && install -m 0755 "$UPGRADE" "$R/opt/baton-upgrade"
install -m 0755 "$ROOT/board/rootfs/etc/init.d/S50baton" "$R/etc/init.d/S50baton"
install -m 0644 "$ROOT/board/rootfs/etc/default/baton" "$R/etc/default/baton"
install -m 0644 "$HERE/baton.json" "$R/etc/baton/baton.json"
install -m 0755 "$HERE/init" "$R/init"
python3 -c "import random; random.seed(7); open('$R/www/64k','wb').write(bytes(random.getrandbits(8) for _ in range(65536)))"
python3 "$HERE/mkcpio.py" "$R" "$OUT/initramfs.cpio.gz"
echo "$OUT/vmlinuz $OUT/initramfs.cpio.gz"
