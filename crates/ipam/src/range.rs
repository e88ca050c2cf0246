//! Address ranges and range sets, with host-local's defaults and its round-robin iteration order.
//!
//! A `Range` is a subnet with an inclusive `[start, end]` window and a gateway; a `RangeSet` is a
//! list of ranges of one family from which exactly one address is allocated per attachment.

use cni::{Error, Result};
use ipnet::IpNet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address as an integer, so ranges of both families share one arithmetic.
fn to_int(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_int(v6: bool, n: u128) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(n))
    } else {
        IpAddr::V4(Ipv4Addr::from(n as u32))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub subnet: IpNet,
    /// First address handed out (inclusive).
    pub start: IpAddr,
    /// Last address handed out (inclusive).
    pub end: IpAddr,
    /// Reported in results and never handed out.
    pub gateway: IpAddr,
}

impl Range {
    /// Builds a range with host-local's defaults: gateway = first address of the subnet,
    /// start = first address, end = last address (IPv4: the one before broadcast). `what`
    /// names the range in errors (e.g. `ranges[0][1]`).
    pub fn new(
        what: &str,
        subnet: IpNet,
        start: Option<IpAddr>,
        end: Option<IpAddr>,
        gateway: Option<IpAddr>,
    ) -> Result<Range> {
        let bad = |msg: String| Error::invalid_config(format!("ipam {what}: {msg}"));
        if subnet.addr() != subnet.network() {
            return Err(bad(format!(
                "subnet {subnet} has host bits set (the network address is {}/{})",
                subnet.network(),
                subnet.prefix_len()
            )));
        }
        if let IpAddr::V6(a) = subnet.addr() {
            if a.to_ipv4_mapped().is_some() {
                return Err(bad(format!(
                    "subnet {subnet} is IPv4-mapped IPv6; write it as IPv4"
                )));
            }
        }
        if subnet.prefix_len() + 2 > subnet.max_prefix_len() {
            return Err(bad(format!(
                "subnet {subnet} is too small to allocate from (a /{} has no address besides network and broadcast; use /{} or larger)",
                subnet.prefix_len(),
                subnet.max_prefix_len() - 2
            )));
        }
        let v6 = subnet.addr().is_ipv6();
        let net = to_int(subnet.network());
        let last = to_int(subnet.broadcast());
        // IPv6 has no broadcast: only IPv4 loses its last address.
        let max = if v6 { last } else { last - 1 };
        let family_ok = |ip: &IpAddr| ip.is_ipv6() == v6;
        let inside = |name: &str, ip: IpAddr| -> Result<u128> {
            if !family_ok(&ip) {
                return Err(bad(format!(
                    "{name} {ip} is not of the family of subnet {subnet}"
                )));
            }
            let n = to_int(ip);
            if !subnet.contains(&ip) {
                return Err(bad(format!("{name} {ip} is not in subnet {subnet}")));
            }
            if n == net {
                return Err(bad(format!(
                    "{name} {ip} is the network address of {subnet}, which is never handed out"
                )));
            }
            if n > max {
                return Err(bad(format!(
                    "{name} {ip} is the broadcast address of {subnet}, which is never handed out"
                )));
            }
            Ok(n)
        };
        let s = match start {
            Some(ip) => inside("rangeStart", ip)?,
            None => net + 1,
        };
        let e = match end {
            Some(ip) => inside("rangeEnd", ip)?,
            None => max,
        };
        if s > e {
            return Err(bad(format!(
                "rangeStart {} is after rangeEnd {}",
                from_int(v6, s),
                from_int(v6, e)
            )));
        }
        let gateway = match gateway {
            Some(gw) if !family_ok(&gw) => {
                return Err(bad(format!(
                    "gateway {gw} is not of the family of subnet {subnet}"
                )))
            }
            Some(gw) if !subnet.contains(&gw) => {
                return Err(bad(format!("gateway {gw} is not in subnet {subnet}")))
            }
            Some(gw) => gw,
            None => from_int(v6, net + 1),
        };
        Ok(Range {
            subnet,
            start: from_int(v6, s),
            end: from_int(v6, e),
            gateway,
        })
    }

    pub fn is_ipv6(&self) -> bool {
        self.subnet.addr().is_ipv6()
    }

    /// Whether `ip` is in `[start, end]`. The gateway counts as inside: callers refuse it by name.
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv6() == self.is_ipv6()
            && to_int(self.start) <= to_int(ip)
            && to_int(ip) <= to_int(self.end)
    }

    /// How many addresses this range can hand out.
    pub fn size(&self) -> u128 {
        let span = to_int(self.end) - to_int(self.start) + 1;
        span - u128::from(self.contains(self.gateway))
    }

    fn overlaps(&self, other: &Range) -> bool {
        self.is_ipv6() == other.is_ipv6()
            && to_int(self.start) <= to_int(other.end)
            && to_int(other.start) <= to_int(self.end)
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}-{}]", self.subnet, self.start, self.end)
    }
}

/// One or more ranges of one family; an attachment gets exactly one address from a set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeSet {
    pub ranges: Vec<Range>,
}

impl RangeSet {
    /// Checks the set holds ranges of one family that do not overlap.
    pub fn new(what: &str, ranges: Vec<Range>) -> Result<RangeSet> {
        let Some(first) = ranges.first() else {
            return Err(Error::invalid_config(format!(
                "ipam {what}: a range set needs at least one range"
            )));
        };
        for (i, r) in ranges.iter().enumerate() {
            if r.is_ipv6() != first.is_ipv6() {
                return Err(Error::invalid_config(format!(
                    "ipam {what}: range set mixes address families ({} and {})",
                    first.subnet, r.subnet
                )));
            }
            for other in &ranges[i + 1..] {
                if r.overlaps(other) {
                    return Err(Error::invalid_config(format!(
                        "ipam {what}: ranges {r} and {other} overlap"
                    )));
                }
            }
        }
        Ok(RangeSet { ranges })
    }

    pub fn is_ipv6(&self) -> bool {
        self.ranges[0].is_ipv6()
    }

    pub fn overlaps(&self, other: &RangeSet) -> bool {
        self.ranges
            .iter()
            .any(|a| other.ranges.iter().any(|b| a.overlaps(b)))
    }

    /// The range that can hand out `ip`, if any.
    pub fn range_for(&self, ip: IpAddr) -> Option<&Range> {
        self.ranges.iter().find(|r| r.contains(ip))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.range_for(ip).is_some()
    }

    /// How many addresses the set can hand out in all.
    pub fn size(&self) -> u128 {
        self.ranges.iter().map(Range::size).sum()
    }

    /// Every address the set can hand out, once each, in host-local's round-robin order:
    /// from the one after `last_reserved` (when it is in the set) around to `last_reserved`
    /// itself, else from the first range's start. Gateways are skipped.
    pub fn candidates(&self, last_reserved: Option<IpAddr>) -> Candidates<'_> {
        let span = |r: &Range| to_int(r.end) - to_int(r.start) + 1;
        let remaining = self.ranges.iter().map(span).sum();
        let mut it = Candidates {
            set: self,
            range: 0,
            cur: to_int(self.ranges[0].start),
            remaining,
        };
        if let Some(last) = last_reserved {
            if let Some(i) = self.ranges.iter().position(|r| r.contains(last)) {
                it.range = i;
                it.cur = to_int(last);
                it.advance();
            }
        }
        it
    }
}

impl fmt::Display for RangeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// See [`RangeSet::candidates`]. Lazy: a /64 is never materialised.
pub struct Candidates<'a> {
    set: &'a RangeSet,
    range: usize,
    cur: u128,
    remaining: u128,
}

impl Candidates<'_> {
    fn advance(&mut self) {
        let r = &self.set.ranges[self.range];
        if self.cur == to_int(r.end) {
            self.range = (self.range + 1) % self.set.ranges.len();
            self.cur = to_int(self.set.ranges[self.range].start);
        } else {
            self.cur += 1;
        }
    }
}

impl<'a> Iterator for Candidates<'a> {
    /// The address and the range it belongs to.
    type Item = (IpAddr, &'a Range);

    fn next(&mut self) -> Option<Self::Item> {
        while self.remaining > 0 {
            self.remaining -= 1;
            let r = &self.set.ranges[self.range];
            let ip = from_int(r.is_ipv6(), self.cur);
            self.advance();
            if ip != r.gateway {
                return Some((ip, r));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn range(subnet: &str) -> Range {
        Range::new("t", subnet.parse().unwrap(), None, None, None).unwrap()
    }

    fn err(subnet: &str, start: Option<&str>, end: Option<&str>, gw: Option<&str>) -> String {
        let e = Range::new(
            "ranges[0][0]",
            subnet.parse().unwrap(),
            start.map(ip),
            end.map(ip),
            gw.map(ip),
        )
        .unwrap_err();
        assert_eq!(e.code.number(), 7, "{e}");
        e.msg
    }

    #[test]
    fn defaults_follow_host_local() {
        let r = range("10.1.2.0/24");
        assert_eq!(
            (r.start, r.end, r.gateway),
            (ip("10.1.2.1"), ip("10.1.2.254"), ip("10.1.2.1"))
        );
        assert_eq!(r.size(), 253, "254 usable less the gateway");
        // IPv6 has no broadcast: the last address is usable.
        let r = range("fd00::/120");
        assert_eq!(
            (r.start, r.end, r.gateway),
            (ip("fd00::1"), ip("fd00::ff"), ip("fd00::1"))
        );
        assert_eq!(r.size(), 254);
        // /30: two hosts, one is the gateway.
        assert_eq!(range("10.0.0.0/30").size(), 1);
        assert_eq!(range("fd00::/126").size(), 2);
    }

    #[test]
    fn explicit_window_and_gateway() {
        let r = Range::new(
            "t",
            "10.0.0.0/24".parse().unwrap(),
            Some(ip("10.0.0.10")),
            Some(ip("10.0.0.20")),
            Some(ip("10.0.0.254")),
        )
        .unwrap();
        assert_eq!(r.size(), 11, "gateway outside the window costs nothing");
        assert!(r.contains(ip("10.0.0.10")) && r.contains(ip("10.0.0.20")));
        assert!(!r.contains(ip("10.0.0.9")) && !r.contains(ip("10.0.0.21")));
        assert!(!r.contains(ip("fd00::10")));
    }

    #[test]
    fn bad_ranges_name_the_value() {
        assert!(err("10.0.0.0/31", None, None, None).contains("too small"));
        assert!(err("10.0.0.0/32", None, None, None).contains("10.0.0.0/32"));
        assert!(err("fd00::/127", None, None, None).contains("too small"));
        assert!(err("10.0.0.5/24", None, None, None).contains("host bits"));
        assert!(err("10.0.0.0/24", Some("10.0.1.1"), None, None).contains("10.0.1.1"));
        assert!(err("10.0.0.0/24", Some("10.0.0.0"), None, None).contains("network address"));
        assert!(err("10.0.0.0/24", None, Some("10.0.0.255"), None).contains("broadcast"));
        assert!(err("10.0.0.0/24", Some("10.0.0.9"), Some("10.0.0.8"), None).contains("is after"));
        assert!(err("10.0.0.0/24", None, None, Some("fd00::1")).contains("family"));
        assert!(err("10.0.0.0/24", Some("fd00::1"), None, None).contains("family"));
        assert!(err("::ffff:10.0.0.0/120", None, None, None).contains("IPv4-mapped"));
    }

    #[test]
    fn sets_reject_mixed_families_and_overlaps() {
        let e =
            RangeSet::new("ranges[0]", vec![range("10.0.0.0/24"), range("fd00::/64")]).unwrap_err();
        assert!(e.msg.contains("mixes"), "{e}");
        let e = RangeSet::new(
            "ranges[0]",
            vec![range("10.0.0.0/24"), range("10.0.0.0/25")],
        )
        .unwrap_err();
        assert!(e.msg.contains("overlap"), "{e}");
        assert!(RangeSet::new("ranges[0]", vec![]).is_err());
        let a = RangeSet::new("a", vec![range("10.0.0.0/24")]).unwrap();
        let b = RangeSet::new("b", vec![range("10.0.0.128/25")]).unwrap();
        let c = RangeSet::new("c", vec![range("10.0.1.0/24")]).unwrap();
        assert!(a.overlaps(&b) && !a.overlaps(&c));
    }

    fn all(set: &RangeSet, last: Option<&str>) -> Vec<String> {
        set.candidates(last.map(ip))
            .map(|(a, _)| a.to_string())
            .collect()
    }

    #[test]
    fn iteration_is_round_robin_from_last_reserved() {
        // 10.0.0.0/29: .1 is the gateway, .2-.6 are handed out.
        let set = RangeSet::new("s", vec![range("10.0.0.0/29")]).unwrap();
        assert_eq!(
            all(&set, None),
            ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]
        );
        assert_eq!(
            all(&set, Some("10.0.0.4")),
            ["10.0.0.5", "10.0.0.6", "10.0.0.2", "10.0.0.3", "10.0.0.4"]
        );
        // A last_reserved outside the set (the config changed) starts from the beginning.
        assert_eq!(all(&set, Some("10.9.9.9"))[0], "10.0.0.2");
        assert_eq!(all(&set, Some("fd00::3"))[0], "10.0.0.2");
    }

    #[test]
    fn iteration_crosses_ranges_of_a_set() {
        let a = Range::new(
            "a",
            "10.0.0.0/24".parse().unwrap(),
            Some(ip("10.0.0.10")),
            Some(ip("10.0.0.11")),
            None,
        )
        .unwrap();
        let b = Range::new(
            "b",
            "10.0.1.0/24".parse().unwrap(),
            Some(ip("10.0.1.1")),
            Some(ip("10.0.1.3")),
            None,
        )
        .unwrap();
        let set = RangeSet::new("s", vec![a, b]).unwrap();
        assert_eq!(set.size(), 4);
        assert_eq!(
            all(&set, Some("10.0.0.11")),
            ["10.0.1.2", "10.0.1.3", "10.0.0.10", "10.0.0.11"]
        );
        let (_, r) = set.candidates(Some(ip("10.0.0.11"))).next().unwrap();
        assert_eq!(r.subnet.to_string(), "10.0.1.0/24");
        assert_eq!(set.range_for(ip("10.0.1.3")).unwrap().subnet, r.subnet);
        // The gateway is inside the window but never a candidate.
        assert!(set.contains(ip("10.0.1.1")));
        assert!(!all(&set, None).contains(&"10.0.1.1".to_string()));
    }

    #[test]
    fn iteration_of_a_huge_v6_range_is_lazy() {
        let set = RangeSet::new("s", vec![range("fd00::/64")]).unwrap();
        assert_eq!(set.size(), (1u128 << 64) - 2, "all but network and gateway");
        let first: Vec<_> = set.candidates(None).take(2).map(|(a, _)| a).collect();
        assert_eq!(first, [ip("fd00::2"), ip("fd00::3")]);
        let wrap: Vec<_> = set
            .candidates(Some(ip("fd00::ffff:ffff:ffff:ffff")))
            .take(1)
            .map(|(a, _)| a)
            .collect();
        assert_eq!(wrap, [ip("fd00::2")], "wraps past the gateway");
    }
}
