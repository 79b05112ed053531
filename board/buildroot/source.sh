#!/bin/sh
# board/buildroot/source.sh [DIR] : makes baton-VERSION.tar.gz from this checkout (`git
# archive` of HEAD, top directory baton-VERSION/) in DIR, by default board/buildroot/dl, where
# package/baton/baton.mk's file site looks for it. Run it before `make baton-source`, which
# copies the tarball to Buildroot's download directory and vendors the crates into it (network
# needed once); every later build is offline.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${1:-$here/dl}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n 1)
mkdir -p "$out"
git -C "$repo" archive --format=tar.gz --prefix="baton-$version/" -o "$out/baton-$version.tar.gz" HEAD
echo "$out/baton-$version.tar.gz"
