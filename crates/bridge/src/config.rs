//! The bridge plugin's config: the reference `bridge` plugin's keys, plus the talk's legacy form
//! (`"network"`/`"subnet"` at top level and no `ipam`), which becomes an in-process `podwire-ipam`.

use cni::{Error, IpamConf, NetConf, Result};
use ipnet::IpNet;
use serde::Deserialize;
use serde_json::{json, Value};

/// The IPAM type served in-process: no second exec per pod.
pub const IN_PROCESS_IPAM: &str = "podwire-ipam";

pub const DEFAULT_BRIDGE: &str = "cni0";

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BridgeConf {
    pub bridge: String,
    pub is_gateway: bool,
    pub is_default_gateway: bool,
    pub force_address: bool,
    pub ip_masq: bool,
    pub mtu: Option<u32>,
    pub hairpin_mode: bool,
    pub promisc_mode: bool,
    pub vlan: Option<u16>,
    /// Drop what a pod sends with a source MAC or IP address that is not its own (see
    /// crate::antispoof). On unless `false`.
    pub spoof_check: bool,
    /// The talk's config: the cluster network (kept for the node setup; the plugin only validates it).
    pub network: Option<String>,
    /// The talk's config: this node's pod subnet, used when there is no `ipam` section.
    pub subnet: Option<String>,
    /// The talk's config: where its in-process IPAM keeps state (default: host-local's).
    pub data_dir: Option<String>,
}

impl Default for BridgeConf {
    fn default() -> Self {
        BridgeConf {
            bridge: DEFAULT_BRIDGE.into(),
            is_gateway: false,
            is_default_gateway: false,
            force_address: false,
            ip_masq: false,
            mtu: None,
            hairpin_mode: false,
            promisc_mode: false,
            vlan: None,
            spoof_check: true,
            network: None,
            subnet: None,
            data_dir: None,
        }
    }
}

/// The plugin's view of its config: its own keys and the IPAM section it delegates to.
#[derive(Debug, Clone)]
pub struct Config {
    pub bridge: BridgeConf,
    pub ipam: IpamConf,
}

impl Config {
    pub fn from_netconf(conf: &NetConf) -> Result<Config> {
        let mut bridge: BridgeConf = conf.plugin_fields()?;
        if bridge.bridge.is_empty() {
            bridge.bridge = DEFAULT_BRIDGE.into();
        }
        cni::validate::interface_name(&bridge.bridge)
            .map_err(|e| Error::invalid_config(format!("bridge name: {}", e.msg)))?;
        if bridge.is_default_gateway {
            bridge.is_gateway = true;
        }
        if let Some(mtu) = bridge.mtu {
            if !(68..=65535).contains(&mtu) {
                return Err(Error::invalid_config(format!(
                    "mtu {mtu} is outside 68..=65535"
                )));
            }
        }
        if let Some(vlan) = bridge.vlan {
            if !(1..=4094).contains(&vlan) {
                return Err(Error::invalid_config(format!(
                    "vlan {vlan} is outside 1..=4094"
                )));
            }
        }
        let subnet = bridge
            .subnet
            .as_deref()
            .map(|s| parse_cidr("subnet", s))
            .transpose()?;
        let network = bridge
            .network
            .as_deref()
            .map(|s| parse_cidr("network", s))
            .transpose()?;
        let ipam = match (&conf.ipam, subnet) {
            (Some(ipam), _) if !ipam.kind.is_empty() => ipam.clone(),
            (Some(_), _) => return Err(Error::invalid_config("ipam section has no \"type\"")),
            (None, Some(subnet)) => {
                // The talk's plugin: gateway = first address on the bridge, default route via it.
                if let Some(net) = network {
                    if !net.contains(&subnet) {
                        return Err(Error::invalid_config(format!(
                            "subnet {subnet} is not inside network {net}"
                        )));
                    }
                }
                bridge.is_gateway = true;
                bridge.is_default_gateway = true;
                legacy_ipam(subnet, bridge.data_dir.as_deref())
            }
            (None, None) => return Err(Error::invalid_config(
                "no \"ipam\" section and no \"subnet\": podwire needs one to allocate addresses",
            )),
        };
        Ok(Config { bridge, ipam })
    }

    pub fn in_process_ipam(&self) -> bool {
        self.ipam.kind == IN_PROCESS_IPAM
    }
}

fn parse_cidr(key: &str, s: &str) -> Result<IpNet> {
    cni::addr::parse_net(s).ok_or_else(|| {
        Error::invalid_config(format!(
            "{key} {s:?} is not a CIDR (want e.g. 10.244.0.0/24){}",
            cni::addr::hint(s)
        ))
    })
}

fn legacy_ipam(subnet: IpNet, data_dir: Option<&str>) -> IpamConf {
    let Value::Object(mut extra) = json!({ "subnet": subnet.trunc().to_string() }) else {
        unreachable!()
    };
    if let Some(dir) = data_dir {
        extra.insert("dataDir".into(), dir.into());
    }
    IpamConf {
        kind: IN_PROCESS_IPAM.into(),
        extra,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config> {
        Config::from_netconf(&NetConf::parse(s.as_bytes()).unwrap())
    }

    #[test]
    fn defaults_follow_the_reference_bridge() {
        let c = parse(r#"{"cniVersion":"1.0.0","name":"n","type":"podwire","ipam":{"type":"host-local","subnet":"10.1.0.0/24"}}"#)
            .unwrap();
        assert_eq!(c.bridge.bridge, "cni0");
        assert!(!c.bridge.is_gateway && !c.bridge.ip_masq);
        assert!(!c.in_process_ipam());
        assert!(
            c.bridge.spoof_check,
            "podwire's one default stricter than the reference's"
        );
    }

    #[test]
    fn default_gateway_implies_gateway() {
        let c = parse(r#"{"cniVersion":"1.0.0","name":"n","type":"podwire","isDefaultGateway":true,"ipam":{"type":"podwire-ipam"}}"#)
            .unwrap();
        assert!(c.bridge.is_gateway);
        assert!(c.in_process_ipam());
    }

    #[test]
    fn the_talks_config_becomes_in_process_ipam_with_a_default_route() {
        let c = parse(
            r#"{"cniVersion":"0.3.1","name":"mynet","type":"podwire","network":"10.244.0.0/16","subnet":"10.244.0.0/24"}"#,
        )
        .unwrap();
        assert!(c.in_process_ipam());
        assert_eq!(c.ipam.extra["subnet"], "10.244.0.0/24");
        assert!(c.bridge.is_gateway && c.bridge.is_default_gateway);
    }

    #[test]
    fn bad_values_are_code_7_naming_the_value() {
        for (conf, needle) in [
            (r#""ipam":{"type":"x"},"mtu":10"#, "mtu 10"),
            (r#""ipam":{"type":"x"},"vlan":5000"#, "vlan 5000"),
            (
                r#""ipam":{"type":"x"},"bridge":"way-too-long-bridge-name""#,
                "bridge name",
            ),
            (r#""ipam":{"type":"x"},"isGateway":"yes""#, "\"yes\""),
            (r#""ipam":{"type":""}"#, "no \"type\""),
            (
                r#""subnet":"10.0.0.0/24","network":"10.1.0.0/16""#,
                "not inside",
            ),
            (r#""subnet":"10.0.0.0/33""#, "subnet"),
            (r#""subnet":"010.0.0.0/24""#, "leading zero"),
            (
                r#""subnet":"10.0.0.0/24","network":"10.00.0.0/16""#,
                "leading zero",
            ),
            (r#""bridge":"br0""#, "no \"ipam\""),
        ] {
            let e = parse(&format!(
                r#"{{"cniVersion":"1.0.0","name":"n","type":"podwire",{conf}}}"#
            ))
            .unwrap_err();
            assert_eq!(e.code.number(), 7, "{conf}: {e}");
            assert!(e.msg.contains(needle), "{conf}: {e}");
        }
    }
}
