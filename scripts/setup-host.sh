#!/usr/bin/env bash
# Installs what podwire's build, tests and demo need on a Debian 12 machine, only when missing.
# Sourced by scripts/test.sh, demo.sh and bench.sh; safe to run twice.
set -euo pipefail

need_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "podwire: this needs root (network namespaces, bridges, nftables): run it with sudo" >&2
        exit 1
    fi
}

# Debian packages: the kernel tools tests read state back with, the reference plugins we compare
# against, and (for the real-runtime suites) containerd, runc, podman and protoc.
PODWIRE_APT_PACKAGES=(iproute2 iputils-ping nftables iptables strace containernetworking-plugins jq ca-certificates curl build-essential
    pkg-config
    # the real-runtime suites (tests/runtimes) and the demo: containerd's CRI, Podman (CNI backend),
    # protoc for the CRI gRPC bindings, busybox for the Podman image
    containerd runc podman conmon protobuf-compiler busybox-static)

install_apt_packages() {
    local missing=()
    for p in "${PODWIRE_APT_PACKAGES[@]}" "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "podwire: installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

install_rust() {
    if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        # Debian 12's own rustc is too old for the workspace: take stable from rustup.
        echo "podwire: installing the Rust stable toolchain with rustup"
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt,clippy
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
    rustup component list --installed 2>/dev/null | grep -q clippy || rustup component add clippy rustfmt 2>/dev/null || true
}

# Everything a script needs before it builds: root, the Debian packages, Rust.
prepare_host() {
    need_root
    install_apt_packages
    install_rust
}

# The CNI runtimes find plugins in /opt/cni/bin; Debian ships the reference ones in /usr/lib/cni.
REFERENCE_CNI_DIR=/usr/lib/cni

# Builds the four plugin binaries linked statically (glibc static-pie), as the reference Go plugins
# are: a plugin is exec'd once per pod, and a static binary skips the dynamic loader (~0.35 ms) and
# keeps libc's pages out of its RSS. `cargo rustc` applies the flag to the final link only, so the
# dependencies and proc macros build as usual (the same flag in RUSTFLAGS or .cargo/config.toml
# would also reach the proc macros, which cannot be built static: rustc drops them). It builds
# what is missing itself; a later `cargo build --release` of these packages links them dynamically
# again. Leaves them in $CARGO_TARGET_DIR/release (default target/release).
link_plugins_static() {
    cargo rustc --release --quiet -p podwire-bridge --bin podwire -- -C target-feature=+crt-static
    cargo rustc --release --quiet -p podwire-ipam --bin podwire-ipam -- -C target-feature=+crt-static
    cargo rustc --release --quiet -p podwire-portmap --bin podwire-portmap -- -C target-feature=+crt-static
    cargo rustc --release --quiet -p podwire-loopback --bin loopback -- -C target-feature=+crt-static
}

# podwirectl static too: the DaemonSet's image (deploy/Dockerfile's layout, built without Docker by
# tests/runtimes/tests/daemonset.rs) is distroless, with no libc for a dynamic binary to load.
link_podwirectl_static() {
    cargo rustc --release --quiet -p podwirectl --bin podwirectl -- -C target-feature=+crt-static
}

# Fails, naming it, on any file given that is dynamically linked (has an ELF interpreter).
require_static() {
    local f
    for f in "$@"; do
        if ! LC_ALL=C readelf -lW "$f" >/dev/null; then
            echo "podwire: $f is not an ELF binary" >&2
            return 1
        fi
        if LC_ALL=C readelf -lW "$f" | grep -q 'Requesting program interpreter'; then
            echo "podwire: $f is dynamically linked; the shipped plugins are static (scripts/install-plugins.sh)" >&2
            return 1
        fi
    done
}
