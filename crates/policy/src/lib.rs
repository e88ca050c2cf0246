//! NetworkPolicy (networking.k8s.io/v1) for one node, as nftables objects. Pure: objects in,
//! desired table out, no I/O; the agent watches the API and the kernel layer writes netlink.
//!
//! - [`model`]: Pods, Namespaces, NetworkPolicies as policy needs them, converted from the
//!   API's types; whatever cannot be understood fails closed (a [`Problem`], never an opening);
//! - [`selector`]: label selectors;
//! - [`compile`]: objects + this node → the [`Ruleset`] it wants (and per-pod summaries);
//! - [`diff`]: wanted against read back → ordered changes that never open a window;
//! - [`eval`]: a packet through a ruleset, as the kernel would (tests, `podwirectl path`).
//!
//! # The table
//!
//! Verdicts are in the kernel: addresses and ports are set lookups, the isolated pods a verdict
//! map, so the table grows with policies + peers + pods, never their product. Every object has
//! a stable name (`ns/name` based), so a change updates elements and chains in place.
//!
//! ```text
//!  base chain(s) of the kernel layer (bridge family on the pod ports, or inet forward/...),
//!  two per hook: `egress` first, then `ingress`; an accept ends only its own chain
//!
//!  chain egress                              chain ingress
//!   ct direction reply accept                 ct direction reply accept
//!   ct state related accept                   ct state related accept
//!   icmpv6 nd/rd accept                       icmpv6 nd/rd accept
//!   ip  daddr @node-v4 accept                 ip  saddr @node-v4 accept
//!   ip6 daddr @node-v6 accept                 ip6 saddr @node-v6 accept
//!   ip  saddr vmap @egress-v4 ───┐            ip  daddr vmap @ingress-v4 ───┐
//!   ip6 saddr vmap @egress-v6 ───┤            ip6 daddr vmap @ingress-v6 ───┤
//!   (no entry: not isolated: on) │            (no entry: on)                │
//!                                │                                          │
//!   map ingress-v4 { 10.244.1.5 : jump pod/x/a/ingress, ... } ◄─────────────┘
//!                                                   │
//!   chain pod/x/a/ingress  (one per isolated pod and direction)
//!    jump policy/x/allow-b/ingress ──────────────┐   (one jump per policy whose rules apply)
//!    jump policy/x/allow-81/ingress              │
//!    limit rate 10/second log group 1024 prefix "podwire ingress deny x/a "
//!    counter name drops/x/a/ingress drop         │
//!                                                ▼
//!   chain policy/x/allow-b/ingress  (one per policy and direction, shared by its pods)
//!    ip  saddr @policy/x/allow-b/ingress/0/peers-v4 meta l4proto . th dport @…/0/ports counter accept
//!    ip6 saddr @policy/x/allow-b/ingress/0/peers-v6 meta l4proto . th dport @…/0/ports counter accept
//!    ip  saddr @…/1/peers-v4 ip daddr . meta l4proto . th dport @…/1/named-v4 counter accept
//!    ...
//!
//!   set policy/x/allow-b/ingress/0/peers-v4  ipv4_addr, interval: pod addresses of the rule's
//!       selectors ∪ ipBlocks minus excepts, merged      { 10.244.2.7, 10.0.0.0-10.0.0.255 }
//!   set …/0/ports     inet_proto . inet_service, interval  { tcp . 80, udp . 81-90, sctp . 0-65535 }
//!   set …/1/named-v4  ipv4_addr . inet_proto . inet_service: named ports resolved per
//!       destination pod (ingress: the selected pods; egress: each peer pod)
//!                                            { 10.244.1.5 . tcp . 8080 }
//!   set node-v4 / node-v6: this node's addresses (pod <-> own node always passes)
//! ```
//!
//! Sizes: a policy costs one chain per direction and per rule ≤ 4 rules and ≤ 5 sets whatever
//! its peers; peers cost set elements; an isolated pod costs one map entry per address and one
//! chain of (policies selecting it + 2) rules. A rule's rules and sets exist even when its sets
//! are empty, so pod churn only changes set and map elements, never chains.
//!
//! Conntrack: only original-direction packets are judged, each of them; replies and related
//! packets pass. A changed policy therefore applies to established connections at once.
//! Drops are counted per pod and direction (named counters: `drops/ns/pod/ingress`), logged to
//! an nflog group under a rate limit, and attributable to the policies isolating that pod
//! ([`compile::PodState`]); every accept rule has its own counter ("allowed by").

pub mod compile;
pub mod diff;
pub mod eval;
pub mod ir;
pub mod model;
pub mod ranges;
pub mod selector;

#[cfg(test)]
mod e2e;
#[cfg(test)]
mod fixtures;

pub use compile::{compile, Compiled, LogOptions, Options, PodState, ThisNode};
pub use diff::{diff, Change, Plan};
pub use eval::{evaluate, CtState, Outcome, Packet, Trace};
pub use ir::{names, Direction, Family, Ruleset};
pub use model::{Namespace, Pod, Policy, Problem, Protocol};
pub use selector::{Labels, Selector};
