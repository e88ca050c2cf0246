//! The podwire network the runtimes load: the `podwire` bridge plugin with in-process
//! `podwire-ipam` on a bridge and test subnet of its own, logging at debug level, then
//! `podwire-portmap` for hostPort, as `podwirectl node setup` writes it.

use serde_json::{json, Value};
use std::path::Path;

/// What makes one suite's network private.
#[derive(Debug, Clone)]
pub struct Network {
    /// The network name: also names its cache entries and tags its veths and nft rules.
    pub name: String,
    pub bridge: String,
    pub subnet: String,
    /// The gateway podwire puts on the bridge: the subnet's first address.
    pub gateway: String,
}

impl Network {
    pub fn new(name: &str, bridge: &str, subnet: &str, gateway: &str) -> Network {
        Network {
            name: name.into(),
            bridge: bridge.into(),
            subnet: subnet.into(),
            gateway: gateway.into(),
        }
    }

    /// The conflist: CNI 1.0.0, the newest both containerd 1.6 and Podman 4.3 accept.
    pub fn conflist(&self, data_dir: &Path, log_file: &Path) -> Value {
        json!({
            "cniVersion": "1.0.0",
            "name": self.name,
            "plugins": [{
                "type": "podwire",
                "bridge": self.bridge,
                "isGateway": true,
                "isDefaultGateway": true,
                "ipMasq": true,
                "hairpinMode": true,
                "logFile": log_file,
                "logLevel": "debug",
                "ipam": {"type": "podwire-ipam", "subnet": self.subnet, "dataDir": data_dir},
            }, {
                "type": "podwire-portmap",
                "capabilities": {"portMappings": true},
                "logFile": log_file,
                "logLevel": "debug",
            }],
        })
    }

    /// Saves the network's parameters (for a later teardown by another process).
    pub fn save(&self, path: &Path) {
        let v = json!({"name": self.name, "bridge": self.bridge, "subnet": self.subnet,
                       "gateway": self.gateway});
        std::fs::write(path, v.to_string()).expect("write network.json");
    }

    pub fn load(path: &Path) -> Network {
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let v: Value = serde_json::from_str(&text).expect("network.json is JSON");
        let field = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        Network {
            name: field("name"),
            bridge: field("bridge"),
            subnet: field("subnet"),
            gateway: field("gateway"),
        }
    }

    /// The tag prefix podwire puts on this network's host veths (alias) and nft rules (comment).
    pub fn tag_prefix(&self) -> String {
        format!("podwire/{}/", self.name)
    }

    /// The tag prefix of this network's port mappings (nft map element comments).
    pub fn portmap_tag_prefix(&self) -> String {
        format!("podwire-portmap/{}/", self.name)
    }
}
