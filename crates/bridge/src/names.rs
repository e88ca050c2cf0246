//! Names that tie kernel objects to one attachment (network, container, interface), so DEL and GC
//! can find them without the pod's netns or a cached result.

/// Tag put on the host veth (as its alias) and on nft rules: `podwire/<network>/<container>/<ifname>`.
/// `/` cannot appear in any of the three parts (validated), so the tag splits back unambiguously.
pub fn attachment_tag(network: &str, container_id: &str, ifname: &str) -> String {
    format!("{}{network}/{container_id}/{ifname}", tag_prefix())
}

pub fn tag_prefix() -> &'static str {
    "podwire/"
}

/// The prefix shared by every tag of one network.
pub fn network_tag_prefix(network: &str) -> String {
    format!("{}{network}/", tag_prefix())
}

/// Splits a tag back into (container ID, ifname) when it belongs to `network`.
pub fn parse_tag<'a>(tag: &'a str, network: &str) -> Option<(&'a str, &'a str)> {
    let rest = tag.strip_prefix(&network_tag_prefix(network))?;
    let (container, ifname) = rest.split_once('/')?;
    (!container.is_empty() && !ifname.is_empty() && !ifname.contains('/'))
        .then_some((container, ifname))
}

/// The host end's name: `veth` + 8 hex digits of a hash of the attachment, so a DEL without the
/// netns can still find it. A clash (1 in 4 billion per pair) falls back to `random_host_veth`.
pub fn host_veth(network: &str, container_id: &str, ifname: &str) -> String {
    // FNV-1a: stable across releases and platforms, unlike std's hasher.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in network
        .bytes()
        .chain([0])
        .chain(container_id.bytes())
        .chain([0])
        .chain(ifname.bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("veth{:08x}", (h ^ (h >> 32)) as u32)
}

/// A random host veth name, for the rare clash of `host_veth`.
pub fn random_host_veth() -> String {
    let mut buf = [0u8; 4];
    crate::random::fill(&mut buf);
    format!("veth{:08x}", u32::from_ne_bytes(buf) ^ std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_and_are_scoped_to_their_network() {
        let t = attachment_tag("net1", "abc123", "eth0");
        assert_eq!(t, "podwire/net1/abc123/eth0");
        assert_eq!(parse_tag(&t, "net1"), Some(("abc123", "eth0")));
        assert_eq!(parse_tag(&t, "net"), None);
        assert_eq!(parse_tag("podwire/net1/x", "net1"), None);
        assert_eq!(parse_tag("other/net1/a/b", "net1"), None);
    }

    #[test]
    fn host_veth_names_are_stable_valid_and_distinct() {
        let a = host_veth("n", "c1", "eth0");
        assert_eq!(a, host_veth("n", "c1", "eth0"));
        assert_eq!(a.len(), 12);
        assert!(cni::validate::interface_name(&a).is_ok());
        assert_ne!(a, host_veth("n", "c1", "eth1"));
        assert_ne!(a, host_veth("n", "c2", "eth0"));
        assert_ne!(a, host_veth("m", "c1", "eth0"));
        // "ab"+"c" vs "a"+"bc" must differ: parts are separated.
        assert_ne!(host_veth("n", "ab", "c"), host_veth("n", "a", "bc"));
        let mut seen = std::collections::HashSet::new();
        for i in 0..10_000 {
            seen.insert(host_veth("k8s-pod-network", &format!("{i:064x}"), "eth0"));
        }
        assert_eq!(seen.len(), 10_000);
        assert!(random_host_veth().starts_with("veth"));
    }
}
