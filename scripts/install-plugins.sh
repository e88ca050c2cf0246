#!/usr/bin/env bash
# Builds podwire's two CNI plugins as they are shipped and benchmarked (linked statically: see
# link_plugins_static in setup-host.sh) and installs them into a CNI plugin directory.
#
#   sudo ./scripts/install-plugins.sh               into /opt/cni/bin
#   ./scripts/install-plugins.sh DIR                into DIR (created if missing)
#
# A plain `cargo build --release` links them dynamically: they work, but start slower and are
# larger than the measured ones. Needs Rust and a C toolchain with glibc's static libraries
# (Debian: build-essential); nothing else, and no root unless DIR needs it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup-host.sh
dest="${1:-/opt/cni/bin}"
release="${CARGO_TARGET_DIR:-target}/release"

link_plugins_static
require_static "$release/podwire" "$release/podwire-ipam"
install -d "$dest"
install -m 0755 "$release/podwire" "$release/podwire-ipam" "$dest/"
require_static "$dest/podwire" "$dest/podwire-ipam"
echo "podwire: installed podwire and podwire-ipam (static) into $dest"
