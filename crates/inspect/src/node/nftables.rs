//! podwire's nftables tables and podwire-portmap's mappings, read back.

use super::view::*;
use kernel::nft::{Nftables, Table};

/// podwire-portmap's mappings, read from its maps (none when the table does not exist).
pub(super) fn port_mappings(nft: &Nftables) -> Vec<PortMappingView> {
    let table = portmap::ruleset::table();
    let mut out = Vec::new();
    for map in portmap::ruleset::MapKind::ALL {
        let Ok(elements) = nft.elements(&table, map.name()) else {
            continue;
        };
        for el in &elements {
            let Some(hp) = portmap::ruleset::decode(map, el) else {
                continue;
            };
            let owner = hp.tag.as_deref().and_then(portmap::parse_tag);
            out.push(PortMappingView {
                host_ip: hp.host_ip,
                protocol: match hp.protocol {
                    6 => "tcp".into(),
                    17 => "udp".into(),
                    132 => "sctp".into(),
                    n => n.to_string(),
                },
                host_port: hp.host_port,
                pod_ip: hp.pod_ip,
                container_port: hp.container_port,
                network: owner.map(|o| o.0.to_string()),
                container_id: owner.map(|o| o.1.to_string()),
                ifname: owner.map(|o| o.2.to_string()),
            });
        }
    }
    out.sort_by_key(|m| (m.host_port, m.protocol.clone(), m.pod_ip));
    out
}

/// podwire's nftables tables.
pub fn nft_tables() -> [Table; 3] {
    [
        bridge::masq::table(),
        kernel::owned::node_table(),
        portmap::ruleset::table(),
    ]
}
