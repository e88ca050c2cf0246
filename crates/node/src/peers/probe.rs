//! Direct routing, verified (issue #23): before routing an on-link peer directly, the agent
//! checks that the underlay carries a packet whose source is a pod address (its own pod CIDR's
//! gateway) to that peer. Cloud fabrics with source/destination checks (AWS, Azure, OpenStack
//! port security) drop those, and the peer is then reached over VXLAN. Pure: which peers to
//! probe and what the answers mean; `kernel_io` sends the probes.

use super::model::{Backend, Local, Options, PeerNode};
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How often a verdict is checked again: a fabric rule or a port's security setting can change
/// either way.
pub const REPROBE: Duration = Duration::from_secs(30);
/// How long a probe waits for its answers, and how many echoes it sends meanwhile.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(300);
pub const PROBE_TRIES: u32 = 3;
/// After one unanswered probe, how soon it is repeated: one miss is not a verdict (the peer's
/// agent may not have routed this node's pod CIDR yet, so its answer had nowhere to go).
pub const RETRY: Duration = Duration::from_secs(2);
/// Unanswered probes in a row that make an on-link peer "filtered".
pub const MISSES: u32 = 2;

#[derive(Clone, Copy, Debug)]
struct Entry {
    /// The last verdict: answered, or `MISSES` unanswered in a row.
    verdict: Option<bool>,
    misses: u32,
    at: Instant,
}

/// The probes' results by peer node address.
#[derive(Clone, Debug, Default)]
pub struct ProbeBook {
    results: HashMap<IpAddr, Entry>,
}

impl ProbeBook {
    fn interval(e: &Entry) -> Duration {
        match e.misses {
            0 => REPROBE,
            m if m < MISSES => RETRY,
            // Filtered: checked again soon, then less and less often up to REPROBE. The peer's
            // agent may only not have routed this node's pod CIDR yet (a node that just
            // joined: its Node object is there before its agent runs), and then its direct
            // path is found within seconds of the agent starting, not half a minute.
            m => (RETRY * 2u32.pow((m - MISSES + 1).min(5))).min(REPROBE),
        }
    }

    /// Of `wanted`, those never probed or whose next probe is due.
    pub fn due(&self, wanted: &[IpAddr], now: Instant) -> Vec<IpAddr> {
        wanted
            .iter()
            .filter(|a| {
                self.results
                    .get(a)
                    .is_none_or(|e| now.duration_since(e.at) >= Self::interval(e))
            })
            .copied()
            .collect()
    }

    /// When the next probe is due (`None`: nothing to probe).
    pub fn next_due(&self) -> Option<Instant> {
        self.results
            .values()
            .map(|e| e.at + Self::interval(e))
            .min()
    }

    /// Records one probe round: every probed address answered or not.
    pub fn record(&mut self, probed: &[IpAddr], answered: &[IpAddr], now: Instant) {
        for a in probed {
            let e = self.results.entry(*a).or_insert(Entry {
                verdict: None,
                misses: 0,
                at: now,
            });
            e.at = now;
            if answered.contains(a) {
                e.misses = 0;
                e.verdict = Some(true);
            } else {
                e.misses += 1;
                if e.misses >= MISSES {
                    e.verdict = Some(false);
                }
            }
        }
    }

    /// A peer that did not answer even from this node's own address (down, or not there yet):
    /// its direct path says nothing, its verdict stays; it is tried again a period later.
    pub fn unreachable(&mut self, probed: &[IpAddr], now: Instant) {
        for a in probed {
            self.results
                .entry(*a)
                .and_modify(|e| e.at = now)
                .or_insert(Entry {
                    verdict: None,
                    misses: 0,
                    at: now,
                });
        }
    }

    /// Forgets addresses no longer wanted.
    pub fn retain(&mut self, wanted: &[IpAddr]) {
        self.results.retain(|a, _| wanted.contains(a));
    }

    /// What is known: address → answered (addresses without a verdict yet left out).
    pub fn verdicts(&self) -> HashMap<IpAddr, bool> {
        self.results
            .iter()
            .filter_map(|(a, e)| e.verdict.map(|v| (*a, v)))
            .collect()
    }
}

/// The on-link peer addresses whose direct path decides how they are routed (`--backend auto`
/// only), each with the source to probe from: this node's pod CIDR gateway of that family.
/// None for a family this node has no pod CIDR of.
pub fn wanted(nodes: &[PeerNode], local: &Local, opts: &Options) -> Vec<(IpAddr, IpAddr)> {
    if opts.backend != Backend::Auto {
        return Vec::new();
    }
    let mut out = Vec::new();
    for peer in nodes.iter().filter(|n| n.name != local.node.name) {
        for cidr in &peer.pod_cidrs {
            let Some(src) = local.node.pod_cidr(cidr.addr().is_ipv6()).map(gateway) else {
                continue;
            };
            let Some(addr) = peer.address_for(cidr) else {
                continue;
            };
            if local.onlink(addr).is_some() && !out.iter().any(|(a, _)| *a == addr) {
                out.push((addr, src));
            }
        }
    }
    out
}

/// A pod CIDR's gateway: its first address (what node setup puts on the bridge).
pub fn gateway(cidr: IpNet) -> IpAddr {
    match cidr.network() {
        IpAddr::V4(a) => IpAddr::from((u32::from(a) + 1).to_be_bytes()),
        IpAddr::V6(a) => IpAddr::from((u128::from(a) + 1).to_be_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::desired::tests::{cluster, local, opts};

    #[test]
    fn on_link_peers_are_probed_from_the_pod_gateway_and_two_misses_make_a_verdict() {
        let w = wanted(&cluster(), &local(), &opts());
        // n2 is on-link (both families), n3 is behind a router: not probed.
        assert_eq!(
            w,
            vec![
                (
                    "192.168.10.2".parse().unwrap(),
                    "10.244.1.1".parse().unwrap()
                ),
                ("fd10::2".parse().unwrap(), "fd00:244:1::1".parse().unwrap()),
            ]
        );
        let vx = Options {
            backend: Backend::Vxlan,
            ..opts()
        };
        assert!(
            wanted(&cluster(), &local(), &vx).is_empty(),
            "forced: no probe"
        );

        let addrs: Vec<IpAddr> = w.iter().map(|(a, _)| *a).collect();
        let mut book = ProbeBook::default();
        let t0 = Instant::now();
        assert_eq!(book.due(&addrs, t0), addrs, "never probed");
        book.record(&addrs, &addrs[..1], t0);
        let v = book.verdicts();
        assert!(v[&addrs[0]]);
        assert!(!v.contains_key(&addrs[1]), "one miss is no verdict");
        // The miss is retried soon, the answer much later.
        assert!(book.due(&addrs, t0 + Duration::from_secs(1)).is_empty());
        assert_eq!(book.next_due(), Some(t0 + RETRY));
        assert_eq!(book.due(&addrs, t0 + RETRY), vec![addrs[1]]);
        book.record(&addrs[1..], &[], t0 + RETRY);
        assert!(!book.verdicts()[&addrs[1]], "two misses: filtered");
        // Filtered is checked again soon, then less and less often, up to REPROBE.
        let mut at = t0 + RETRY;
        for wait in [4, 8, 16, 30, 30] {
            let next = at + Duration::from_secs(wait);
            let before = next - Duration::from_millis(1);
            assert!(book.due(&addrs[1..], before).is_empty(), "after {wait} s");
            assert_eq!(book.due(&addrs[1..], next), vec![addrs[1]], "{wait} s");
            book.record(&addrs[1..], &[], next);
            assert!(!book.verdicts()[&addrs[1]]);
            at = next;
        }
        // The one that answered: again REPROBE after its answer.
        assert!(book.due(&addrs[..1], t0 + REPROBE - RETRY).is_empty());
        assert_eq!(book.due(&addrs[..1], t0 + REPROBE), vec![addrs[0]]);
        // A filtered peer that answers again is direct at once.
        let later = at + REPROBE;
        book.record(&addrs[1..], &addrs[1..], later);
        assert!(book.verdicts()[&addrs[1]]);
        // A peer that does not answer its node address either keeps its verdict.
        book.unreachable(&addrs[1..], later + REPROBE);
        assert!(book.verdicts()[&addrs[1]]);
        assert!(book.due(&addrs[1..], later + REPROBE + RETRY).is_empty());
        book.retain(&addrs[..1]);
        assert_eq!(book.verdicts().len(), 1);
    }
}
