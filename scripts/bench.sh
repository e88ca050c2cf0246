#!/usr/bin/env bash
# Benchmarks podwire against Debian's reference plugins (bridge + host-local) and the kernel floor,
# side by side in one run, and writes docs/benchmarks.md and docs/benchmarks.svg. As root, on
# Debian 12; installs what is missing first (containernetworking-plugins, containerd, Rust). About
# 4 minutes on 2 cores once built (the first build takes longer).
#
#   sudo ./scripts/bench.sh            the full run, results into docs/
#   sudo ./scripts/bench.sh --quick    a small run to try the setup, results into the target dir
#
# Other arguments go to podwire-bench (see `podwire-bench --help`). SKIP_IPAM_BENCH=1 leaves out
# item 5 (podwire-ipam's own benchmark, about a minute).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup-host.sh
need_root
install_apt_packages
install_rust
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

out_dir=docs
for a in "$@"; do
    [ "$a" = "--quick" ] && out_dir="$CARGO_TARGET_DIR/bench-quick"
done
mkdir -p "$out_dir"

echo "== cargo build --release (podwire, podwire-ipam, podwire-bench, podwire-cri for item 7)"
cargo build --release --quiet -p podwire-bridge -p podwire-ipam -p podwire-bench -p podwire-runtime-tests
link_plugins_static

ipam_args=()
if [ "${SKIP_IPAM_BENCH:-0}" != 1 ]; then
    echo "== 5. IPAM alone: cargo bench -p podwire-ipam --bench alloc"
    ipam_out="$CARGO_TARGET_DIR/bench-ipam-alloc.txt"
    cargo bench --quiet -p podwire-ipam --bench alloc | tee "$ipam_out"
    ipam_args=(--ipam-alloc "$ipam_out")
    # That benchmark creates and deletes thousands of files. On ext4 without a journal (this
    # machine's root) the kernel will not reuse an inode freed less than
    # dirty_expire_centisecs + 5 s ago, and scans past every such inode on each file it
    # creates: the next items' IPAM files would pay for this benchmark's churn. Wait it out.
    expire=$(( $(cat /proc/sys/vm/dirty_expire_centisecs 2>/dev/null || echo 3000) / 100 + 10 ))
    echo "== waiting ${expire} s for the filesystem to forget the IPAM benchmark's deleted files"
    sleep "$expire"
fi

label="$(git describe --always --dirty 2>/dev/null || echo unknown)"
echo "== podwire-bench (podwire $label)"
"$CARGO_TARGET_DIR/release/podwire-bench" \
    --podwire "$CARGO_TARGET_DIR/release/podwire" \
    --reference-dir "$REFERENCE_CNI_DIR" \
    --version-label "podwire $label" \
    --out-dir "$out_dir" \
    "${ipam_args[@]}" "$@"
