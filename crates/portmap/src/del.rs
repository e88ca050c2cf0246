//! DEL: this attachment's elements go (looked up by key, deleted only when their owner tag is
//! ours), then their UDP ports' conntrack entries. Idempotent; needs no netns, no prevResult.

use crate::mapping::{self, Mapping};
use crate::ruleset::{self, MapKind};
use crate::{conntrack, list, retry, tag_of, Attempt};
use cni::{trace, CmdArgs, Result};
use kernel::nft::Nftables;

pub fn del(a: &CmdArgs) -> Result<()> {
    let mappings = mapping::from_conf(&a.conf)?;
    if mappings.is_empty() {
        return Ok(());
    }
    let tag = tag_of(a);
    let op = format!("delete port mappings of {tag}");
    let nft = Nftables::new()?;
    let table = ruleset::table();
    let mut s = trace::step("nftables");
    let doomed = retry(&op, || {
        // By key, and only when the element is ours: after a refused ADD the runtime calls DEL
        // with the same mappings, and the holder's elements must survive it.
        let mut doomed: Vec<(&Mapping, MapKind, Vec<u8>)> = mappings
            .iter()
            .flat_map(|m| ruleset::families(m).iter().map(move |&v6| (m, v6)))
            .map(|(m, v6)| {
                let (map, key) = ruleset::key(m, v6);
                (m, map, key)
            })
            .collect();
        let keys: Vec<(MapKind, &[u8])> = doomed.iter().map(|d| (d.1, &d.2[..])).collect();
        let held = ruleset::held(&nft, &keys)?;
        let mut held = held.into_iter();
        doomed.retain(|_| {
            held.next()
                .flatten()
                .is_some_and(|h| h.tag.as_deref() == Some(tag.as_str()))
        });
        let mut tx = nft.transaction(&table);
        for map in MapKind::ALL {
            let keys: Vec<Vec<u8>> = doomed
                .iter()
                .filter(|d| d.1 == map)
                .map(|d| d.2.clone())
                .collect();
            tx.delete_elements(map.name(), &keys);
        }
        match tx.commit(&op) {
            Ok(()) => Ok(Attempt::Done(doomed)),
            // Deleted meanwhile (a concurrent DEL or GC): look again.
            Err(e) if e.is_not_found() => Ok(Attempt::Changed),
            Err(e) => Err(cni::Error::from(e)),
        }
    })?;
    if doomed.is_empty() {
        s.detail("no element of this attachment left");
        return Ok(());
    }
    s.detail(format_args!(
        "removed {} map element(s): {}",
        doomed.len(),
        list(doomed.iter().map(|d| d.0))
    ));
    s.end();
    conntrack::flush_udp(&nft, doomed.iter().map(|d| (d.0, d.1.v6)))
}
