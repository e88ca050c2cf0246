//! Forgetting the UDP conntrack entries of host ports whose mapping changed: only those a
//! mapping could translate, i.e. whose original destination is the mapping's host IP or, for a
//! mapping on every address, one of the node's own addresses. A flow through the node to port
//! 53 elsewhere (a pod asking an outside DNS server, a Service's DNAT to CoreDNS) is not the
//! host port's and keeps its entry.

use crate::mapping::{Mapping, Protocol};
use cni::{trace, Result};
use kernel::conntrack::Flow;
use kernel::nft::Nftables;
use kernel::IpFamily;
use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;

/// The UDP host ports of one family: on every address, and bound to one.
#[derive(Default)]
struct Ports {
    any: HashSet<u16>,
    bound: HashSet<(IpAddr, u16)>,
}

impl Ports {
    fn is_empty(&self) -> bool {
        self.any.is_empty() && self.bound.is_empty()
    }

    fn all(&self) -> BTreeSet<u16> {
        self.any
            .iter()
            .copied()
            .chain(self.bound.iter().map(|b| b.1))
            .collect()
    }

    /// Whether a mapping of these could translate `flow`; `local`: the node's addresses.
    fn translate(&self, flow: &Flow, local: &HashSet<IpAddr>) -> bool {
        let (Some(dst), Some(port)) = (flow.dst, flow.dport) else {
            return false;
        };
        self.bound.contains(&(dst, port))
            || (self.any.contains(&port) && (dst.is_loopback() || local.contains(&dst)))
    }
}

/// Forgets the UDP conntrack entries of these host ports (TCP and SCTP connections end on
/// their own; a UDP "connection" lives as long as the client keeps sending). One dump per
/// family whatever the number of ports (each dump walks the whole conntrack hash), through
/// the nftables socket: nfnetlink serves conntrack on it too.
pub fn flush_udp<'m>(
    nft: &Nftables,
    mappings: impl Iterator<Item = (&'m Mapping, bool)> + Clone,
) -> Result<()> {
    for v6 in [false, true] {
        let mut ports = Ports::default();
        for (m, _) in mappings
            .clone()
            .filter(|(m, is_v6)| m.protocol == Protocol::Udp && *is_v6 == v6)
        {
            match m.host_ip {
                Some(ip) => ports.bound.insert((ip, m.host_port)),
                None => ports.any.insert(m.host_port),
            };
        }
        if ports.is_empty() {
            continue;
        }
        let mut s = trace::step("conntrack");
        let local = if ports.any.is_empty() {
            HashSet::new()
        } else {
            node_addresses(v6)?
        };
        let all = ports.all();
        // One port: the kernel filters on it too.
        let only = (all.len() == 1).then(|| all.first().copied()).flatten();
        let n = nft.conntrack_delete_where(v6, Protocol::Udp.number(), only, |f| {
            ports.translate(f, &local)
        })?;
        let fam = if v6 { "IPv6" } else { "IPv4" };
        s.detail(format_args!(
            "flushed {n} {fam} UDP entries to the node's address(es) on {} port(s) from {}",
            all.len(),
            all.first().copied().unwrap_or_default()
        ));
    }
    Ok(())
}

/// The addresses of the node (this netns), of one family.
fn node_addresses(v6: bool) -> Result<HashSet<IpAddr>> {
    let family = if v6 { IpFamily::V6 } else { IpFamily::V4 };
    Ok(kernel::local_addresses(family)?.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(dst: &str, dport: u16) -> Flow {
        Flow {
            proto: 17,
            src: Some("10.77.0.3".parse().unwrap()),
            dst: Some(dst.parse().unwrap()),
            sport: Some(40000),
            dport: Some(dport),
        }
    }

    #[test]
    fn only_flows_a_mapping_could_translate_are_flushed() {
        let local: HashSet<IpAddr> = ["10.78.0.1".parse().unwrap()].into();
        let mut p = Ports::default();
        p.any.insert(53);
        assert!(p.translate(&flow("10.78.0.1", 53), &local));
        assert!(p.translate(&flow("127.0.0.1", 53), &local));
        assert!(!p.translate(&flow("10.78.0.2", 53), &local), "elsewhere");
        assert!(!p.translate(&flow("10.78.0.1", 54), &local), "another port");
        let mut b = Ports::default();
        b.bound.insert(("10.78.0.1".parse().unwrap(), 53));
        assert!(b.translate(&flow("10.78.0.1", 53), &HashSet::new()));
        assert!(
            !b.translate(&flow("10.77.0.1", 53), &local),
            "another address"
        );
    }
}
