//! Address ranges: what an nftables interval set holds. ipBlocks with `except` become ranges,
//! pod addresses single-address ranges; the union of a rule's peers is merged into sorted,
//! disjoint, non-adjacent ranges, the form the kernel keeps and reads back (so a diff against
//! what it reads back compares like with like).

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An inclusive range of addresses of one family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AddrRange {
    pub start: IpAddr,
    pub end: IpAddr,
}

impl AddrRange {
    pub fn single(a: IpAddr) -> AddrRange {
        AddrRange { start: a, end: a }
    }

    pub fn of(net: IpNet) -> AddrRange {
        AddrRange {
            start: net.network(),
            end: net.broadcast(),
        }
    }

    pub fn is_v6(&self) -> bool {
        self.start.is_ipv6()
    }

    pub fn contains(&self, a: IpAddr) -> bool {
        a.is_ipv6() == self.is_v6() && self.start <= a && a <= self.end
    }
}

impl std::fmt::Display for AddrRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

fn to_u128(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v4) => u32::from(v4) as u128,
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn from_u128(n: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(n))
    } else {
        IpAddr::V4(Ipv4Addr::from(n as u32))
    }
}

/// Sorted, disjoint, non-adjacent ranges of one family.
fn merge(mut spans: Vec<(u128, u128)>) -> Vec<(u128, u128)> {
    spans.sort_unstable();
    let mut out: Vec<(u128, u128)> = Vec::with_capacity(spans.len());
    for (s, e) in spans {
        match out.last_mut() {
            Some(last) if s <= last.1.saturating_add(1) => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// `block` minus every range of `holes` (same family only; others are ignored).
fn subtract(block: (u128, u128), holes: &[(u128, u128)]) -> Vec<(u128, u128)> {
    let mut out = Vec::new();
    let mut from = block.0;
    for &(s, e) in &merge(holes.to_vec()) {
        if e < from || s > block.1 {
            continue;
        }
        if s > from {
            out.push((from, s - 1));
        }
        if e >= block.1 {
            return out;
        }
        from = e + 1;
    }
    out.push((from, block.1));
    out
}

/// The addresses of `cidr` except those of `except` (an ipBlock).
pub fn block_except(cidr: IpNet, except: &[IpNet]) -> Vec<AddrRange> {
    let v6 = cidr.addr().is_ipv6();
    let span = |n: &IpNet| (to_u128(n.network()), to_u128(n.broadcast()));
    let holes: Vec<(u128, u128)> = except
        .iter()
        .filter(|e| e.addr().is_ipv6() == v6)
        .map(span)
        .collect();
    subtract(span(&cidr), &holes)
        .into_iter()
        .map(|(s, e)| AddrRange {
            start: from_u128(s, v6),
            end: from_u128(e, v6),
        })
        .collect()
}

/// The union of `ranges` of family `v6`, merged and sorted.
pub fn union(ranges: impl IntoIterator<Item = AddrRange>, v6: bool) -> Vec<AddrRange> {
    let spans = ranges
        .into_iter()
        .filter(|r| r.is_v6() == v6)
        .map(|r| (to_u128(r.start), to_u128(r.end)))
        .collect();
    merge(spans)
        .into_iter()
        .map(|(s, e)| AddrRange {
            start: from_u128(s, v6),
            end: from_u128(e, v6),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn show(r: &[AddrRange]) -> Vec<String> {
        r.iter().map(|r| r.to_string()).collect()
    }

    #[test]
    fn except_punches_holes() {
        let r = block_except(
            net("10.0.0.0/24"),
            &[net("10.0.0.2/32"), net("10.0.0.128/25")],
        );
        assert_eq!(show(&r), ["10.0.0.0-10.0.0.1", "10.0.0.3-10.0.0.127"]);
        // Overlapping and unordered holes, one at each edge.
        let r = block_except(
            net("10.0.0.0/29"),
            &[net("10.0.0.7/32"), net("10.0.0.0/31"), net("10.0.0.1/32")],
        );
        assert_eq!(show(&r), ["10.0.0.2-10.0.0.6"]);
        assert!(block_except(net("10.0.0.0/24"), &[net("10.0.0.0/16")]).is_empty());
        // An except of the other family or outside the block changes nothing.
        let r = block_except(net("10.0.0.0/30"), &[net("fd00::/8"), net("10.1.0.0/16")]);
        assert_eq!(show(&r), ["10.0.0.0-10.0.0.3"]);
        let r = block_except(net("fd00::/126"), &[net("fd00::1/128")]);
        assert_eq!(show(&r), ["fd00::", "fd00::2-fd00::3"]);
        let all = block_except(net("0.0.0.0/0"), &[net("255.255.255.255/32")]);
        assert_eq!(show(&all), ["0.0.0.0-255.255.255.254"]);
        let all6 = block_except(net("::/0"), &[]);
        assert_eq!(
            all6[0].end,
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
                .parse::<IpAddr>()
                .unwrap()
        );
    }

    #[test]
    fn union_merges_overlapping_and_adjacent_and_splits_families() {
        let a = |s: &str| AddrRange::single(s.parse().unwrap());
        let r = union(
            [
                a("10.0.0.5"),
                AddrRange::of(net("10.0.0.0/30")),
                a("10.0.0.4"),
                a("10.0.0.9"),
                a("fd00::1"),
                a("10.0.0.9"),
            ],
            false,
        );
        assert_eq!(show(&r), ["10.0.0.0-10.0.0.5", "10.0.0.9"]);
        assert_eq!(
            show(&union([a("fd00::1"), a("10.0.0.1")], true)),
            ["fd00::1"]
        );
    }
}
