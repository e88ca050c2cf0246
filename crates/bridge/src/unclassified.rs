//! NetworkPolicy's pod-start gate: when the node enforces policy (the agent's table
//! `inet podwire-policy` exists in the host netns) and the runtime says which Kubernetes pod
//! this is (`K8S_POD_NAMESPACE`, `K8S_POD_NAME` in `CNI_ARGS`), ADD puts the pod's addresses in
//! the table's unclassified sets before the pod's interface comes up, so the pod sends and
//! receives nothing until the agent has its policy in (docs/network-policy.md). One netlink
//! batch; no table = policy off = nothing done, and never a failed ADD because of that. DEL
//! and GC take the addresses out again (normally the agent already has).

use std::net::IpAddr;

use cni::CmdArgs;
use kernel::nft::Nftables;
use kernel::owned::UnclassifiedTag;

/// The pod this ADD is for, if the runtime said.
pub fn tag(a: &CmdArgs) -> Option<UnclassifiedTag> {
    let get = |k| a.args.get(k).filter(|v| !v.is_empty()).map(str::to_string);
    Some(UnclassifiedTag {
        namespace: get("K8S_POD_NAMESPACE")?,
        name: get("K8S_POD_NAME")?,
        uid: get("K8S_POD_UID").unwrap_or_default(),
        container_id: a.container_id.clone(),
    })
}

/// Announces the pod's addresses. `Ok(false)`: nothing to do (no Kubernetes pod, or policy
/// off). A failure with the table present fails the ADD: the pod would start unguarded.
pub fn announce(a: &CmdArgs, ips: &[IpAddr]) -> cni::Result<bool> {
    let Some(tag) = tag(a) else {
        return Ok(false);
    };
    let nft = Nftables::new()?;
    kernel::unclassified::announce(&nft, ips, &tag).map_err(cni::Error::from)
}

/// Whether an element's container ID (cut to fit its comment) is `container_id`'s.
fn same_container(tagged: &str, container_id: &str) -> bool {
    !tagged.is_empty() && container_id.starts_with(tagged)
}

/// Removes the container's announced addresses (DEL, and an ADD's rollback). Returns how many.
pub fn withdraw(container_id: &str) -> cni::Result<usize> {
    withdraw_on(&Nftables::new()?, container_id)
}

/// As `withdraw`, on a socket the caller already has (DEL's one for all its tables).
pub fn withdraw_on(nft: &Nftables, container_id: &str) -> cni::Result<usize> {
    kernel::unclassified::withdraw_where(nft, |_, t| {
        t.is_some_and(|t| same_container(&t.container_id, container_id))
    })
    .map_err(cni::Error::from)
}

/// Removes addresses announced for containers `valid` does not hold (GC).
pub fn withdraw_stale(valid: &[String]) -> cni::Result<usize> {
    let nft = Nftables::new()?;
    kernel::unclassified::withdraw_where(&nft, |_, t| {
        t.is_some_and(|t| !valid.iter().any(|c| same_container(&t.container_id, c)))
    })
    .map_err(cni::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_container_ids_still_match() {
        let full = "0123456789abcdef".repeat(4);
        assert!(same_container(&full[..12], &full));
        assert!(same_container(&full, &full));
        assert!(!same_container("", &full));
        assert!(!same_container("fedcba", &full));
    }
}
