//! podwire-portmap: the reference `portmap` plugin's hostPort mappings over nftables (see
//! [`ruleset`] for the table), chained after the main plugin with
//! `"capabilities": {"portMappings": true}`.
//!
//! - [`add`]: one map element per mapping and family, in one batch, refused as a whole when a key
//!   is held by another attachment (the error names it). UDP conntrack entries of the new ports
//!   are then flushed, so a client that was talking to the port before is not stuck.
//! - [`del`]: deletes the elements of this attachment's mappings (looked up by key, checked
//!   against the owner tag, so a DEL after a refused ADD never removes the holder's), then
//!   flushes their UDP conntrack entries. No mappings: nothing to do, no netlink.
//! - [`check`]: each element is there, ours, and points at the pod. [`gc`]: elements of this
//!   network's attachments missing from `cni.dev/valid-attachments` go. STATUS: nf_tables
//!   answers.
//! - [`structure`]: the table's chains and rules, versioned, checked by ADD and CHECK, rebuilt
//!   by ADD; [`restore`]: the same for the node agent, from libcni's result cache.

pub mod add;
pub mod check;
mod conntrack;
pub mod del;
pub mod gc;
pub mod mapping;
pub mod restore;
pub mod ruleset;
pub mod structure;

use cni::error::plugin_code;
use cni::{CmdArgs, CniResult, Error, Plugin, Result};
use mapping::Mapping;

pub struct PortmapPlugin;

impl Plugin for PortmapPlugin {
    fn add(&self, a: &CmdArgs) -> Result<CniResult> {
        add::add(a)
    }
    fn del(&self, a: &CmdArgs) -> Result<()> {
        del::del(a)
    }
    fn check(&self, a: &CmdArgs) -> Result<()> {
        check::check(a)
    }
    fn gc(&self, a: &CmdArgs) -> Result<()> {
        gc::gc(a)
    }
    fn status(&self, _a: &CmdArgs) -> Result<()> {
        gc::status()
    }
}

const TAG_PREFIX: &str = "podwire-portmap/";

/// The owner tag on an attachment's elements: `podwire-portmap/<network>/<container>/<ifname>`
/// (`/` is valid in none of the three).
pub fn tag(network: &str, container_id: &str, ifname: &str) -> String {
    format!("{TAG_PREFIX}{network}/{container_id}/{ifname}")
}

/// (network, container ID, ifname) of a tag.
pub fn parse_tag(tag: &str) -> Option<(&str, &str, &str)> {
    let mut parts = tag.strip_prefix(TAG_PREFIX)?.splitn(3, '/');
    let (n, c, i) = (parts.next()?, parts.next()?, parts.next()?);
    (!n.is_empty() && !c.is_empty() && !i.is_empty() && !i.contains('/')).then_some((n, c, i))
}

fn tag_of(a: &CmdArgs) -> String {
    tag(&a.conf.name, &a.container_id, &a.ifname)
}

fn prev_result(a: &CmdArgs) -> Result<CniResult> {
    let prev = a.conf.prev_result.as_ref().ok_or_else(|| {
        Error::invalid_config(
            "podwire-portmap must be chained after a plugin that returns a result (no prevResult)",
        )
    })?;
    CniResult::from_value(prev)
}

/// How many mappings a trace line names before it only counts the rest (a port range).
const LISTED: usize = 8;

/// The mappings, one `8080/tcp -> 80` (with `host-ip:` when bound) each, for a trace.
fn list<'m>(mappings: impl Iterator<Item = &'m Mapping>) -> String {
    let mut shown: Vec<String> = Vec::new();
    let mut more = 0;
    for m in mappings {
        if shown.len() < LISTED {
            shown.push(m.to_string());
        } else {
            more += 1;
        }
    }
    if more > 0 {
        shown.push(format!("and {more} more"));
    }
    shown.join(", ")
}

fn conflict(m: &Mapping, holder: Option<&str>) -> Error {
    let port = match m.host_ip {
        Some(ip) => format!("{ip} port {}/{}", m.host_port, m.protocol.name()),
        None => format!("host port {}/{}", m.host_port, m.protocol.name()),
    };
    let who = match holder.and_then(parse_tag) {
        Some((network, container, ifname)) => {
            format!("container {container} (network {network:?}, interface {ifname})")
        }
        None => format!("another owner ({})", holder.unwrap_or("untagged")),
    };
    Error::plugin(
        plugin_code::PORT_CONFLICT,
        format!("{port} is already mapped to {who}"),
    )
}

/// What one attempt of a read-then-commit operation found.
enum Attempt<T> {
    Done(T),
    /// The batch failed because the node's mappings changed between the read and the commit
    /// (a concurrent ADD, DEL or GC): read again.
    Changed,
}

/// How many times an operation reads and commits before it gives up on a node whose
/// mappings keep changing under it.
const ATTEMPTS: usize = 3;

/// Runs `attempt` until it is done, at most [`ATTEMPTS`] times; then a try-again-later error.
fn retry<T>(op: &str, mut attempt: impl FnMut() -> Result<Attempt<T>>) -> Result<T> {
    for _ in 0..ATTEMPTS {
        if let Attempt::Done(t) = attempt()? {
            return Ok(t);
        }
    }
    Err(Error::try_again_later(format!(
        "{op}: the node's port mappings kept changing; try again"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mapping::Protocol;

    #[test]
    fn tags_split_back() {
        let t = tag("net", "abc123", "eth0");
        assert_eq!(parse_tag(&t), Some(("net", "abc123", "eth0")));
        assert_eq!(parse_tag("podwire/net/abc/eth0"), None);
        assert_eq!(parse_tag("podwire-portmap/net/abc"), None);
    }

    #[test]
    fn conflict_names_the_holder() {
        let m = Mapping {
            host_port: 8080,
            container_port: 80,
            protocol: Protocol::Tcp,
            host_ip: None,
        };
        let e = conflict(&m, Some(&tag("net", "c0ffee", "eth0")));
        assert_eq!(e.code.number(), plugin_code::PORT_CONFLICT);
        assert!(e.msg.contains("host port 8080/tcp"), "{}", e.msg);
        assert!(e.msg.contains("container c0ffee"), "{}", e.msg);
    }

    #[test]
    fn retry_gives_up_with_try_again_later() {
        let mut n = 0;
        let e = retry::<()>("op", || {
            n += 1;
            Ok(Attempt::Changed)
        })
        .unwrap_err();
        assert_eq!(n, ATTEMPTS);
        assert_eq!(e.code, cni::Code::TryAgainLater);
        let mut n = 0;
        let got = retry("op", || {
            n += 1;
            Ok(if n == 2 {
                Attempt::Done(n)
            } else {
                Attempt::Changed
            })
        });
        assert_eq!(got.unwrap(), 2);
    }
}
