//! Choosing an address in a range set: a requested one, else the next free one in
//! host-local's round-robin order. Storage is behind [`Reserve`], so this is pure logic.

use crate::range::{Range, RangeSet};
use cni::error::plugin_code;
use cni::{Error, Result};
use std::net::IpAddr;

/// Claims an address atomically: `Ok(false)` when it is already taken.
pub trait Reserve {
    fn try_reserve(&mut self, ip: IpAddr) -> Result<bool>;
}

/// Allocates one address from `set` (position `idx` in the config, for messages).
/// `requested` must be in the set; `last_reserved` is where round-robin resumes.
pub fn allocate<'a>(
    set: &'a RangeSet,
    idx: usize,
    last_reserved: Option<IpAddr>,
    requested: Option<IpAddr>,
    store: &mut dyn Reserve,
) -> Result<(IpAddr, &'a Range)> {
    if let Some(ip) = requested {
        let range = set.range_for(ip).ok_or_else(|| {
            Error::invalid_config(format!(
                "requested IP {ip} is not in range set {idx} ({set})"
            ))
        })?;
        if ip == range.gateway {
            return Err(Error::invalid_config(format!(
                "requested IP {ip} is the gateway of {range}"
            )));
        }
        if !store.try_reserve(ip)? {
            return Err(Error::invalid_config(format!(
                "requested IP {ip} is already allocated (range set {idx}: {set})"
            )));
        }
        return Ok((ip, range));
    }
    for (ip, range) in set.candidates(last_reserved) {
        if store.try_reserve(ip)? {
            return Ok((ip, range));
        }
    }
    Err(exhausted(set, idx))
}

/// The error for a set with no free address: names the set and its size.
pub fn exhausted(set: &RangeSet, idx: usize) -> Error {
    let n = set.size();
    Error::plugin(
        plugin_code::RANGE_EXHAUSTED,
        format!(
            "range set {idx} ({set}) is exhausted: all {n} address{} allocated",
            if n == 1 { " is" } else { "es are" }
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[derive(Default)]
    struct Mem {
        taken: HashSet<IpAddr>,
        probes: usize,
    }

    impl Reserve for Mem {
        fn try_reserve(&mut self, ip: IpAddr) -> Result<bool> {
            self.probes += 1;
            Ok(self.taken.insert(ip))
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn set(subnet: &str) -> RangeSet {
        let r = Range::new("t", subnet.parse().unwrap(), None, None, None).unwrap();
        RangeSet::new("t", vec![r]).unwrap()
    }

    /// Allocates as ADD does: round-robin resumes after the previous allocation.
    fn run(s: &RangeSet, mem: &mut Mem, last: &mut Option<IpAddr>) -> Result<IpAddr> {
        let (a, _) = allocate(s, 0, *last, None, mem)?;
        *last = Some(a);
        Ok(a)
    }

    #[test]
    fn round_robin_does_not_reuse_a_just_released_address() {
        let s = set("10.0.0.0/29");
        let (mut mem, mut last) = (Mem::default(), None);
        assert_eq!(run(&s, &mut mem, &mut last).unwrap(), ip("10.0.0.2"));
        assert_eq!(run(&s, &mut mem, &mut last).unwrap(), ip("10.0.0.3"));
        mem.taken.remove(&ip("10.0.0.2"));
        assert_eq!(run(&s, &mut mem, &mut last).unwrap(), ip("10.0.0.4"));
    }

    #[test]
    fn exhaustion_names_the_range_and_its_size() {
        let s = set("10.0.0.0/29");
        let (mut mem, mut last) = (Mem::default(), None);
        let got: HashSet<_> = (0..5)
            .map(|_| run(&s, &mut mem, &mut last).unwrap())
            .collect();
        assert_eq!(got.len(), 5);
        assert!(!got.contains(&ip("10.0.0.1")), "gateway never handed out");
        let e = run(&s, &mut mem, &mut last).unwrap_err();
        assert_eq!(e.code.number(), plugin_code::RANGE_EXHAUSTED);
        assert!(e.msg.contains("10.0.0.0/29"), "{e}");
        assert!(e.msg.contains("all 5 addresses"), "{e}");
        // After a release the freed address is found by wrapping around.
        mem.taken.remove(&ip("10.0.0.3"));
        assert_eq!(run(&s, &mut mem, &mut last).unwrap(), ip("10.0.0.3"));
        let one = set("10.0.0.0/30");
        let (mut mem, mut last) = (Mem::default(), None);
        run(&one, &mut mem, &mut last).unwrap();
        let e = run(&one, &mut mem, &mut last).unwrap_err();
        assert!(e.msg.contains("all 1 address is"), "{e}");
    }

    #[test]
    fn round_robin_costs_one_probe_when_the_next_is_free() {
        let s = set("10.0.0.0/20");
        let (mut mem, mut last) = (Mem::default(), None);
        for _ in 0..4000 {
            run(&s, &mut mem, &mut last).unwrap();
        }
        mem.probes = 0;
        run(&s, &mut mem, &mut last).unwrap();
        assert_eq!(mem.probes, 1);
    }

    #[test]
    fn requested_addresses() {
        let s = set("10.0.0.0/24");
        let mut mem = Mem::default();
        let (a, r) = allocate(&s, 0, None, Some(ip("10.0.0.77")), &mut mem).unwrap();
        assert_eq!(a, ip("10.0.0.77"));
        assert_eq!(r.subnet.to_string(), "10.0.0.0/24");
        let taken = allocate(&s, 0, None, Some(ip("10.0.0.77")), &mut mem).unwrap_err();
        assert!(taken.msg.contains("already allocated"), "{taken}");
        let gw = allocate(&s, 0, None, Some(ip("10.0.0.1")), &mut mem).unwrap_err();
        assert!(gw.msg.contains("gateway"), "{gw}");
        let out = allocate(&s, 3, None, Some(ip("10.0.1.5")), &mut mem).unwrap_err();
        assert_eq!(out.code.number(), 7);
        assert!(out.msg.contains("10.0.1.5") && out.msg.contains("range set 3"));
        let bcast = allocate(&s, 0, None, Some(ip("10.0.0.255")), &mut mem).unwrap_err();
        assert!(bcast.msg.contains("not in range set"), "{bcast}");
    }

    #[test]
    fn dual_stack_sets_allocate_independently() {
        let v4 = set("10.0.0.0/24");
        let v6 = set("fd00::/120");
        let mut mem = Mem::default();
        let (a, _) = allocate(&v4, 0, None, None, &mut mem).unwrap();
        let (b, _) = allocate(&v6, 1, None, None, &mut mem).unwrap();
        assert_eq!((a, b), (ip("10.0.0.2"), ip("fd00::2")));
    }

    struct Broken;
    impl Reserve for Broken {
        fn try_reserve(&mut self, _: IpAddr) -> Result<bool> {
            Err(Error::io("disk on fire"))
        }
    }

    #[test]
    fn storage_errors_stop_the_search() {
        let e = allocate(&set("10.0.0.0/24"), 0, None, None, &mut Broken).unwrap_err();
        assert_eq!(e.code.number(), 5);
    }
}
