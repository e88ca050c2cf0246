//! CHECK: every element of the attachment is there, ours, and points at the pod.

use crate::ruleset;
use crate::structure::{self, Structure};
use crate::{conflict, mapping, prev_result, tag_of};
use cni::error::plugin_code;
use cni::{trace, CmdArgs, Error, Result};
use kernel::nft::Nftables;

pub fn check(a: &CmdArgs) -> Result<()> {
    let prev = prev_result(a)?;
    let mappings = mapping::from_conf(&a.conf)?;
    if mappings.is_empty() {
        return Ok(());
    }
    let (v4, v6) = mapping::pod_addresses(&prev);
    let tag = tag_of(a);
    let nft = Nftables::new()?;
    let table = ruleset::table();
    let mut s = trace::step("nftables");
    let broken = |why: &str| {
        Err(Error::plugin(
            plugin_code::CHECK_MISMATCH,
            format!(
                "table inet {}: {why}: no host port of the node works until the next ADD (or \
                 the node agent) restores it",
                ruleset::TABLE
            ),
        ))
    };
    match structure::structure(&nft)? {
        Structure::Intact => {}
        Structure::Absent => return broken("missing (flushed?)"),
        Structure::Broken(why) => return broken(&why),
    }
    let entries = ruleset::entries(&mappings, v4, v6);
    s.detail(format_args!("{} map element(s) to verify", entries.len()));
    for e in entries {
        let held = nft.element(&table, e.map.name(), &e.key)?;
        let fail = |what: &str| {
            Err(Error::plugin(
                plugin_code::CHECK_MISMATCH,
                format!("port mapping {} ({}): {what}", e.mapping, e.map.name()),
            ))
        };
        match held {
            None => return fail("missing"),
            Some(h) if h.tag.as_deref() != Some(tag.as_str()) => {
                return Err(conflict(&e.mapping, h.tag.as_deref()))
            }
            Some(h) if h.data.as_deref() != Some(&e.data[..]) => {
                return fail("points somewhere else than the pod")
            }
            Some(_) => {}
        }
    }
    Ok(())
}
