#!/usr/bin/env bash
# Benchmarks podwire against Debian's reference plugins (bridge + host-local) and the kernel floor,
# side by side in one run, and writes docs/benchmarks.md and docs/benchmarks.svg. As root, on
# Debian 12; installs what is missing first (containernetworking-plugins, containerd, Rust). About
# 4 minutes on 2 cores once built (the first build takes longer).
#
#   sudo ./scripts/bench.sh            the full run, results into docs/
#   sudo ./scripts/bench.sh --quick    a small run to try the setup, results into the target dir
#   sudo ./scripts/bench.sh --only policy [--pods N --policies N --rounds N]   NetworkPolicy
#
# Other arguments go to podwire-bench (see `podwire-bench --help`). SKIP_IPAM_BENCH=1 leaves out
# item 5 (podwire-ipam's own benchmark, about a minute); SKIP_SCALE_BENCH=1 the multi-node agent's,
# SKIP_DATAPATH_BENCH=1 the data path's (about 9 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."

# `--only policy`: NetworkPolicy in the kernel at scale (crates/node/benches/policy.rs; figures in
# docs/network-policy.md). Needs only root and Rust, none of the reference plugins.
if [ "${1:-}" = "--only" ] && [ "${2:-}" = "policy" ]; then
    shift 2
    exec cargo bench --quiet -p podwire-node --bench policy -- "$@"
fi
source scripts/setup-host.sh
prepare_host
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

out_dir=docs
for a in "$@"; do
    [ "$a" = "--quick" ] && out_dir="$CARGO_TARGET_DIR/bench-quick"
done
mkdir -p "$out_dir"

echo "== cargo build --release (the plugins, cni-noop-plugin for item 8's floor, podwire-bench, podwire-cri for item 7)"
cargo build --release --quiet -p podwire-bridge -p podwire-ipam -p podwire-portmap -p podwire-loopback \
    -p podwire-cni -p podwire-bench -p podwire-runtime-tests
link_plugins_static
# Item 8's floor plugin static too, like the plugins it stands in for: the floor is then what a
# do-nothing plugin exec costs, not a dynamic loader's work.
link_static podwire-cni:cni-noop-plugin

ipam_args=()
if [ "${SKIP_IPAM_BENCH:-0}" != 1 ]; then
    # Item 5 is podwire-ipam's own benchmark. podwire-bench runs it after every other item: it
    # creates and deletes thousands of files, and on ext4 without a journal (this machine's
    # root) the kernel then scans past each recently freed inode on every file created, which
    # would tax the next items' IPAM files (item 1 went from 0.20x to 0.26x right after it).
    echo "== cargo bench --no-run -p podwire-ipam --bench alloc (item 5, run last)"
    alloc_bin=$(cargo bench --no-run --quiet --message-format=json -p podwire-ipam --bench alloc |
        jq -r 'select(.reason == "compiler-artifact" and .target.name == "alloc") | .executable' |
        tail -n 1)
    ipam_args=(--ipam-bench "$alloc_bin")
fi

label="$(git describe --always --dirty 2>/dev/null || echo unknown)"
echo "== podwire-bench (podwire $label)"
"$CARGO_TARGET_DIR/release/podwire-bench" \
    --podwire "$CARGO_TARGET_DIR/release/podwire" \
    --reference-dir "$REFERENCE_CNI_DIR" \
    --version-label "podwire $label" \
    --out-dir "$out_dir" \
    "${ipam_args[@]}" "$@"

if [ "${SKIP_SPOOF_BENCH:-0}" != 1 ]; then
    # What spoofCheck costs (issue #22 item 2): ADD with and without, pod-to-pod TCP guarded and
    # not; its own section of the same page.
    echo "== spoofCheck's cost (cargo run --release -p podwire-bridge --example spoofcheck_cost)"
    cargo build --release --quiet -p podwire-bridge --example spoofcheck_cost
    "$CARGO_TARGET_DIR/release/examples/spoofcheck_cost" "$CARGO_TARGET_DIR/release/podwire" 50 2 \
        --write "$(realpath "$out_dir")/benchmarks.md"
    link_plugins_static
fi

if [ "${SKIP_SCALE_BENCH:-0}" != 1 ]; then
    # The multi-node agent against 1,000 and 5,000 Node objects (tests/cluster/benches/scale.rs):
    # its own section of the same page.
    echo "== cargo bench -p podwire-cluster-tests --bench scale"
    cargo bench --quiet -p podwire-cluster-tests --bench scale -- --write "$(realpath "$out_dir")/benchmarks.md"
    # That build leaves target/release's plugins dynamically linked: put back the static ones
    # measured above, so a later `podwire-bench --only ...` times what ships.
    link_plugins_static
fi

if [ "${SKIP_DATAPATH_BENCH:-0}" != 1 ]; then
    # The data path (issue #23 part 4): node to node (the floor), pod to pod on one node, across
    # nodes direct and over VXLAN, IPv4 and IPv6, each against the same path built by hand
    # (tests/cluster/benches/datapath.rs): its own section of the page and a chart beside it;
    # then the offloads tried, two tunnels (a pod VXLAN inside a cloud's), and a perf profile.
    # The offload experiment toggles GRO with ethtool; the profile is taken with perf.
    install_apt_packages ethtool linux-perf
    echo "== cargo bench -p podwire-cluster-tests --bench datapath"
    cargo bench --quiet -p podwire-cluster-tests --bench datapath -- --write "$(realpath "$out_dir")/benchmarks.md"
    link_plugins_static
fi
