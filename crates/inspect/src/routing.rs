//! What the node agent could not route, as it wrote it (`routing.json` in its state directory):
//! a refused peer leaves no trace in the kernel (a Node whose pod CIDR lies outside the cluster
//! CIDR gets no route), so `node show` reads the agent's word for it.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// The agent's state file name (node::agent::routing::STATE_FILE: keep in step).
pub const STATE_FILE: &str = "routing.json";

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingState {
    pub node: String,
    pub problems: Vec<RoutingProblem>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingProblem {
    /// The metrics label (`pod_cidr_outside_cluster`, …).
    pub kind: String,
    /// The Event reason (`PodCIDROutsideCluster`, …).
    pub reason: String,
    pub text: String,
    /// Peer pod CIDRs it leaves unrouted.
    pub unrouted: usize,
}

/// Reads the agent's state file; `Ok(None)` when there is none (no agent on this node).
pub fn read_state(state_dir: &Path) -> crate::Result<Option<RoutingState>> {
    crate::policy::read_json(&state_dir.join(STATE_FILE))
}

/// `node show`'s part: nothing when the agent routed everything.
pub fn render_state(s: &RoutingState) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if s.problems.is_empty() {
        return out;
    }
    let _ = writeln!(out, "\nnot routed or held (the node agent's last pass):");
    for p in &s.problems {
        let _ = writeln!(out, "  ! {} ({}): {}", p.reason, p.kind, p.text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agents_refusals_are_read_back_and_shown_one_per_line() {
        let dir = std::env::temp_dir().join(format!("pwrouting-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(read_state(&dir).unwrap(), None, "no file: no agent");
        std::fs::write(
            dir.join(STATE_FILE),
            r#"{"node":"n1","problems":[{"kind":"pod_cidr_outside_cluster","reason":"PodCIDROutsideCluster","text":"node evil: 128.0.0.0/1: outside the cluster CIDR 10.244.0.0/16","unrouted":1}]}"#,
        )
        .unwrap();
        let s = read_state(&dir).unwrap().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(s.problems.len(), 1);
        let text = render_state(&s);
        assert!(
            text.contains(
                "  ! PodCIDROutsideCluster (pod_cidr_outside_cluster): node evil: 128.0.0.0/1"
            ),
            "{text}"
        );
        assert_eq!(render_state(&RoutingState::default()), "");
    }
}
