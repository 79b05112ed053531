#!/usr/bin/env bash
# bench/prepare.sh: what every benchmark needs first, idempotent: the peers and load tools
# (install.sh), the musl target, and the static release build of baton the harness runs.
set -euo pipefail
B=$(cd "$(dirname "$0")" && pwd)
bash "$B/install.sh"
rustup target list --installed | grep -q x86_64-unknown-linux-musl || rustup target add x86_64-unknown-linux-musl
(cd "$B/.." && cargo build --release --target x86_64-unknown-linux-musl)
