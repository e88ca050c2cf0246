//! The unclassified sets of the policy table ([`crate::owned::UNCLASSIFIED_V4`]/`_V6`): the
//! bridge plugin announces a pod's addresses there at ADD (when the node enforces policy, i.e.
//! the table exists), so the pod is denied from its first packet until the agent has put its
//! policy in and removes them. Shared by the plugin and the agent, so neither depends on the
//! other.

use std::net::IpAddr;

use crate::nft::{Nftables, SetElem};
use crate::owned::{
    parse_unclassified_comment, policy_table, unclassified_comment, unclassified_set,
    UnclassifiedTag, UNCLASSIFIED_V4, UNCLASSIFIED_V6,
};
use crate::Result;

fn key(a: &IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

fn addr_of(key: &[u8]) -> Option<IpAddr> {
    match key.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(key).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(key).ok()?)),
        _ => None,
    }
}

/// Adds `addrs` to the unclassified sets in one batch. `Ok(false)`: the node does not enforce
/// policy (no table, or it lacks the sets): nothing to do.
pub fn announce(nft: &Nftables, addrs: &[IpAddr], tag: &UnclassifiedTag) -> Result<bool> {
    if addrs.is_empty() {
        return Ok(true);
    }
    let table = policy_table();
    // Ask first: a batch the kernel refuses (no table) costs an aborted transaction, 4-36 ms
    // here, where a lookup costs a round trip (~0.03 ms). A table deleted in between fails
    // the batch with ENOENT, which is the same answer.
    if nft.table_comment(&table)?.is_none() {
        return Ok(false);
    }
    let comment = unclassified_comment(tag);
    let mut tx = nft.transaction(&table);
    for a in addrs {
        tx.add_set_elems(
            unclassified_set(a),
            &[SetElem {
                key: key(a),
                tag: Some(comment.clone()),
                ..Default::default()
            }],
        );
    }
    match tx.commit("announce an unclassified pod") {
        Ok(()) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e),
    }
}

/// Every unclassified address and who it belongs to (None: a comment not in our format).
pub fn list(nft: &Nftables) -> Result<Vec<(IpAddr, Option<UnclassifiedTag>)>> {
    let table = policy_table();
    let mut out = Vec::new();
    for set in [UNCLASSIFIED_V4, UNCLASSIFIED_V6] {
        for e in nft.set_elems(&table, set)? {
            if let Some(a) = addr_of(&e.key) {
                out.push((a, e.tag.as_deref().and_then(parse_unclassified_comment)));
            }
        }
    }
    Ok(out)
}

/// Removes the unclassified addresses for which `doomed` holds (read, then one batch; retried
/// when a concurrent change removed one first). Returns how many it removed.
pub fn withdraw_where(
    nft: &Nftables,
    doomed: impl Fn(&IpAddr, Option<&UnclassifiedTag>) -> bool,
) -> Result<usize> {
    let table = policy_table();
    let mut last = None;
    for _ in 0..3 {
        let gone: Vec<IpAddr> = list(nft)?
            .into_iter()
            .filter(|(a, t)| doomed(a, t.as_ref()))
            .map(|(a, _)| a)
            .collect();
        if gone.is_empty() {
            return Ok(0);
        }
        let mut tx = nft.transaction(&table);
        for a in &gone {
            tx.delete_set_elems(unclassified_set(a), &[SetElem::key(key(a))]);
        }
        match tx.commit("remove unclassified pods") {
            Ok(()) => return Ok(gone.len()),
            Err(e) if e.is_not_found() => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("loop ran"))
}

/// Removes these addresses from the unclassified sets (absent ones are fine).
pub fn withdraw(nft: &Nftables, addrs: &[IpAddr]) -> Result<usize> {
    withdraw_where(nft, |a, _| addrs.contains(a))
}
