//! `gc`: cached attachments of a network not listed as valid are deleted, then each plugin is
//! asked to collect; prints what went.

use super::plugin::{Cache, Plugins};
use crate::{print_json, Failure};
use clap::Args as ClapArgs;
use runtime::GcAttachment;
use serde_json::{json, Value};

#[derive(ClapArgs)]
pub struct GcArgs {
    network: String,
    /// Ignored; accepted for cnitool's argument order.
    netns: Option<String>,
    /// An attachment to keep: CONTAINER_ID or CONTAINER_ID/IFNAME (repeatable). With none,
    /// every cached attachment of the network is stale, as with cnitool's gc.
    #[arg(long = "valid", value_name = "CONTAINER_ID[/IFNAME]")]
    valid: Vec<String>,
    /// The interface of a --valid without /IFNAME.
    #[arg(short, long, env = "CNI_IFNAME", default_value = "eth0")]
    ifname: String,
    #[command(flatten)]
    plugins: Plugins,
    #[command(flatten)]
    cache: Cache,
}

fn parse_valid(items: &[String], default_ifname: &str) -> Vec<GcAttachment> {
    items
        .iter()
        .map(|v| {
            let (cid, ifname) = v.split_once('/').unwrap_or((v, default_ifname));
            GcAttachment {
                container_id: cid.to_string(),
                ifname: ifname.to_string(),
            }
        })
        .collect()
}

pub fn gc(a: &GcArgs, as_json: bool) -> Result<(), Failure> {
    let list = a.plugins.load(&a.network)?;
    let cni = a.plugins.cni(Some(&a.cache));
    let valid = parse_valid(&a.valid, &a.ifname);
    let gc = cni.gc_network_list(&list, (!valid.is_empty()).then_some(&valid[..]));
    let removed = &gc.removed;
    if as_json {
        let list: Vec<Value> = removed
            .iter()
            .map(|c| json!({"containerID": c.container_id, "ifname": c.ifname}))
            .collect();
        print_json(&json!({ "removed": list }));
    } else if list.disable_gc {
        println!("network {:?} has disableGC set: nothing done", list.name);
    } else {
        println!(
            "gc network {:?}: removed {} stale attachment(s)",
            list.name,
            removed.len()
        );
        for c in removed {
            println!("  {} {}", c.container_id, c.ifname);
        }
    }
    gc.result?;
    Ok(())
}
