//! Putting the node's port mappings back after someone else's change to the table (a firewall
//! reload that flushed it), for the node agent's resync. podwire-portmap keeps no state of its
//! own on disk: what it needs is what libcni's result cache already holds for every attachment
//! (`/var/lib/cni/results/<network>-<containerID>-<ifname>`: the network name, container ID and
//! interface, `capabilityArgs.portMappings`, and the result, whose interfaces and IPs are the
//! prevResult portmap saw). The agent reads those (through the runtime library) and calls
//! [`restore`] with one [`Attachment`] each.

use crate::add::{add_entries, route_localnet};
use crate::mapping::{self, Mapping};
use crate::structure::{self, Structure};
use crate::{ruleset, tag};
use cni::{CniResult, Error, Result};
use kernel::nft::Nftables;
use serde_json::Value;

/// One attachment whose mappings must be in the table.
#[derive(Clone, Debug)]
pub struct Attachment {
    pub network: String,
    pub container_id: String,
    pub ifname: String,
    pub mappings: Vec<Mapping>,
    /// The chain's result for the attachment (its pod addresses and host interface).
    pub result: CniResult,
}

impl Attachment {
    /// From a cache entry's parts: `port_mappings` is its `capabilityArgs.portMappings`.
    pub fn new(
        network: &str,
        container_id: &str,
        ifname: &str,
        port_mappings: &Value,
        result: CniResult,
    ) -> Result<Attachment> {
        Ok(Attachment {
            network: network.into(),
            container_id: container_id.into(),
            ifname: ifname.into(),
            mappings: mapping::from_value(port_mappings)?,
            result,
        })
    }

    fn tag(&self) -> String {
        tag(&self.network, &self.container_id, &self.ifname)
    }
}

/// What [`restore`] found and did.
#[derive(Debug)]
pub struct Restored {
    /// The table's structure before.
    pub found: Structure,
    /// Attachments whose mappings are in place now (put back or already there).
    pub in_place: usize,
    /// Attachments that could not be put back (a port now held by another), by owner tag.
    pub failed: Vec<(String, Error)>,
}

/// Ensures the table has this version's structure (rebuilt, keeping its elements, if not) and
/// holds every mapping of `attachments`, in the calling thread's netns. Idempotent: on an
/// intact node it only reads. An attachment whose port is now held by another is reported in
/// [`Restored::failed`], the others are restored all the same.
pub fn restore(attachments: &[Attachment]) -> Result<Restored> {
    let nft = Nftables::new()?;
    let found = structure::structure(&nft)?;
    let mut r = Restored {
        found,
        in_place: 0,
        failed: Vec::new(),
    };
    for a in attachments {
        let (v4, v6) = mapping::pod_addresses(&a.result);
        let entries = ruleset::entries(&a.mappings, v4, v6);
        if entries.is_empty() {
            continue;
        }
        let bridge = mapping::host_interface(&a.result);
        match add_entries(&nft, &entries, &a.tag(), bridge) {
            Ok(()) => r.in_place += 1,
            Err(e) => r.failed.push((a.tag(), e)),
        }
        if let Some(bridge) = bridge.filter(|_| entries.iter().any(|e| !e.map.v6)) {
            route_localnet(bridge);
        }
    }
    Ok(r)
}
