//! Forgetting the UDP conntrack entries of host ports whose mapping changed.

use crate::kernel_error;
use crate::mapping::{Mapping, Protocol};
use cni::{trace, Result};
use kernel::nft::Nftables;
use std::collections::HashSet;

/// Forgets the UDP conntrack entries of these host ports (TCP and SCTP connections end on
/// their own; a UDP "connection" lives as long as the client keeps sending). Through the
/// nftables socket: nfnetlink serves conntrack on it too.
pub fn flush_udp<'m>(
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
