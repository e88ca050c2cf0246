//! Forgetting the UDP conntrack entries of host ports whose mapping changed.

use crate::kernel_error;
use crate::mapping::{Mapping, Protocol};
use cni::{trace, Result};
use kernel::nft::Nftables;
use std::collections::BTreeSet;

/// Forgets the UDP conntrack entries of these host ports (TCP and SCTP connections end on
/// their own; a UDP "connection" lives as long as the client keeps sending). One dump per
/// family whatever the number of ports (each dump walks the whole conntrack hash), through
/// the nftables socket: nfnetlink serves conntrack on it too.
pub fn flush_udp<'m>(
    nft: &Nftables,
    mappings: impl Iterator<Item = (&'m Mapping, bool)> + Clone,
) -> Result<()> {
    for v6 in [false, true] {
        let ports: BTreeSet<u16> = mappings
            .clone()
            .filter(|(m, is_v6)| m.protocol == Protocol::Udp && *is_v6 == v6)
            .map(|(m, _)| m.host_port)
            .collect();
        let Some(&first) = ports.first() else {
            continue;
        };
        let mut s = trace::step("conntrack");
        // One port: the kernel filters on it too.
        let only = (ports.len() == 1).then_some(first);
        let n = nft
            .conntrack_delete_where(v6, Protocol::Udp.number(), only, |f| {
                f.dport.is_some_and(|p| ports.contains(&p))
            })
            .map_err(kernel_error)?;
        let fam = if v6 { "IPv6" } else { "IPv4" };
        s.detail(format_args!(
            "flushed {n} {fam} UDP entries to {} port(s) from {first}",
            ports.len()
        ));
    }
    Ok(())
}
