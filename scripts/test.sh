#!/usr/bin/env bash
# Runs every podwire check: formatting, lints, unit tests and the integration suites that touch the
# real kernel (throwaway network namespaces), as root on Debian 12. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup-host.sh
prepare_host

# each step says when it starts (seconds since the script began), so a slow build shows where
phase() { echo "== [$(date -u +%M:%S -d @$SECONDS)] $*"; }
# One full build, not an edit loop: incremental compilation's bookkeeping would only cost here.
export CARGO_INCREMENTAL=0
phase "cargo fmt --check"
cargo fmt --all -- --check
phase "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
# The suites exec the shipped plugins from target/release (the `plugin` profile) and a static
# podwirectl from target/quick (the DaemonSet's distroless image); every other binary they need
# (podwirectl, kubesim, podwire-cri) they build themselves in the tests' own profile. (Building
# these two beside clippy was tried: 3:33 against 3:34 one after the other, the cores are busy.)
phase "the plugins as shipped, into target/release (scripts/setup-host.sh's link_plugins_static)"
link_plugins_static
phase "podwirectl static, unoptimised, into target/quick (the DaemonSet test's image)"
link_podwirectl_static
require_static "${CARGO_TARGET_DIR:-target}/quick/podwirectl"
phase "scripts/install-plugins.sh (the documented install: static plugins, checked after install)"
plugins_dir="$(mktemp -d)"
./scripts/install-plugins.sh "$plugins_dir"
require_static "$plugins_dir"/{podwire,podwire-ipam,podwire-portmap,loopback}
cmp "$plugins_dir/podwire" "${CARGO_TARGET_DIR:-target}/release/podwire" # the suites exec these
rm -rf "$plugins_dir"
phase "cargo test: building the test targets"
cargo test --workspace --no-run --quiet
phase "cargo test: running"
cargo test --workspace --no-fail-fast --quiet 2>&1 | tee /tmp/podwire-test.log
phase "done"
