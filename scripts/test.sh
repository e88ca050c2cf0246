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
# The suites exec the shipped plugins from target/release (built here with the `plugin` profile)
# and podwirectl static there (the DaemonSet's distroless image); every other binary they need
# (podwirectl, kubesim, podwire-cri) they build themselves in the tests' own profile.
echo "== the plugins as shipped, into target/release (scripts/setup-host.sh's link_plugins_static)"
link_plugins_static
echo "== scripts/install-plugins.sh (the documented install: static plugins, checked after install)"
plugins_dir="$(mktemp -d)"
./scripts/install-plugins.sh "$plugins_dir"
require_static "$plugins_dir"/{podwire,podwire-ipam,podwire-portmap,loopback}
cmp "$plugins_dir/podwire" "${CARGO_TARGET_DIR:-target}/release/podwire" # the suites exec these
rm -rf "$plugins_dir"
# The DaemonSet's image (tests/runtimes/tests/daemonset.rs) is distroless: podwirectl static too.
link_podwirectl_static
require_static "${CARGO_TARGET_DIR:-target}/release/podwirectl"
echo "== cargo test"
cargo test --workspace --no-fail-fast --quiet 2>&1 | tee /tmp/podwire-test.log
