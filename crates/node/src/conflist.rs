//! The network config list the node's runtime reads: podwire as bridge + gateway with its
//! in-process IPAM over the pod CIDR(s), then `podwire-portmap` for hostPort, always (it ships
//! with podwire, so the list never names a plugin the node lacks).

use crate::config::Plan;
use serde_json::{json, Value};

/// The conflist's CNI version (1.0.0: what every runtime we support speaks).
pub const CNI_VERSION: &str = "1.0.0";

/// The hostPort plugin the list chains after podwire.
pub const PORTMAP: &str = "podwire-portmap";

/// Whether `podwire-portmap` is installed where the runtime looks for plugins.
pub fn portmap_installed(plan: &Plan) -> bool {
    plan.config.cni_bin_dir.join(PORTMAP).is_file()
}

pub fn render(plan: &Plan) -> Value {
    let c = &plan.config;
    let ranges: Vec<Value> = plan
        .families
        .iter()
        .map(|f| json!([{ "subnet": f.pod_cidr.to_string() }]))
        .collect();
    let mut ipam = json!({ "type": "podwire-ipam", "ranges": ranges });
    if let Some(dir) = &c.ipam_data_dir {
        ipam["dataDir"] = dir.as_str().into();
    }
    let mut podwire = json!({
        "type": "podwire",
        "bridge": c.bridge,
        "isGateway": true,
        "isDefaultGateway": true,
        // A pod reaching its own hostPort is bridged back out its own port under br_netfilter.
        "hairpinMode": true,
        "ipam": ipam,
    });
    if let Some(mtu) = c.mtu {
        podwire["mtu"] = mtu.into();
    }
    let portmap = json!({ "type": PORTMAP, "capabilities": { "portMappings": true } });
    let plugins = vec![podwire, portmap];
    json!({ "cniVersion": CNI_VERSION, "name": c.network, "plugins": plugins })
}

/// The file's bytes: pretty JSON with a trailing newline, stable for a given plan.
pub fn render_bytes(plan: &Plan) -> Vec<u8> {
    let mut s = serde_json::to_string_pretty(&render(plan)).expect("JSON always serialises");
    s.push('\n');
    s.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NodeConfig;

    fn plan(pods: &[&str]) -> Plan {
        let mut c = NodeConfig::new(
            pods.iter().map(|s| s.parse().unwrap()).collect(),
            vec![
                "10.244.0.0/16".parse().unwrap(),
                "fd00::/56".parse().unwrap(),
            ],
        );
        c.cluster_cidrs
            .retain(|cl| pods.iter().any(|p| p.contains(':') == cl.addr().is_ipv6()));
        c.mtu = Some(1450);
        Plan::new(c).unwrap()
    }

    #[test]
    fn dual_stack_has_one_range_set_per_family() {
        let v = render(&plan(&["10.244.3.0/24", "fd00:0:0:3::/64"]));
        assert_eq!(
            v,
            json!({"cniVersion":"1.0.0","name":"podwire","plugins":[{
                "type":"podwire","bridge":"cni0","isGateway":true,"isDefaultGateway":true,"mtu":1450,
                "hairpinMode":true,
                "ipam":{"type":"podwire-ipam","ranges":[[{"subnet":"10.244.3.0/24"}],[{"subnet":"fd00:0:0:3::/64"}]]}
            }, {"type":"podwire-portmap","capabilities":{"portMappings":true}}]})
        );
    }

    #[test]
    fn the_list_parses_as_the_runtime_and_the_plugin_read_it() {
        let bytes = render_bytes(&plan(&["10.244.3.0/24"]));
        let list: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(list["plugins"][1]["type"], "podwire-portmap");
        // What libcni hands the plugin: the plugin's object plus name and cniVersion.
        let mut conf = list["plugins"][0].clone();
        conf["name"] = list["name"].clone();
        conf["cniVersion"] = list["cniVersion"].clone();
        let parsed = cni::NetConf::parse(conf.to_string().as_bytes()).unwrap();
        assert_eq!(parsed.kind, "podwire");
        assert_eq!(parsed.ipam.unwrap().kind, "podwire-ipam");
    }

    #[test]
    fn portmap_is_looked_for_in_the_bin_dir() {
        let dir = std::env::temp_dir().join(format!("podwire-node-pm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut p = plan(&["10.244.3.0/24"]);
        p.config.cni_bin_dir = dir.clone();
        assert!(!portmap_installed(&p));
        std::fs::write(dir.join(PORTMAP), b"").unwrap();
        assert!(portmap_installed(&p));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
