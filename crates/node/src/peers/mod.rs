//! Multi-node routing: every other node's pod CIDR reached without NAT, directly where the node
//! is on-link and over VXLAN elsewhere.
//!
//! The work is split so that most of it is pure and unit-tested:
//! - [`model`]: what the agent knows of the cluster (`PeerNode`, from Node objects) and of this
//!   node (`Local`, from its Node object and the kernel's addresses);
//! - [`desired`]: Nodes + local facts → the routes, VXLAN devices, FDB and neighbour entries
//!   wanted (pure);
//! - [`diff`]: wanted against what the kernel has (`Observed`) → ordered changes (pure);
//! - [`problem`]: what leaves a peer unrouted, by kind (metrics and Events are named after it);
//! - [`vtep`]: each node's VTEP MAC, derived from its pod CIDR so that no reboot or annotation
//!   can change it;
//! - [`kernel_io`]: reads `Observed` and applies changes over netlink (the only impure part).
//!
//! Everything the agent programs is found again by a tag: routes carry [`ROUTE_PROTOCOL`], FDB
//! and neighbour entries live on podwire's own VXLAN devices. Nothing else is ever touched.

pub mod desired;
pub mod diff;
pub mod kernel_io;
pub mod model;
pub mod probe;
pub mod problem;
pub mod vtep;

pub use desired::{desired, Desired, PeerRoute, Reason, Via};
pub use diff::{diff, Change, Observed, Plan};
pub use model::{Backend, Local, Options, OwnNode, PeerNode};
pub use problem::{Problem, ProblemKind};

/// RTPROT_* of every route the agent makes (unassigned in iproute2's rt_protos): how it finds its
/// own routes, and why it never removes one it did not make.
pub const ROUTE_PROTOCOL: u8 = kernel::owned::ROUTE_PROTOCOL;

/// VXLAN device names: one per underlay family, as flannel's flannel.1 / flannel-v6.1.
pub const VXLAN_DEVICE_V4: &str = "podwire.vxlan";
pub const VXLAN_DEVICE_V6: &str = "podwire.vxlan6";

/// flannel's VXLAN port, so firewalls already opened for it work (IANA's is 4789).
pub const DEFAULT_VXLAN_PORT: u16 = 8472;
pub const DEFAULT_VNI: u32 = 1;

/// VXLAN's encapsulation overhead: outer IP + UDP + VXLAN + inner Ethernet.
pub fn vxlan_overhead(underlay_v6: bool) -> u32 {
    if underlay_v6 {
        70
    } else {
        50
    }
}

/// The device carrying pod traffic of the family of `v6`.
pub fn vxlan_device(v6: bool) -> &'static str {
    if v6 {
        VXLAN_DEVICE_V6
    } else {
        VXLAN_DEVICE_V4
    }
}
