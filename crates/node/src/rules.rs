//! The node's nftables rules, in a table that is ours alone (`inet podwire-node`, apart from the
//! plugin's per-pod `inet podwire`): accept forwarding from and to each cluster CIDR, masquerade
//! what leaves a pod CIDR for outside the cluster CIDR.
//!
//! A rule's tag says what it does, so comparing tags is comparing rules: setup deletes the tags
//! that are not wanted (an old pod CIDR) and adds the missing ones, and a second run finds every
//! tag in place and changes nothing.

use crate::config::Plan;
use crate::Changes;
use cni::{Error, Result};
use kernel::nft::{Family, Nftables, Table};
use kernel::ResultExt;
use std::collections::BTreeMap;

pub const TABLE: &str = kernel::owned::NODE_TABLE;

pub fn table() -> Table {
    kernel::owned::node_table()
}

/// "inet podwire-node", as recorded in the state and shown by `nft list tables`.
pub fn table_label() -> String {
    format!("{} {}", Family::Inet, TABLE)
}

fn kernel_err(e: kernel::Error) -> Error {
    Error::io(e.to_string())
}

/// What a rule is for, and its tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Want {
    /// Two rules: saddr in cidr accept, daddr in cidr accept.
    Forward(ipnet::IpNet),
    /// saddr in pod and daddr not in cluster: masquerade.
    Masquerade {
        pod: ipnet::IpNet,
        cluster: ipnet::IpNet,
    },
}

impl Want {
    pub fn tag(&self) -> String {
        match self {
            Want::Forward(c) => format!("{TABLE} forward {c}"),
            Want::Masquerade { pod, cluster } => format!("{TABLE} masquerade {pod} to !{cluster}"),
        }
    }

    fn rule_count(&self) -> usize {
        match self {
            Want::Forward(_) => 2,
            Want::Masquerade { .. } => 1,
        }
    }
}

pub fn wanted(plan: &Plan) -> Vec<Want> {
    let mut w: Vec<Want> = plan
        .families
        .iter()
        .map(|f| Want::Forward(f.cluster_cidr))
        .collect();
    w.extend(plan.families.iter().map(|f| Want::Masquerade {
        pod: f.pod_cidr,
        cluster: f.cluster_cidr,
    }));
    w
}

/// Makes the table hold exactly the wanted rules.
pub fn apply(nft: &Nftables, plan: &Plan, changes: &mut Changes) -> Result<()> {
    let t = table();
    let mut present: BTreeMap<String, usize> = BTreeMap::new();
    for r in nft.rules(&t).map_err(kernel_err)? {
        *present.entry(r.tag.unwrap_or_default()).or_default() += 1;
    }
    let wanted = wanted(plan);
    for (tag, n) in &present {
        let keep = wanted
            .iter()
            .any(|w| w.tag() == *tag && w.rule_count() == *n);
        if !keep && !tag.is_empty() {
            nft.delete_by_tag(&t, tag).map_err(kernel_err)?;
            changes.push(format!("removed nft rule(s) \"{tag}\""));
        }
    }
    for w in &wanted {
        let tag = w.tag();
        if present.get(&tag) == Some(&w.rule_count()) {
            continue;
        }
        match *w {
            Want::Forward(c) => nft.add_forward_accept(&t, c, &tag),
            Want::Masquerade { pod, cluster } => nft.add_masquerade(&t, pod, Some(cluster), &tag),
        }
        .map_err(kernel_err)?;
        changes.push(format!("added nft rule(s) \"{tag}\""));
    }
    Ok(())
}

/// Deletes the whole table (it holds nothing but ours).
pub fn remove(nft: &Nftables, changes: &mut Changes) -> Result<()> {
    if nft
        .delete_table(&table())
        .ok_if_not_found()
        .map_err(kernel_err)?
        .is_some()
    {
        changes.push(format!("deleted nft table {}", table_label()));
    }
    Ok(())
}

/// Deletes the tables the plugins share between pods (see [`kernel::owned::plugin_tables`]).
pub fn remove_plugin_tables(nft: &Nftables, changes: &mut Changes) -> Result<()> {
    for t in kernel::owned::plugin_tables() {
        if nft
            .delete_table(&t)
            .ok_if_not_found()
            .map_err(kernel_err)?
            .is_some()
        {
            changes.push(format!("deleted nft table {} {}", t.family, t.name));
        }
    }
    Ok(())
}

/// Deletes the agent's NetworkPolicy table ([`kernel::owned::POLICY_TABLE`]), if any.
pub fn remove_policy_table(nft: &Nftables, changes: &mut Changes) -> Result<()> {
    let t = kernel::owned::policy_table();
    if nft
        .delete_table(&t)
        .ok_if_not_found()
        .map_err(kernel_err)?
        .is_some()
    {
        changes.push(format!("deleted nft table {} {}", t.family, t.name));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NodeConfig;

    #[test]
    fn tags_name_what_the_rules_do_and_stay_distinct_from_the_plugins_table() {
        let plan = Plan::new(NodeConfig::new(
            vec![
                "10.244.1.0/24".parse().unwrap(),
                "fd00:0:0:1::/64".parse().unwrap(),
            ],
            vec![
                "10.244.0.0/16".parse().unwrap(),
                "fd00::/48".parse().unwrap(),
            ],
        ))
        .unwrap();
        let tags: Vec<String> = wanted(&plan).iter().map(Want::tag).collect();
        assert_eq!(
            tags,
            vec![
                "podwire-node forward 10.244.0.0/16",
                "podwire-node forward fd00::/48",
                "podwire-node masquerade 10.244.1.0/24 to !10.244.0.0/16",
                "podwire-node masquerade fd00:0:0:1::/64 to !fd00::/48",
            ]
        );
        assert!(tags.iter().all(|t| t.len() <= kernel::nft::MAX_TAG_LEN));
        assert_ne!(table().name, "podwire");
        assert_eq!(table_label(), "inet podwire-node");
    }
}
