//! The node at a glance: each podwire network's bridge and its ports, the pods behind them,
//! IPAM use per range, the routes that leave the node, podwire's nftables rules, and what does
//! not add up (an allocation with no interface, a veth with no allocation, a cached
//! attachment with no pod). Everything is read on the spot from the kernel, the IPAM state
//! directory and the result cache; the configs (through `NETCONFPATH`) say where to look.
//!
//! - [`view`]: what is shown (serializable, the JSON of `node show --json`);
//! - the readers: [`network`] (a network's bridge and IPAM use), [`pods`] (the pods behind the
//!   bridge, from the result cache and their netns), [`routes`] (routes out and tunnels),
//!   [`nftables`] (podwire's tables and hostPort maps);
//! - [`render`]: the view as text.

mod network;
mod nftables;
mod pods;
mod render;
mod routes;
mod view;

pub use nftables::nft_tables;
pub use render::render;
pub use routes::protocol_name;
pub use view::*;

use bridge::config::Config;
use kernel::nft::Nftables;
use kernel::Netlink;
use runtime::{Cache, NetworkConfigList};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The plugin type whose attachments this view understands.
pub const PLUGIN: &str = "podwire";

/// Where to read from.
#[derive(Debug, Clone)]
pub struct Sources {
    pub netconfpath: PathBuf,
    pub cache_dir: PathBuf,
    /// Only this network (it must be a podwire network).
    pub network: Option<String>,
}

/// The podwire networks under `netconfpath` (one named network, or all).
pub fn podwire_networks(
    netconfpath: &Path,
    only: Option<&str>,
) -> crate::Result<(Vec<NetworkConfigList>, Vec<String>)> {
    if let Some(name) = only {
        let list = runtime::load_network(netconfpath, name).map_err(|e| e.to_string())?;
        if !list.plugins.iter().any(|p| p.kind == PLUGIN) {
            return Err(format!(
                "network {name:?} has no {PLUGIN:?} plugin: nothing of it to show"
            ));
        }
        return Ok((vec![list], Vec::new()));
    }
    let mut lists = Vec::new();
    let mut errors = Vec::new();
    let mut seen = BTreeSet::new();
    for l in runtime::conf::list_networks(netconfpath).map_err(|e| e.to_string())? {
        match l {
            // The first file of a name wins, as in libcni.
            Ok(l) if l.plugins.iter().any(|p| p.kind == PLUGIN) && seen.insert(l.name.clone()) => {
                lists.push(l)
            }
            Ok(_) => {}
            Err(e) => errors.push(e.to_string()),
        }
    }
    Ok((lists, errors))
}

/// The podwire plugin's config as the plugin sees it (name and cniVersion from the list).
pub fn plugin_config(list: &NetworkConfigList) -> crate::Result<(cni::NetConf, Config)> {
    let plugin = list
        .plugins
        .iter()
        .find(|p| p.kind == PLUGIN)
        .ok_or_else(|| format!("network {:?} has no {PLUGIN:?} plugin", list.name))?;
    let bytes = runtime::build_plugin_config(list, plugin, None, None);
    let conf = cni::NetConf::parse(&bytes).map_err(|e| e.to_string())?;
    let config = Config::from_netconf(&conf).map_err(|e| e.to_string())?;
    Ok((conf, config))
}

/// Reads the node.
pub fn show(src: &Sources) -> crate::Result<NodeView> {
    let (lists, mut errors) = podwire_networks(&src.netconfpath, src.network.as_deref())?;
    let host = Netlink::new().map_err(|e| e.to_string())?;
    let links = host.links().map_err(|e| e.to_string())?;
    let cache = Cache::new(&src.cache_dir);
    let cached = cache.attachments(None).unwrap_or_else(|e| {
        errors.push(format!("result cache {}: {e}", src.cache_dir.display()));
        Vec::new()
    });
    let mut networks = Vec::new();
    for list in &lists {
        match network::network(list, &host, &links, &cached) {
            Ok(n) => networks.push(n),
            Err(e) => errors.push(format!("network {:?}: {e}", list.name)),
        }
    }
    let bridges: BTreeSet<u32> = networks.iter().filter_map(|n| n.bridge.index).collect();
    let routes = routes::routes(&host, &links, &bridges)?;
    let tunnels = routes::tunnels(&host, &links);
    let peer_paths = routes::peer_paths(&host, &links, &routes);
    let nft = Nftables::new();
    let port_mappings = nft
        .as_ref()
        .map(nftables::port_mappings)
        .unwrap_or_default();
    let nftables = match nft {
        Ok(nft) => nft_tables()
            .iter()
            .filter_map(|t| {
                let rules = nft.rules(t).ok()?;
                Some(NftTableView {
                    family: t.family.to_string(),
                    name: t.name.clone(),
                    rules: rules
                        .into_iter()
                        .map(|r| NftRuleView {
                            chain: r.chain,
                            handle: r.handle,
                            comment: r.tag,
                        })
                        .collect(),
                })
            })
            .filter(|t| !t.rules.is_empty())
            .collect(),
        Err(e) => {
            errors.push(format!("nftables: {e}"));
            Vec::new()
        }
    };
    Ok(NodeView {
        networks,
        routes,
        tunnels,
        peer_paths,
        nftables,
        port_mappings,
        errors,
    })
}
