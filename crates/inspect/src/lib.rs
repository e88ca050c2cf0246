//! What podwire did and built on a node, read back for people: never from a stored copy, always
//! from the kernel (links, addresses, route lookups, nftables), the IPAM state directory, the
//! result cache and the plugins' log file. `podwirectl` prints what this crate models.
//!
//! - [`trace`]: the timed operations the plugins wrote to their `logFile`
//! - [`node`]: bridges, ports, pods, IPAM use, routes out, nftables rules, inconsistencies
//! - [`path`]: the hops between two addresses, asked of the kernel namespace by namespace
//! - [`routing`]: the peers the node agent did not route, and why (its state file)
//! - [`svg`]: the node as a picture

pub mod node;
pub mod path;
pub mod policy;
pub mod routing;
pub mod svg;
pub mod trace;

/// A container ID short enough to read (as `docker ps` shows it: 12 characters).
pub fn short_id(id: &str) -> &str {
    match id.char_indices().nth(12) {
        Some((i, _)) => &id[..i],
        None => id,
    }
}

/// Errors are for people: one sentence each.
pub type Result<T> = std::result::Result<T, String>;
