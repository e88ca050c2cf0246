//! podwire's reliability and security suites (tests/*.rs) and the harness they share:
//!
//! - [`binaries`]: the release `podwire`/`podwire-ipam` the suites exec, and a fault-injection build
//! - [`node`]: a throwaway "node" netns with private IPAM and cache dirs, throwaway pod netns,
//!   all removed on Drop even when a test fails
//! - [`plugin`]: exec a plugin binary with a CNI environment inside the node, optionally killing it
//! - [`state`]: read back what is left: host veths, allocation files, nft rules, cache entries
//! - [`report`]: each suite's figures, printed (past the test harness' capture) and kept in a file
//! - [`rng`]: a small seeded generator, so a failing run can be replayed with `PODWIRE_SEED`
//!
//! Bounded by default for CI; `PODWIRE_LONG=1` makes every suite run ten to fifty times longer.

pub mod binaries;
pub mod node;
pub mod plugin;
pub mod report;
pub mod rng;
pub mod state;

/// `PODWIRE_LONG=1`: the long runs documented in docs/security.md.
pub fn long() -> bool {
    std::env::var("PODWIRE_LONG").is_ok_and(|v| v == "1" || v == "true")
}

/// A count from the environment, else `short` (CI) or `long` (`PODWIRE_LONG=1`).
pub fn count(var: &str, short: usize, long_run: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if long() { long_run } else { short })
}

/// The suites need root (netns, bridges, nftables).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
