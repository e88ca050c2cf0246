//! What keeps a peer pod CIDR unrouted, or otherwise needs a person, by kind: the agent logs the
//! text, counts the kinds (`podwire_agent_problems`, `podwire_agent_peers{path="unrouted"}`) and
//! turns them into Events on this node's Node object named by [`ProblemKind::reason`]. Pure.

/// One cause of a problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProblemKind {
    /// A peer's pod CIDR lies outside every cluster CIDR of its family (or none is given).
    PodCidrOutsideCluster,
    /// A peer's pod CIDR overlaps this node's own network or pod CIDR.
    PodCidrOverlap,
    /// Two or more nodes claim one pod CIDR.
    PodCidrConflict,
    /// A peer has no address of its pod CIDR's family.
    PeerNoAddress,
    /// `--backend direct` and the peer is not on-link.
    PeerNotOnLink,
    /// A route podwire did not make holds the peer's destination.
    ForeignRoute,
    /// VXLAN cannot be set up for a family (no underlay address, no own pod CIDR).
    NoVxlan,
    /// podwire's VXLAN device cannot be made or is missing (a link squatting its name, another
    /// VXLAN device on the same VNI and port).
    VxlanDevice,
    /// This node's own Node object is missing.
    OwnNodeMissing,
    /// This node's address in its Node object and on its links disagree (a DHCP renewal, a NIC
    /// swapped, one of the two not updated yet): VXLAN is held as it is until they agree.
    OwnAddressMismatch,
    /// The direct-path probe could not be sent (on-link peers keep the path they have).
    ProbeFailed,
}

impl ProblemKind {
    pub const ALL: [ProblemKind; 11] = [
        ProblemKind::PodCidrOutsideCluster,
        ProblemKind::PodCidrOverlap,
        ProblemKind::PodCidrConflict,
        ProblemKind::PeerNoAddress,
        ProblemKind::PeerNotOnLink,
        ProblemKind::ForeignRoute,
        ProblemKind::NoVxlan,
        ProblemKind::VxlanDevice,
        ProblemKind::OwnNodeMissing,
        ProblemKind::OwnAddressMismatch,
        ProblemKind::ProbeFailed,
    ];

    /// The metrics label (`snake_case`).
    pub fn label(self) -> &'static str {
        match self {
            ProblemKind::PodCidrOutsideCluster => "pod_cidr_outside_cluster",
            ProblemKind::PodCidrOverlap => "pod_cidr_overlap",
            ProblemKind::PodCidrConflict => "pod_cidr_conflict",
            ProblemKind::PeerNoAddress => "peer_no_address",
            ProblemKind::PeerNotOnLink => "peer_not_on_link",
            ProblemKind::ForeignRoute => "foreign_route",
            ProblemKind::NoVxlan => "no_vxlan",
            ProblemKind::VxlanDevice => "vxlan_device",
            ProblemKind::OwnNodeMissing => "own_node_missing",
            ProblemKind::OwnAddressMismatch => "own_address_mismatch",
            ProblemKind::ProbeFailed => "probe_failed",
        }
    }

    /// The Event reason (`PascalCase`, as `kubectl describe node` shows it).
    pub fn reason(self) -> &'static str {
        match self {
            ProblemKind::PodCidrOutsideCluster => "PodCIDROutsideCluster",
            ProblemKind::PodCidrOverlap => "PodCIDROverlap",
            ProblemKind::PodCidrConflict => "PodCIDRConflict",
            ProblemKind::PeerNoAddress | ProblemKind::PeerNotOnLink | ProblemKind::ForeignRoute => {
                "PeerNotRoutable"
            }
            ProblemKind::NoVxlan => "VXLANUnavailable",
            ProblemKind::VxlanDevice => "VXLANDeviceConflict",
            ProblemKind::OwnNodeMissing => "NodeObjectMissing",
            ProblemKind::OwnAddressMismatch => "NodeAddressMismatch",
            ProblemKind::ProbeFailed => "DirectPathProbeFailed",
        }
    }
}

/// One problem: its kind, what to tell a person, and how many peer pod CIDRs it leaves
/// unrouted (0 for one about this node).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    pub text: String,
    pub unrouted: usize,
}

impl Problem {
    pub fn new(kind: ProblemKind, text: impl Into<String>, unrouted: usize) -> Problem {
        Problem {
            kind,
            text: text.into(),
            unrouted,
        }
    }

    /// A problem with one peer pod CIDR, which it leaves unrouted.
    pub fn peer(kind: ProblemKind, text: impl Into<String>) -> Problem {
        Problem::new(kind, text, 1)
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_reasons_are_well_formed() {
        let mut labels: Vec<&str> = ProblemKind::ALL.iter().map(|k| k.label()).collect();
        labels.sort();
        labels.dedup();
        assert_eq!(labels.len(), ProblemKind::ALL.len(), "labels are distinct");
        for k in ProblemKind::ALL {
            assert!(k
                .label()
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_'));
            let r = k.reason();
            assert!(r.len() <= 128 && r.chars().next().unwrap().is_ascii_uppercase());
            assert!(r.chars().all(|c| c.is_ascii_alphanumeric()), "{r}");
        }
        assert_eq!(
            ProblemKind::PodCidrOutsideCluster.reason(),
            "PodCIDROutsideCluster"
        );
        assert_eq!(ProblemKind::PeerNotOnLink.reason(), "PeerNotRoutable");
    }
}
