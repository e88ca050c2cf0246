//! The plugins' node-wide tables kept in place: on the agent's first pass and every resync,
//! podwire-portmap's hostPort maps and the bridge plugin's anti-spoofing sets are made to hold
//! what libcni's result cache records for this node's network, their structure rebuilt if a
//! firewall reload (`nft flush ruleset`) removed them or an older release left another (issue
//! #22 item 6). The plugins keep no state of their own: the cache already has, per attachment,
//! the config list, `capabilityArgs.portMappings` and the result (pod addresses and MAC, host
//! interface).
//!
//! No pod is restarted and nothing is removed here: what belongs to pods that are gone is the
//! plugins' DEL and GC to collect. A mapping whose port another pod now holds is reported, not
//! forced. Between a flush and the next resync (`--resync`, 60 s by default) the pods of the node
//! are unguarded and their hostPorts dead; the log says so when it puts them back.

use super::{log, Controller, Pass};
use bridge::antispoof;
use cni::CniResult;
use kernel::MacAddr;
use portmap::restore::{restore, Attachment};
use portmap::structure::Structure;
use runtime::{Cache, CacheEntry, NetworkConfigList};
use std::net::IpAddr;
use std::path::PathBuf;

pub struct PluginTables {
    cache: Cache,
    network: String,
    done_once: bool,
}

impl PluginTables {
    /// `cache_dir`: libcni's cache directory (`/var/lib/cni`, holding `results/`).
    pub fn new(cache_dir: PathBuf, network: String) -> PluginTables {
        PluginTables {
            cache: Cache::new(cache_dir),
            network,
            done_once: false,
        }
    }
}

impl Controller for PluginTables {
    fn reconcile(&mut self, pass: &Pass<'_>) {
        if self.done_once && !pass.resync {
            return;
        }
        self.done_once = true;
        let entries = match cached(&self.cache) {
            Ok(e) => e,
            Err(e) => return log(&e.msg),
        };
        for said in [
            put_back_guards_from(&entries, &self.network),
            put_back_from(&entries, &self.network),
        ] {
            match said {
                Ok(s) if s.is_empty() => {}
                Ok(s) => log(&s),
                Err(e) => log(&e.msg),
            }
        }
    }
}

/// Puts `network`'s cached mappings back in this netns; says what it did and what it could not
/// (empty: nothing to say: no mappings, or all of them in place on an intact table).
pub fn put_back(cache: &Cache, network: &str) -> cni::Result<String> {
    put_back_from(&cached(cache)?, network)
}

fn put_back_from(entries: &[CacheEntry], network: &str) -> cni::Result<String> {
    let (attachments, mut problems) = attachments(entries, network);
    if attachments.is_empty() {
        return Ok(problems.join("; "));
    }
    let r = restore(&attachments)?;
    for (tag, e) in &r.failed {
        problems.push(format!("{tag}: {}", e.msg));
    }
    let mut said = Vec::new();
    let was = match &r.found {
        Structure::Intact => None,
        Structure::Absent => Some("gone".to_string()),
        Structure::Broken(why) => Some(why.clone()),
    };
    if let Some(was) = was {
        said.push(format!(
            "hostPorts: table {} was not intact ({was}): rebuilt, {} attachment(s) put back",
            kernel::owned::PORTMAP_TABLE,
            r.in_place
        ));
    }
    if !problems.is_empty() {
        said.push(format!("hostPorts not restored: {}", problems.join("; ")));
    }
    Ok(said.join("\n"))
}

/// Puts the anti-spoofing elements of `network`'s cached attachments back in this netns (those
/// whose config has `spoofCheck` on and whose host interface still exists); says what it did.
pub fn put_back_guards(cache: &Cache, network: &str) -> cni::Result<String> {
    put_back_guards_from(&cached(cache)?, network)
}

/// libcni's cache entries, read once per pass for both tables.
fn cached(cache: &Cache) -> cni::Result<Vec<CacheEntry>> {
    cache
        .attachments(None)
        .map_err(|e| cni::Error::io(format!("read {}: {e}", cache.results_dir().display())))
}

fn put_back_guards_from(entries: &[CacheEntry], network: &str) -> cni::Result<String> {
    let nl = kernel::Netlink::new()?;
    let mut restored = Vec::new();
    let mut problems = Vec::new();
    for g in guards(entries, network, &mut problems) {
        if nl.link(g.host.as_str()).is_err() {
            continue; // a pod gone without its DEL: GC's business, not ours
        }
        let port = antispoof::Port {
            name: &g.host,
            mac: g.mac,
            ips: &g.ips,
        };
        match antispoof::missing(&port, &g.tag) {
            Ok(m) if m.is_empty() => {}
            Ok(_) => match antispoof::add(&port, &g.tag) {
                Ok(()) => restored.push(g.host.clone()),
                Err(e) => problems.push(format!("{}: {}", g.host, e.msg)),
            },
            Err(e) => problems.push(format!("{}: {}", g.host, e.msg)),
        }
    }
    let mut said = Vec::new();
    if !restored.is_empty() {
        said.push(format!(
            "spoofCheck: elements of {} port(s) were missing from bridge {} (a firewall reload?): put back ({})",
            restored.len(),
            antispoof::TABLE,
            restored.join(", ")
        ));
    }
    if !problems.is_empty() {
        said.push(format!("spoofCheck not restored: {}", problems.join("; ")));
    }
    Ok(said.join("\n"))
}

/// One guarded port as the cache records it.
#[derive(Debug, PartialEq, Eq)]
pub struct Guard {
    pub host: String,
    pub mac: MacAddr,
    pub ips: Vec<IpAddr>,
    pub tag: String,
}

/// The ports of `network`'s cached attachments that `spoofCheck` guards: the host interface is
/// the result's interface outside the pod that is not the bridge, the MAC the pod interface's.
pub fn guards(entries: &[CacheEntry], network: &str, problems: &mut Vec<String>) -> Vec<Guard> {
    let mut out = Vec::new();
    for e in entries.iter().filter(|e| e.network_name == network) {
        let who = format!("{}/{}", e.container_id, e.ifname);
        let Some((bridge, spoof_check)) = bridge_config(&e.config) else {
            continue; // not a podwire bridge attachment
        };
        if !spoof_check {
            continue;
        }
        let Some(result) = e
            .result
            .as_ref()
            .and_then(|r| CniResult::from_value(r).ok())
        else {
            problems.push(format!("{who}: no readable cached result"));
            continue;
        };
        let host = result
            .interfaces
            .iter()
            .find(|i| i.sandbox.is_empty() && i.name != bridge)
            .map(|i| i.name.clone());
        let mac = result
            .interfaces
            .iter()
            .find(|i| !i.sandbox.is_empty() && i.name == e.ifname)
            .and_then(|i| i.mac.parse::<MacAddr>().ok());
        match (host, mac) {
            (Some(host), Some(mac)) => out.push(Guard {
                host,
                mac,
                ips: result.ips.iter().map(|ip| ip.address.addr()).collect(),
                tag: bridge::names::attachment_tag(network, &e.container_id, &e.ifname),
            }),
            _ => problems.push(format!(
                "{who}: the cached result names no host interface or pod MAC"
            )),
        }
    }
    out
}

/// The podwire plugin's bridge name and `spoofCheck` in a cached config list; None when the list
/// has no podwire plugin.
fn bridge_config(list: &[u8]) -> Option<(String, bool)> {
    let list = NetworkConfigList::from_bytes(list).ok()?;
    let plugin = list.plugins.iter().find(|p| p.kind == "podwire")?;
    let bytes = runtime::build_plugin_config(&list, plugin, None, None);
    let conf = cni::NetConf::parse(&bytes).ok()?;
    let c = bridge::config::Config::from_netconf(&conf).ok()?;
    Some((c.bridge.bridge, c.bridge.spoof_check))
}

/// The cache entries of `network` that carry port mappings, as portmap's [`Attachment`]s; an
/// entry that cannot be read is named in the second list and skipped (never fatal: the others
/// still go back).
pub fn attachments(entries: &[CacheEntry], network: &str) -> (Vec<Attachment>, Vec<String>) {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for e in entries.iter().filter(|e| e.network_name == network) {
        let Some(pm) = e
            .capability_args
            .get("portMappings")
            .filter(|v| v.as_array().is_some_and(|a| !a.is_empty()))
        else {
            continue;
        };
        let who = format!("{}/{}", e.container_id, e.ifname);
        let result = match e.result.as_ref().map(CniResult::from_value) {
            Some(Ok(r)) => r,
            Some(Err(err)) => {
                problems.push(format!("{who}: cached result unreadable: {}", err.msg));
                continue;
            }
            None => {
                problems.push(format!("{who}: no cached result"));
                continue;
            }
        };
        match Attachment::new(network, &e.container_id, &e.ifname, pm, result) {
            Ok(a) => out.push(a),
            Err(err) => problems.push(format!("{who}: {}", err.msg)),
        }
    }
    (out, problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(
        network: &str,
        id: &str,
        caps: serde_json::Value,
        result: Option<serde_json::Value>,
    ) -> CacheEntry {
        CacheEntry {
            container_id: id.into(),
            network_name: network.into(),
            ifname: "eth0".into(),
            netns: String::new(),
            config: Vec::new(),
            cni_args: Vec::new(),
            capability_args: caps.as_object().cloned().unwrap_or_default(),
            result,
        }
    }

    fn result() -> serde_json::Value {
        json!({"cniVersion": "1.0.0",
               "interfaces": [{"name": "cni0"}, {"name": "veth1"}, {"name": "eth0", "sandbox": "/run/netns/p"}],
               "ips": [{"address": "10.244.1.5/24", "interface": 2}]})
    }

    #[test]
    fn only_this_networks_entries_with_mappings_become_attachments() {
        let pm =
            json!({"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]});
        let entries = [
            entry("podwire", "a", pm.clone(), Some(result())),
            entry("other", "b", pm.clone(), Some(result())),
            entry("podwire", "c", json!({}), Some(result())),
            entry("podwire", "d", json!({"portMappings": []}), Some(result())),
        ];
        let (atts, problems) = attachments(&entries, "podwire");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(atts.len(), 1);
        assert_eq!(atts[0].container_id, "a");
        assert_eq!(atts[0].mappings.len(), 1);
    }

    #[test]
    fn an_unreadable_entry_is_named_and_the_others_still_go_back() {
        let pm = json!({"portMappings": [{"hostPort": 8080, "containerPort": 80}]});
        let bad = json!({"portMappings": [{"hostPort": "x", "containerPort": 80}]});
        let entries = [
            entry("podwire", "nores", pm.clone(), None),
            entry("podwire", "badpm", bad, Some(result())),
            entry("podwire", "good", pm, Some(result())),
        ];
        let (atts, problems) = attachments(&entries, "podwire");
        assert_eq!(atts.len(), 1, "{problems:?}");
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].starts_with("nores/eth0: no cached result"),
            "{problems:?}"
        );
        assert!(problems[1].starts_with("badpm/eth0:"), "{problems:?}");
    }

    fn guarded_entry(id: &str, spoof_check: Option<bool>) -> CacheEntry {
        let mut plugin = json!({"type": "podwire", "bridge": "cni9", "ipam": {"type": "podwire-ipam", "subnet": "10.244.1.0/24"}});
        if let Some(on) = spoof_check {
            plugin["spoofCheck"] = json!(on);
        }
        let list = json!({"cniVersion": "1.0.0", "name": "podwire", "plugins": [plugin]});
        let mut e = entry(
            "podwire",
            id,
            json!({}),
            Some(json!({"cniVersion": "1.0.0",
                "interfaces": [{"name": "cni9", "mac": "02:00:00:00:00:01"},
                               {"name": "vethab", "mac": "02:00:00:00:00:02"},
                               {"name": "eth0", "mac": "0a:58:0a:f4:01:05", "sandbox": "/run/netns/p"}],
                "ips": [{"address": "10.244.1.5/24", "interface": 2}]})),
        );
        e.config = serde_json::to_vec(&list).unwrap();
        e
    }

    #[test]
    fn a_guard_is_the_host_veth_not_the_bridge_with_the_pods_mac_and_addresses() {
        let mut problems = Vec::new();
        let entries = [guarded_entry("on", None), guarded_entry("off", Some(false))];
        let g = guards(&entries, "podwire", &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(g.len(), 1, "spoofCheck false is left alone: {g:?}");
        assert_eq!(g[0].host, "vethab");
        assert_eq!(g[0].mac.to_string(), "0a:58:0a:f4:01:05");
        assert_eq!(g[0].ips, vec!["10.244.1.5".parse::<IpAddr>().unwrap()]);
        assert_eq!(
            g[0].tag,
            bridge::names::attachment_tag("podwire", "on", "eth0")
        );
    }
}
