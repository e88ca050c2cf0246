//! podwire's kernel layer: network namespaces, links (bridges, veths,
//! bridge ports), addresses, routes, sysctls and nftables, all through
//! synchronous netlink. See README.md.

mod address;
mod attr;
mod bridge;
mod bridge_port;
pub mod conntrack;
mod error;
mod link;
mod mac;
mod monitor;
mod neighbour;
mod netlink;
pub mod netns;
pub mod nflog;
pub mod nft;
pub mod owned;
pub mod probe;
mod route;
mod route_get;
mod socket;
pub mod sysctl;
pub mod unclassified;
mod veth;
mod vxlan;

pub use address::{local_addresses, Address, AddressOptions, IpFamily};
pub use bridge::BridgeSpec;
pub use bridge_port::BridgeVlan;
pub use conntrack::Conntrack;
pub use error::{Error, Result, ResultExt};
pub use link::{Link, LinkId, OperState};
pub use mac::{MacAddr, ParseMacError};
pub use monitor::{KernelEvent, Monitor};
pub use neighbour::{FdbEntry, Neighbour};
pub use netlink::Netlink;
pub use netns::{Netns, NetnsGuard};
pub use route::{Route, Scope, RTPROT_BOOT, TABLE_MAIN};
pub use route_get::{route_type, RouteQuery};
pub use veth::{VethPair, VethSpec};
pub use vxlan::VxlanSpec;

/// The rust-netlink message types, for callers of `Netlink::request`/`dump`.
pub use ipnet;
pub use netlink_packet_route as rtnl;
