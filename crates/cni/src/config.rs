//! Network configuration: one plugin's config (`NetConf`) and a list (`NetConfList`).
//! Unknown fields are kept in `extra` and written back out, so a config forwarded to a
//! delegate or the next plugin in a chain loses nothing.

use crate::error::{Error, Result};
use crate::result::Dns;
use crate::version;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The `ipam` section: its `type` plus the plugin's own keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IpamConf {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One plugin's configuration, as a plugin receives it on stdin.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetConf {
    #[serde(default)]
    pub cni_version: String,
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipam: Option<IpamConf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_config: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_result: Option<Value>,
    /// Everything else (the plugin's own keys), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl NetConf {
    /// Parses a plugin config from stdin bytes: code 6 for bad JSON or wrong types,
    /// code 1 for a missing or unsupported `cniVersion`, code 7 for a missing `type`.
    pub fn parse(bytes: &[u8]) -> Result<NetConf> {
        let conf: NetConf = serde_json::from_slice(bytes)
            .map_err(|e| Error::decode(format!("cannot decode network config: {e}")))?;
        version::require_supported(&conf.cni_version)?;
        if conf.kind.is_empty() {
            return Err(Error::invalid_config("network config has no \"type\""));
        }
        Ok(conf)
    }

    /// Reads the plugin-specific keys (those in `extra`) into the plugin's own type.
    pub fn plugin_fields<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(Value::Object(self.extra.clone()))
            .map_err(|e| Error::invalid_config(format!("network {:?}: {e}", self.name)))
    }

    /// A value from `runtimeConfig` (capability arguments from the runtime).
    pub fn runtime(&self, key: &str) -> Option<&Value> {
        self.runtime_config.as_ref()?.get(key)
    }

    /// A value from `args.cni` (the conventional place for extra per-attachment arguments).
    pub fn args_cni(&self, key: &str) -> Option<&Value> {
        self.args.as_ref()?.get("cni")?.get(key)
    }

    /// GC's `cni.dev/valid-attachments`: the (containerID, ifname) pairs the runtime still uses.
    /// A GC without the list is refused (code 7) rather than read as "nothing is valid", which
    /// would release every attachment of the network.
    pub fn valid_attachments(&self) -> Result<std::collections::HashSet<(String, String)>> {
        const KEY: &str = "cni.dev/valid-attachments";
        let list = self.extra.get(KEY).ok_or_else(|| {
            Error::invalid_config(format!(
                "GC needs {KEY:?} in the config (refusing to release every attachment)"
            ))
        })?;
        let list = list
            .as_array()
            .ok_or_else(|| Error::invalid_config(format!("{KEY}: want a list, got {list}")))?;
        list.iter()
            .map(|v| {
                let get = |k: &str| v.get(k).and_then(|s| s.as_str()).map(str::to_string);
                match (get("containerID"), get("ifname")) {
                    (Some(id), Some(ifname)) => Ok((id, ifname)),
                    _ => Err(Error::invalid_config(format!(
                        "{KEY}: {v} needs string \"containerID\" and \"ifname\""
                    ))),
                }
            })
            .collect()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a NetConf always serialises")
    }
}

/// A network configuration list (`*.conflist`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetConfList {
    #[serde(default)]
    pub cni_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cni_versions: Vec<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disable_check: bool,
    #[serde(
        default,
        rename = "disableGC",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub disable_gc: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub load_only_inlined_plugins: bool,
    #[serde(default)]
    pub plugins: Vec<Map<String, Value>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl NetConfList {
    /// Parses a conflist: its name must be valid, it must have plugins each with a `type`, and its
    /// effective version (from `cniVersions`, else `cniVersion`) must be one we speak.
    pub fn parse(bytes: &[u8]) -> Result<NetConfList> {
        let mut list: NetConfList = serde_json::from_slice(bytes)
            .map_err(|e| Error::decode(format!("cannot decode network config list: {e}")))?;
        crate::validate::network_name(&list.name)?;
        list.cni_version = version::select(&list.cni_version, &list.cni_versions)?;
        version::require_supported(&list.cni_version)?;
        if list.plugins.is_empty() && !list.load_only_inlined_plugins {
            return Err(Error::invalid_config(format!(
                "network {:?} has no plugins",
                list.name
            )));
        }
        for (i, p) in list.plugins.iter().enumerate() {
            if p.get("type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
            {
                return Err(Error::invalid_config(format!(
                    "network {:?}: plugin {i} has no \"type\"",
                    list.name
                )));
            }
        }
        Ok(list)
    }

    /// Upconverts a single plugin config (`*.conf`) to a one-plugin list, as libcni does.
    pub fn from_single(bytes: &[u8]) -> Result<NetConfList> {
        let v: Map<String, Value> = serde_json::from_slice(bytes)
            .map_err(|e| Error::decode(format!("cannot decode network config: {e}")))?;
        let get = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let list = NetConfList {
            cni_version: get("cniVersion"),
            name: get("name"),
            plugins: vec![v],
            ..Default::default()
        };
        let bytes = serde_json::to_vec(&list)?;
        Self::parse(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let input = json!({
            "cniVersion": "1.0.0", "name": "n", "type": "podwire",
            "bridge": "cni0", "isGateway": true, "weird": {"nested": [1, 2]},
            "ipam": {"type": "podwire-ipam", "subnet": "10.0.0.0/24", "x": 1},
            "runtimeConfig": {"mac": "aa:bb:cc:dd:ee:ff"},
            "args": {"cni": {"ips": ["10.0.0.9"]}},
            "prevResult": {"cniVersion": "1.0.0"},
            "dns": {"nameservers": ["10.0.0.10"]}
        });
        let conf = NetConf::parse(input.to_string().as_bytes()).unwrap();
        assert_eq!(conf.kind, "podwire");
        assert_eq!(conf.extra["bridge"], "cni0");
        assert_eq!(conf.ipam.as_ref().unwrap().kind, "podwire-ipam");
        assert_eq!(conf.ipam.as_ref().unwrap().extra["x"], 1);
        assert_eq!(conf.runtime("mac").unwrap(), "aa:bb:cc:dd:ee:ff");
        assert_eq!(conf.args_cni("ips").unwrap()[0], "10.0.0.9");
        let back: Value = serde_json::from_slice(&conf.to_bytes()).unwrap();
        assert_eq!(back, input);
    }

    #[test]
    fn valid_attachments_are_read_and_required() {
        let mut c = NetConf::parse(br#"{"cniVersion":"1.1.0","name":"n","type":"t"}"#).unwrap();
        assert_eq!(c.valid_attachments().unwrap_err().code.number(), 7);
        c.extra.insert(
            "cni.dev/valid-attachments".into(),
            json!([{"containerID": "a", "ifname": "eth0"}]),
        );
        let v = c.valid_attachments().unwrap();
        assert!(v.contains(&("a".to_string(), "eth0".to_string())) && v.len() == 1);
        c.extra.insert(
            "cni.dev/valid-attachments".into(),
            json!([{"containerID": "a"}]),
        );
        assert!(c.valid_attachments().unwrap_err().msg.contains("ifname"));
        c.extra
            .insert("cni.dev/valid-attachments".into(), json!({}));
        assert_eq!(c.valid_attachments().unwrap_err().code.number(), 7);
    }

    #[test]
    fn plugin_fields_decode_into_the_plugins_type() {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Bridge {
            bridge: String,
            is_gateway: bool,
        }
        let conf = NetConf::parse(
            br#"{"cniVersion":"0.4.0","name":"n","type":"t","bridge":"b","isGateway":true}"#,
        )
        .unwrap();
        let b: Bridge = conf.plugin_fields().unwrap();
        assert_eq!((b.bridge.as_str(), b.is_gateway), ("b", true));
        let bad = NetConf::parse(
            br#"{"cniVersion":"0.4.0","name":"n","type":"t","bridge":"b","isGateway":"yes"}"#,
        )
        .unwrap();
        assert_eq!(
            bad.plugin_fields::<Bridge>().err().unwrap().code.number(),
            7
        );
    }

    #[test]
    fn bad_configs_get_the_right_codes() {
        let code = |s: &str| NetConf::parse(s.as_bytes()).unwrap_err().code.number();
        assert_eq!(code("{"), 6);
        assert_eq!(code("[]"), 6);
        assert_eq!(code(r#"{"cniVersion":1,"name":"n","type":"t"}"#), 6);
        assert_eq!(code(r#"{"name":"n","type":"t"}"#), 1);
        assert_eq!(code(r#"{"cniVersion":"0.9.0","name":"n","type":"t"}"#), 1);
        assert_eq!(code(r#"{"cniVersion":"1.0.0","name":"n"}"#), 7);
        assert_eq!(
            code(r#"{"cniVersion":"1.0.0","name":"n","type":"t","ipam":[]}"#),
            6
        );
    }

    #[test]
    fn conflist_parses_flags_and_selects_version() {
        let l = NetConfList::parse(
            br#"{"cniVersion":"0.4.0","cniVersions":["1.0.0","1.1.0"],"name":"net1","disableCheck":true,
                 "disableGC":true,"plugins":[{"type":"podwire"},{"type":"portmap","capabilities":{"portMappings":true}}]}"#,
        )
        .unwrap();
        assert_eq!(l.cni_version, "1.1.0");
        assert!(l.disable_check && l.disable_gc && !l.load_only_inlined_plugins);
        assert_eq!(l.plugins.len(), 2);
    }

    #[test]
    fn conflist_errors() {
        let code = |s: &str| NetConfList::parse(s.as_bytes()).unwrap_err().code.number();
        assert_eq!(code(r#"{"cniVersion":"1.0.0","name":"n","plugins":[]}"#), 7);
        assert_eq!(
            code(r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"x":1}]}"#),
            7
        );
        assert_eq!(
            code(r#"{"cniVersion":"1.0.0","name":"../etc","plugins":[{"type":"a"}]}"#),
            7
        );
        assert_eq!(
            code(r#"{"cniVersion":"3.0.0","name":"n","plugins":[{"type":"a"}]}"#),
            1
        );
    }

    #[test]
    fn single_conf_upconverts_to_a_list() {
        let l = NetConfList::from_single(
            br#"{"cniVersion":"0.3.1","name":"mynet","type":"podwire","network":"10.244.0.0/16","subnet":"10.244.0.0/24"}"#,
        )
        .unwrap();
        assert_eq!(l.name, "mynet");
        assert_eq!(l.cni_version, "0.3.1");
        assert_eq!(l.plugins[0]["subnet"], "10.244.0.0/24");
    }
}
