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
    pkg-config kmod
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
    ensure_plugin_target
}

# The plugins are built for musl when its standard library can be had (link_plugins_static).
ensure_plugin_target() {
    if ! plugin_target_installed && command -v rustup >/dev/null 2>&1; then
        echo "podwire: adding the Rust target $PLUGIN_TARGET (the plugins' static build)"
        timeout 300 rustup target add "$PLUGIN_TARGET" >/dev/null 2>&1 ||
            echo "podwire: could not add $PLUGIN_TARGET; the plugins will link glibc statically (slower to start)"
    fi
}

# Everything a script needs before it builds: root, the Debian packages, Rust.
prepare_host() {
    need_root
    install_apt_packages
    install_rust
    load_kernel_modules
}

# What the suites need from the kernel beyond a default boot, as a Kubernetes node has it:
# br_netfilter (bridged pod traffic through the forward hook, where NetworkPolicy is judged) and
# VXLAN. Built in or absent is fine: the tests that need them say so.
load_kernel_modules() {
    command -v modprobe >/dev/null 2>&1 || return 0
    local m
    for m in br_netfilter vxlan nf_conntrack; do
        modprobe "$m" 2>/dev/null || true
    done
}

# The CNI runtimes find plugins in /opt/cni/bin; Debian ships the reference ones in /usr/lib/cni.
REFERENCE_CNI_DIR=/usr/lib/cni

# The plugins' target: musl, statically linked (its default). A plugin is exec'd once per pod,
# and start-up is most of a small plugin's run: glibc's start-up, static or dynamic, sizes the CPU
# caches with a loop of CPUID instructions, and in a VM every CPUID traps to the hypervisor
# (measured here: a do-nothing static binary runs 0.98 ms with glibc, 0.46 ms with musl).
# The DaemonSet's image is built on musl too (deploy/Dockerfile).
PLUGIN_TARGET=x86_64-unknown-linux-musl

plugin_target_installed() {
    command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -qx "$PLUGIN_TARGET"
}

# Builds static binaries, each given as PACKAGE:BIN, with the workspace's `plugin` profile (fat
# LTO, one codegen unit, opt-level "s": what ships and what the benchmarks measure) and leaves
# them in $CARGO_TARGET_DIR/release (default target/release), where the scripts and test suites
# look for them. With the musl target: built for it and copied there. Without it (no rustup,
# offline): glibc static-pie through `cargo rustc`, which applies the flag to the final link only,
# so dependencies and proc macros build as usual (the flag in RUSTFLAGS would reach the proc
# macros, which cannot be static). A later `cargo build --release` of these packages puts a
# dynamically linked, release-profile build there again.
link_static() {
    local release="${CARGO_TARGET_DIR:-target}/release" spec args=()
    if plugin_target_installed; then
        for spec in "$@"; do args+=(-p "${spec%%:*}" --bin "${spec##*:}"); done
        cargo build --profile plugin --quiet --target "$PLUGIN_TARGET" "${args[@]}"
        mkdir -p "$release"
        for spec in "$@"; do
            install -m 0755 "${CARGO_TARGET_DIR:-target}/$PLUGIN_TARGET/plugin/${spec##*:}" "$release/"
        done
    else
        for spec in "$@"; do
            cargo rustc --profile plugin --quiet -p "${spec%%:*}" --bin "${spec##*:}" -- -C target-feature=+crt-static
        done
        mkdir -p "$release"
        for spec in "$@"; do
            install -m 0755 "${CARGO_TARGET_DIR:-target}/plugin/${spec##*:}" "$release/"
        done
    fi
}

# The four plugin binaries, static as the reference Go plugins are (no dynamic loader to run,
# no libc pages in their RSS).
link_plugins_static() {
    link_static podwire-bridge:podwire podwire-ipam:podwire-ipam podwire-portmap:podwire-portmap \
        podwire-loopback:loopback
}

# podwirectl static too: the DaemonSet's image (deploy/Dockerfile's layout, built without Docker by
# tests/runtimes/tests/daemonset.rs) is distroless, with no libc for a dynamic binary to load.
# The `quick` profile (unoptimised): the test runs it, nothing measures it, and kube's stack
# compiles in a third of the release profile's time. Left in $CARGO_TARGET_DIR/quick/podwirectl.
link_podwirectl_static() {
    cargo rustc --profile quick --quiet -p podwirectl --bin podwirectl -- -C target-feature=+crt-static
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
