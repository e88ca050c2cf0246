//! NetworkPolicy in this node's kernel: the compiled [`policy::Ruleset`] written into, and read
//! back from, the nftables table `inet podwire-policy` ([`kernel_io`]). The agent compiles,
//! diffs against [`PolicyTable::read`] and [`PolicyTable::apply`]s the plan.
//!
//! # Where pod traffic is judged
//!
//! One `inet` table, hooked on **forward** only:
//!
//! ```text
//!   table inet podwire-policy
//!    chain forward-egress   type filter hook forward priority filter      ──► jump egress
//!    chain forward-ingress  type filter hook forward priority filter + 1  ──► jump ingress
//!     (each: ct direction reply accept; ct state related accept; icmpv6 nd/rd accept;
//!      the node's addresses accept; @unclassified-v4/-v6 (the pod's own address) drop)
//!    chain egress / ingress, pod/…, policy/…, sets, maps, counters: the compiled ruleset
//!    set unclassified-v4 / unclassified-v6: pods announced by the bridge plugin at ADD
//! ```
//!
//! - **Same node (bridged)**: pods share the Linux bridge, so their frames are bridged, not
//!   routed. Kubernetes nodes run `br_netfilter` with `net.bridge.bridge-nf-call-iptables=1`
//!   (kubeadm checks it; kube-proxy needs it so that service replies between two pods of one
//!   bridge are un-NATed), which passes bridged IPv4/IPv6 frames through the inet forward hook,
//!   with IP conntrack. [`PolicyTable::ensure_structure`] turns both `bridge-nf-call-ip*tables`
//!   on in this netns when the module is there; [`PolicyTable::same_node_enforced`] says whether
//!   it is. (A bridge-family table would need `nf_conntrack_bridge` for `ct direction`, which
//!   kernels such as this CI's lack, and would see service traffic before kube-proxy's DNAT.)
//! - **Cross node** (direct routes and VXLAN): routed by the node, so forward again; egress and
//!   ingress are both judged there, after kube-proxy's DNAT (the backend pod is the destination).
//! - **Pod ↔ its own node**: input/output, never hooked: always allowed (kubelet's probes), and
//!   forwarded traffic from/to the node's addresses (e.g. SNATed by the node) passes too.
//! - Two base chains because an `accept` ends only its own base chain: egress first (priority
//!   0), then ingress (priority 1); a drop in either is final.
//! - Conntrack: replies and related packets pass; every original-direction packet is judged, so a
//!   changed policy applies to established flows at once.
//!
//! # No window at pod start
//!
//! The bridge plugin adds a new pod's addresses to `unclassified-v4/-v6` at ADD, in the same
//! netns, before it returns (when the table exists; see [`kernel::unclassified`]). Both base
//! chains drop traffic from/to those addresses (after the node and conntrack exemptions) until
//! the agent, having put the pod's verdict-map entries in, calls
//! [`PolicyTable::mark_classified`]. [`watch_unclassified`] wakes the agent on each announcement
//! (nftables notifications), so a pod is classified within milliseconds of its ADD.

//! # Reading back
//!
//! [`PolicyTable::read`] decodes the whole table (every set's elements: ~0.2-0.5 s for 1,000
//! policies and 117,000 elements on a busy 2-core machine). On a Pod or policy event the agent
//! diffs against the ruleset it last applied (apply is ~1 ms for one pod); it reads the kernel
//! at start-up, on a periodic resync and after an apply failed, which is what repairs a table
//! someone else changed. `PolicyTable` is `Send`, not `Sync` (one netlink socket).

pub mod kernel_io;

pub use kernel_io::{watch_unclassified, PolicyTable, Unclassified, UnclassifiedWatch};
