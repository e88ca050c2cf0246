//! `ipMasq`: one masquerade rule per pod address (`saddr == pod and daddr != pod subnet`) in the
//! node's nftables table `inet podwire`, tagged with the attachment so DEL and GC find it again.

use cni::Result;
use ipnet::IpNet;
use kernel::nft::{Nftables, Table};

pub fn table() -> Table {
    kernel::owned::pod_masq_table()
}

/// Adds the rule; returns its handle when the kernel says it.
pub fn add(tag: &str, pod: IpNet) -> Result<Option<u64>> {
    let host = IpNet::new(pod.addr(), pod.max_prefix_len()).expect("a host prefix is valid");
    let nft = Nftables::new()?;
    nft.add_masquerade_handle(&table(), host, Some(pod.trunc()), tag)
        .map_err(cni::Error::from)
}

pub fn delete(tag: &str) -> Result<()> {
    delete_handles(tag).map(drop)
}

/// Deletes the attachment's rules; returns their handles.
pub fn delete_handles(tag: &str) -> Result<Vec<u64>> {
    delete_handles_on(&Nftables::new()?, tag)
}

/// As `delete_handles`, on a socket the caller already has (DEL's one for all its tables).
pub fn delete_handles_on(nft: &Nftables, tag: &str) -> Result<Vec<u64>> {
    nft.delete_by_tag_handles(&table(), tag)
        .map_err(cni::Error::from)
}

/// Every tag in our table (each rule's identity).
pub fn tags() -> Result<Vec<String>> {
    let nft = Nftables::new()?;
    let rules = nft.rules(&table())?;
    Ok(rules.into_iter().filter_map(|r| r.tag).collect())
}
