#!/usr/bin/env bash
# Builds podwire's four CNI plugins as they are shipped and benchmarked (linked statically: see
# link_plugins_static in setup-host.sh) and installs them into a CNI plugin directory.
#
#   sudo ./scripts/install-plugins.sh               into /opt/cni/bin
#   ./scripts/install-plugins.sh DIR                into DIR (created if missing)
#
# Built for the musl target (added with rustup if missing), else, where it cannot be had, glibc
# static. A plain `cargo build --release` links them dynamically: they work, but start slower and
# are larger than the measured ones. Needs Rust and a C toolchain (Debian: build-essential);
# nothing else, and no root unless DIR needs it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup-host.sh
dest="${1:-/opt/cni/bin}"
release="${CARGO_TARGET_DIR:-target}/release"

ensure_plugin_target
link_plugins_static
plugins=(podwire podwire-ipam podwire-portmap loopback)
require_static "${plugins[@]/#/$release/}"
install -d "$dest"
install -m 0755 "${plugins[@]/#/$release/}" "$dest/"
require_static "${plugins[@]/#/$dest/}"
echo "podwire: installed ${plugins[*]} (static) into $dest"
