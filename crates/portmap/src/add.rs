//! ADD: one map element per mapping and family, in one batch, refused as a whole when a key is
//! held by another attachment. Then the bridge may route 127.0.0.1, and the UDP ports' stale
//! conntrack entries go.

use crate::mapping::{self, Mapping};
use crate::ruleset::{self, Entry, MapKind};
use crate::structure::{self, Structure};
use crate::{conflict, conntrack, list, prev_result, retry, tag_of, Attempt};
use cni::{trace, CmdArgs, CniResult, Error, Result};
use kernel::nft::{Element, Nftables, Transaction};
use std::collections::{HashMap, HashSet};

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
    let nft = Nftables::new()?;
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
    conntrack::flush_udp(&nft, entries.iter().map(|e| (&e.mapping, e.map.v6)))?;
    Ok(prev)
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

pub(crate) fn add_entries(
    nft: &Nftables,
    entries: &[Entry],
    tag: &str,
    bridge: Option<&str>,
) -> Result<()> {
    let op = format!("add port mappings for {tag}");
    let table = ruleset::table();
    // The elements to delete first: ours from an earlier ADD of this attachment, now different.
    let mut replace: Vec<&Entry> = Vec::new();
    retry(&op, || {
        let add = |tx: &mut Transaction<'_>| {
            for map in MapKind::ALL {
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
        let committed = match structure::structure(nft)? {
            Structure::Intact => {
                let mut tx = nft.transaction(&table);
                for map in MapKind::ALL {
                    let old: Vec<Vec<u8>> = replace
                        .iter()
                        .filter(|e| e.map == map)
                        .map(|e| e.key.clone())
                        .collect();
                    tx.delete_elements(map.name(), &old);
                }
                add(&mut tx);
                tx.commit(&op)
            }
            Structure::Absent => {
                let mut tx = nft.transaction(&table);
                structure::setup(&mut tx);
                add(&mut tx);
                tx.commit(&op)
            }
            Structure::Broken(why) => rebuild(nft, &op, entries, tag, &why, add)?,
        };
        match committed {
            Ok(()) => return Ok(Attempt::Done(())),
            Err(e) if e.is_generation_changed() => return Ok(Attempt::Changed),
            Err(e) if e.is_exists() || e.is_not_found() => {}
            Err(e) => return Err(cni::Error::from(e)),
        }
        // A key is taken (or one we meant to replace went away): by whom?
        replace.clear();
        let mut already_ours = 0;
        let keys: Vec<(MapKind, &[u8])> = entries.iter().map(|e| (e.map, &e.key[..])).collect();
        let held = ruleset::held(nft, &keys)?;
        for (e, held) in entries.iter().zip(held) {
            let Some(held) = held else {
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
            return Ok(Attempt::Done(())); // a repeated ADD: everything is in place
        }
        Ok(Attempt::Changed)
    })
}

/// The table is there but its rules are not this version's whole set (flushed by a firewall
/// reload, or set up by another release): every mapping in it is dead. Rebuilds it with every
/// element it holds, this ADD's included, in one batch (see [`structure::rebuild`]). A key held
/// by another attachment is refused as always, before anything changes.
fn rebuild(
    nft: &Nftables,
    op: &str,
    entries: &[Entry],
    tag: &str,
    why: &str,
    add: impl Fn(&mut Transaction<'_>),
) -> Result<kernel::Result<()>> {
    let mut s = trace::step("restore");
    let generation = nft.generation()?;
    let mut keep = structure::all_elements(nft)?;
    let ours: HashMap<(&str, &[u8]), &Entry> = entries
        .iter()
        .map(|e| ((e.map.name(), &e.key[..]), e))
        .collect();
    let mut kept = 0;
    for (set, elements) in &mut keep {
        for el in elements.iter() {
            if let Some(e) = ours.get(&(*set, &el.key[..])) {
                if el.tag.as_deref() != Some(tag) {
                    return Err(conflict(&e.mapping, el.tag.as_deref()));
                }
            }
        }
        // This ADD's own keys go in as it makes them.
        elements.retain(|el| !ours.contains_key(&(*set, &el.key[..])));
        kept += elements.len();
    }
    cni::log::warn(&format!(
        "table inet {}: {why}; rebuilding it with its {kept} element(s)",
        ruleset::TABLE
    ));
    s.detail(format_args!("{why}: rebuilt, {kept} element(s) kept"));
    Ok(structure::rebuild(nft, generation, op, &keep, add))
}

/// 127.0.0.1 traffic DNAT'ed to a pod must be routable out of the pod's host interface.
pub(crate) fn route_localnet(ifname: &str) {
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
