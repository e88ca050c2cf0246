//! podwire-portmap: the reference `portmap` plugin's hostPort mappings over nftables (see
//! [`ruleset`] for the table), chained after the main plugin with
//! `"capabilities": {"portMappings": true}`.
//!
//! - ADD: one map element per mapping and family, in one batch, refused as a whole when a key is
//!   held by another attachment (the error names it). UDP conntrack entries of the new ports are
//!   then flushed, so a client that was talking to the port before is not stuck.
//! - DEL: deletes the elements of this attachment's mappings (looked up by key, checked against
//!   the owner tag, so a DEL after a refused ADD never removes the holder's), then flushes their
//!   UDP conntrack entries. No mappings: nothing to do, no netlink.
//! - CHECK: each element is there, ours, and points at the pod. GC: elements of this network's
//!   attachments missing from `cni.dev/valid-attachments` go. STATUS: nf_tables answers.

pub mod mapping;
pub mod ruleset;

use cni::error::plugin_code;
use cni::{trace, CmdArgs, CniResult, Error, Plugin, Result};
use kernel::nft::{Element, Nftables};
use mapping::{Mapping, Protocol};
use ruleset::{Entry, MapKind};
use std::collections::HashSet;

pub struct PortmapPlugin;

impl Plugin for PortmapPlugin {
    fn add(&self, a: &CmdArgs) -> Result<CniResult> {
        add(a)
    }
    fn del(&self, a: &CmdArgs) -> Result<()> {
        del(a)
    }
    fn check(&self, a: &CmdArgs) -> Result<()> {
        check(a)
    }
    fn gc(&self, a: &CmdArgs) -> Result<()> {
        gc(a)
    }
    fn status(&self, _a: &CmdArgs) -> Result<()> {
        let nft = Nftables::new().map_err(kernel_error)?;
        nft.elements(&ruleset::table(), MapKind::ALL[0].name())
            .map(drop)
            .map_err(kernel_error)
    }
}

fn kernel_error(e: kernel::Error) -> Error {
    Error::plugin(plugin_code::KERNEL, e.to_string())
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

pub fn add(a: &CmdArgs) -> Result<CniResult> {
    let mut s = trace::step("mappings");
    let prev = prev_result(a)?;
    let mappings = mapping::from_conf(&a.conf)?;
    if mappings.is_empty() {
        s.detail("none: nothing to do");
        return Ok(prev);
    }
    refuse_duplicates(&mappings)?;
    let (v4, v6) = mapping::pod_addresses(&prev);
    let entries = ruleset::entries(&mappings, v4, v6);
    s.detail(list(entries.iter().map(|e| &e.mapping)));
    s.end();
    if entries.is_empty() {
        return Ok(prev);
    }
    let bridge = mapping::host_interface(&prev);
    let nft = Nftables::new().map_err(kernel_error)?;
    let tag = tag_of(a);
    let mut s = trace::step("nftables");
    add_entries(&nft, &entries, &tag, bridge)?;
    s.detail(format_args!(
        "{} map element(s) in inet {} tagged {tag}",
        entries.len(),
        ruleset::TABLE
    ));
    s.end();
    if let Some(bridge) = bridge.filter(|_| entries.iter().any(|e| !e.map.v6)) {
        let mut s = trace::step("sysctl");
        route_localnet(bridge);
        s.detail(format_args!("net/ipv4/conf/{bridge}/route_localnet=1"));
    }
    flush_udp(&nft, entries.iter().map(|e| (&e.mapping, e.map.v6)))?;
    Ok(prev)
}

/// The mappings, one `8080/tcp -> 80` (with `host-ip:` when bound) each, for a trace.
fn list<'m>(mappings: impl Iterator<Item = &'m Mapping>) -> String {
    let all: Vec<String> = mappings.map(ToString::to_string).collect();
    all.join(", ")
}

/// Two mappings of one pod on the same host port/protocol/host IP cannot both hold it.
fn refuse_duplicates(mappings: &[Mapping]) -> Result<()> {
    let mut seen = HashSet::new();
    for m in mappings {
        if !seen.insert((m.host_port, m.protocol, m.host_ip)) {
            return Err(Error::invalid_config(format!(
                "host port {}/{} is mapped twice in runtimeConfig.portMappings",
                m.host_port,
                m.protocol.name()
            )));
        }
    }
    Ok(())
}

fn add_entries(nft: &Nftables, entries: &[Entry], tag: &str, bridge: Option<&str>) -> Result<()> {
    let op = format!("add port mappings for {tag}");
    let table = ruleset::table();
    // The elements to delete first: ours from an earlier ADD of this attachment, now different.
    let mut replace: Vec<&Entry> = Vec::new();
    for _ in 0..3 {
        let build = |tx: &mut kernel::nft::Transaction<'_>| {
            for map in MapKind::ALL {
                let old: Vec<Vec<u8>> = replace
                    .iter()
                    .filter(|e| e.map == map)
                    .map(|e| e.key.clone())
                    .collect();
                tx.delete_elements(map.name(), &old);
                let new: Vec<Element> = entries
                    .iter()
                    .filter(|e| e.map == map)
                    .map(|e| ruleset::element(e, tag))
                    .collect();
                tx.add_elements(map.name(), &new, true);
            }
            if let Some(bridge) = bridge {
                let b = Element {
                    key: ruleset::ifname_key(bridge),
                    data: None,
                    tag: None,
                };
                tx.add_elements(ruleset::BRIDGES, &[b], false);
            }
        };
        match ruleset::commit_with_setup(nft, &op, build) {
            Ok(()) => return Ok(()),
            Err(e) if e.is_exists() || e.is_not_found() => {}
            Err(e) => return Err(kernel_error(e)),
        }
        // A key is taken (or one we meant to replace went away): by whom?
        replace.clear();
        let mut already_ours = 0;
        for e in entries {
            let Some(held) = nft
                .element(&table, e.map.name(), &e.key)
                .map_err(kernel_error)?
            else {
                continue;
            };
            if held.tag.as_deref() != Some(tag) {
                return Err(conflict(&e.mapping, held.tag.as_deref()));
            }
            if held.data.as_deref() == Some(&e.data[..]) {
                already_ours += 1;
            }
            replace.push(e);
        }
        if already_ours == entries.len() {
            return Ok(()); // a repeated ADD: everything is in place
        }
    }
    Err(Error::try_again_later(format!(
        "{op}: the node's port mappings kept changing; try again"
    )))
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

/// 127.0.0.1 traffic DNAT'ed to a pod must be routable out of the pod's host interface.
fn route_localnet(ifname: &str) {
    let key = kernel::sysctl::ipv4_conf(ifname, "route_localnet");
    if kernel::sysctl::read(&key).is_ok_and(|v| v.trim() == "1") {
        return;
    }
    if let Err(e) = kernel::sysctl::write(&key, "1") {
        cni::log::warn(&format!(
            "cannot enable route_localnet on {ifname} (127.0.0.1 will not reach host ports): {e}"
        ));
    }
}

/// Forgets the UDP conntrack entries of these host ports (TCP and SCTP connections end on
/// their own; a UDP "connection" lives as long as the client keeps sending). Through the
/// nftables socket: nfnetlink serves conntrack on it too.
fn flush_udp<'m>(
    nft: &Nftables,
    mappings: impl Iterator<Item = (&'m Mapping, bool)>,
) -> Result<()> {
    let mut done = HashSet::new();
    for (m, v6) in mappings {
        if m.protocol != Protocol::Udp || !done.insert((m.host_port, v6)) {
            continue;
        }
        let mut s = trace::step("conntrack");
        nft.conntrack_delete_by_dport(v6, m.protocol.number(), m.host_port)
            .map_err(kernel_error)?;
        let fam = if v6 { "IPv6" } else { "IPv4" };
        s.detail(format_args!(
            "flushed {fam} UDP entries to port {}",
            m.host_port
        ));
    }
    Ok(())
}

pub fn del(a: &CmdArgs) -> Result<()> {
    let mappings = mapping::from_conf(&a.conf)?;
    if mappings.is_empty() {
        return Ok(());
    }
    let tag = tag_of(a);
    let op = format!("delete port mappings of {tag}");
    let nft = Nftables::new().map_err(kernel_error)?;
    let table = ruleset::table();
    let mut s = trace::step("nftables");
    for attempt in 0.. {
        // By key, and only when the element is ours: after a refused ADD the runtime calls DEL
        // with the same mappings, and the holder's elements must survive it.
        let mut doomed: Vec<(&Mapping, MapKind, Vec<u8>)> = Vec::new();
        for m in &mappings {
            for &v6 in ruleset::families(m) {
                let (map, key) = ruleset::key(m, v6);
                let held = nft
                    .element(&table, map.name(), &key)
                    .map_err(kernel_error)?;
                if held.is_some_and(|h| h.tag.as_deref() == Some(tag.as_str())) {
                    doomed.push((m, map, key));
                }
            }
        }
        if doomed.is_empty() {
            s.detail("no element of this attachment left");
            return Ok(());
        }
        let mut tx = nft.transaction(&table);
        for map in MapKind::ALL {
            let keys: Vec<Vec<u8>> = doomed
                .iter()
                .filter(|d| d.1 == map)
                .map(|d| d.2.clone())
                .collect();
            tx.delete_elements(map.name(), &keys);
        }
        match tx.commit(&op) {
            Ok(()) => {
                s.detail(format_args!(
                    "removed {} map element(s): {}",
                    doomed.len(),
                    list(doomed.iter().map(|d| d.0))
                ));
                s.end();
                return flush_udp(&nft, doomed.iter().map(|d| (d.0, d.1.v6)));
            }
            // Deleted meanwhile (a concurrent DEL or GC): look again.
            Err(e) if e.is_not_found() && attempt < 3 => {}
            Err(e) => return Err(kernel_error(e)),
        }
    }
    unreachable!("the loop returns")
}

pub fn check(a: &CmdArgs) -> Result<()> {
    let prev = prev_result(a)?;
    let mappings = mapping::from_conf(&a.conf)?;
    if mappings.is_empty() {
        return Ok(());
    }
    let (v4, v6) = mapping::pod_addresses(&prev);
    let tag = tag_of(a);
    let nft = Nftables::new().map_err(kernel_error)?;
    let table = ruleset::table();
    let mut s = trace::step("nftables");
    let entries = ruleset::entries(&mappings, v4, v6);
    s.detail(format_args!("{} map element(s) to verify", entries.len()));
    for e in entries {
        let held = nft
            .element(&table, e.map.name(), &e.key)
            .map_err(kernel_error)?;
        let fail = |what: &str| {
            Err(Error::plugin(
                plugin_code::CHECK_MISMATCH,
                format!("port mapping {} ({}): {what}", e.mapping, e.map.name()),
            ))
        };
        match held {
            None => return fail("missing"),
            Some(h) if h.tag.as_deref() != Some(tag.as_str()) => {
                return Err(conflict(&e.mapping, h.tag.as_deref()))
            }
            Some(h) if h.data.as_deref() != Some(&e.data[..]) => {
                return fail("points somewhere else than the pod")
            }
            Some(_) => {}
        }
    }
    Ok(())
}

pub fn gc(a: &CmdArgs) -> Result<()> {
    let valid = a.conf.valid_attachments()?;
    let nft = Nftables::new().map_err(kernel_error)?;
    let table = ruleset::table();
    let op = format!("garbage-collect port mappings of network {}", a.conf.name);
    let mut s = trace::step("nftables");
    for attempt in 0.. {
        let mut tx = nft.transaction(&table);
        let mut removed = 0;
        for map in MapKind::ALL {
            let stale: Vec<Vec<u8>> = nft
                .elements(&table, map.name())
                .map_err(kernel_error)?
                .into_iter()
                .filter(|el| match el.tag.as_deref().and_then(parse_tag) {
                    Some((n, c, i)) => {
                        n == a.conf.name && !valid.contains(&(c.to_string(), i.to_string()))
                    }
                    None => false,
                })
                .map(|el| el.key)
                .collect();
            removed += stale.len();
            tx.delete_elements(map.name(), &stale);
        }
        match tx.commit(&op) {
            Err(e) if e.is_not_found() && attempt < 3 => {}
            Ok(()) => {
                s.detail(format_args!("removed {removed} stale map element(s)"));
                return Ok(());
            }
            Err(e) => return Err(kernel_error(e)),
        }
    }
    unreachable!("the loop returns")
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
