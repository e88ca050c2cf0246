//! Fake Nodes in bulk for the scale benchmark: node `i` gets the `i`-th /24 from `pod_v4_base`
//! (and the `i`-th /64 from `pod_v6_base` when dual-stack) and the `i+1`-th address of
//! `address_v4_base` as InternalIP. The defaults stay clear of what tests give real nodes:
//! pod CIDRs from 10.100.0.0 (5,000 nodes reach 10.119.135.0/24), node addresses from
//! 198.18.0.0/15 (RFC 2544's benchmark range, never routed: 131,070 nodes).

use crate::node::NodeBuilder;
use k8s_openapi::api::core::v1::Node;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Range;

#[derive(Clone, Debug)]
pub struct Fleet {
    /// Node `i` is named `{prefix}-{i:05}`.
    pub prefix: String,
    pub pod_v4_base: Ipv4Addr,
    /// `Some`: dual-stack, node `i` also gets `pod_v6_base + (i << 64)` /64 and an IPv6
    /// InternalIP `address_v6_base + i + 1`.
    pub pod_v6_base: Option<Ipv6Addr>,
    pub address_v4_base: Ipv4Addr,
    pub address_v6_base: Ipv6Addr,
}

impl Default for Fleet {
    fn default() -> Fleet {
        Fleet {
            prefix: "fake".into(),
            pod_v4_base: Ipv4Addr::new(10, 100, 0, 0),
            pod_v6_base: None,
            address_v4_base: Ipv4Addr::new(198, 18, 0, 0),
            address_v6_base: "fd18::".parse().expect("valid"),
        }
    }
}

impl Fleet {
    /// The default fleet, dual-stack (pod /64s from fd10:100::, addresses from fd18::).
    pub fn dual_stack() -> Fleet {
        Fleet {
            pod_v6_base: Some("fd10:100::".parse().expect("valid")),
            ..Fleet::default()
        }
    }

    pub fn name(&self, i: u32) -> String {
        format!("{}-{i:05}", self.prefix)
    }

    pub fn node(&self, i: u32) -> Node {
        let pod_v4 = Ipv4Addr::from(u32::from(self.pod_v4_base) + (i << 8));
        let address = Ipv4Addr::from(u32::from(self.address_v4_base) + i + 1);
        let mut b = NodeBuilder::new(self.name(i))
            .pod_cidr(format_args!("{pod_v4}/24"))
            .internal_ip(address);
        if let Some(base) = self.pod_v6_base {
            let pod_v6 = Ipv6Addr::from(u128::from(base) + (u128::from(i) << 64));
            let address = Ipv6Addr::from(u128::from(self.address_v6_base) + u128::from(i) + 1);
            b = b.pod_cidr(format_args!("{pod_v6}/64")).internal_ip(address);
        }
        b.build()
    }

    pub fn nodes(&self, range: Range<u32>) -> impl Iterator<Item = Node> + '_ {
        range.map(|i| self.node(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_i_gets_the_ith_block_and_address() {
        let f = Fleet::dual_stack();
        let n = serde_json::to_value(f.node(4999)).unwrap();
        assert_eq!(n["metadata"]["name"], "fake-04999");
        // 4999 = 19 * 256 + 135
        assert_eq!(n["spec"]["podCIDRs"][0], "10.119.135.0/24");
        assert_eq!(n["spec"]["podCIDRs"][1], "fd10:100:0:1387::/64");
        assert_eq!(n["status"]["addresses"][0]["address"], "198.18.19.136");
        assert_eq!(n["status"]["addresses"][1]["address"], "fd18::1388");
    }
}
