#!/usr/bin/env bash
# Runs every podwire check: formatting, lints, unit tests and the integration suites that touch the
# real kernel (throwaway network namespaces), as root on Debian 12. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup-host.sh
prepare_host

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo build --release (the binaries the integration suites exec)"
cargo build --workspace --release --quiet
link_plugins_static
link_podwirectl_static
echo "== cargo test"
cargo test --workspace --quiet 2>&1 | tee /tmp/podwire-test.log
