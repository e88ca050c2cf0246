//! GC: the elements of this network's attachments missing from `cni.dev/valid-attachments` go.
//! STATUS: nf_tables answers.

use crate::ruleset::{self, MapKind};
use crate::{parse_tag, retry, Attempt};
use cni::{trace, CmdArgs, Result};
use kernel::nft::Nftables;

pub fn gc(a: &CmdArgs) -> Result<()> {
    let valid = a.conf.valid_attachments()?;
    let nft = Nftables::new()?;
    let table = ruleset::table();
    let op = format!("garbage-collect port mappings of network {}", a.conf.name);
    let mut s = trace::step("nftables");
    let removed = retry(&op, || {
        let mut tx = nft.transaction(&table);
        let mut removed = 0;
        for map in MapKind::ALL {
            let stale: Vec<Vec<u8>> = nft
                .elements(&table, map.name())?
                .into_iter()
                .filter(|el| match el.tag.as_deref().and_then(parse_tag) {
                    Some((n, c, i)) => {
                        n == a.conf.name && !valid.contains(&(c.to_string(), i.to_string()))
                    }
                    None => false,
                })
                .map(|el| el.key)
                .collect();
            removed += stale.len();
            tx.delete_elements(map.name(), &stale);
        }
        match tx.commit(&op) {
            Ok(()) => Ok(Attempt::Done(removed)),
            Err(e) if e.is_not_found() => Ok(Attempt::Changed),
            Err(e) => Err(cni::Error::from(e)),
        }
    })?;
    s.detail(format_args!("removed {removed} stale map element(s)"));
    Ok(())
}

pub fn status() -> Result<()> {
    let nft = Nftables::new()?;
    nft.elements(&ruleset::table(), MapKind::ALL[0].name())
        .map(drop)
        .map_err(cni::Error::from)
}
