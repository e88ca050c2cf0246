//! VTEP MACs derived from what the API server already says: a node's pod CIDR. Every node computes
//! every peer's MAC the same way and sets its own device to it, so a reboot (which gives a new
//! random MAC to a fresh device) or a lost annotation can never leave stale FDB or ARP entries
//! on the other nodes (flannel #533, #1155).

use ipnet::IpNet;
use kernel::MacAddr;

/// A locally administered unicast MAC from a pod CIDR: 0e + 40 bits of FNV-1a of the CIDR's
/// address bytes and prefix length. Two different pod CIDRs collide with probability ~2^-40
/// per pair.
pub fn vtep_mac(pod_cidr: IpNet) -> MacAddr {
    let net = pod_cidr.trunc();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    };
    match net.addr() {
        std::net::IpAddr::V4(a) => a.octets().iter().for_each(|b| eat(*b)),
        std::net::IpAddr::V6(a) => a.octets().iter().for_each(|b| eat(*b)),
    }
    eat(net.prefix_len());
    let b = h.to_be_bytes();
    MacAddr([0x0e, b[0], b[1], b[2], b[3], b[4]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_cidr_gives_the_same_mac_and_others_differ() {
        let a: IpNet = "10.244.1.0/24".parse().unwrap();
        let a_host: IpNet = "10.244.1.7/24".parse().unwrap();
        assert_eq!(
            vtep_mac(a),
            vtep_mac(a_host),
            "the network, not a host in it"
        );
        let mut seen = std::collections::HashSet::new();
        for i in 0..=255u8 {
            let c: IpNet = format!("10.244.{i}.0/24").parse().unwrap();
            let m = vtep_mac(c);
            assert_eq!(m.0[0], 0x0e, "locally administered unicast");
            assert!(seen.insert(m), "collision at {c}");
        }
        let v6: IpNet = "fd00:10:244:1::/64".parse().unwrap();
        assert!(seen.insert(vtep_mac(v6)));
        // Pinned: a change here changes every node's MAC on upgrade (a traffic blip).
        assert_eq!(vtep_mac(a).to_string(), "0e:de:a6:a6:a5:67");
    }
}
