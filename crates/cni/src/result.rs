//! Results of every spec version. `CniResult` is the 1.1.0 shape (a superset of all others);
//! `to_version` and `parse` convert the way libcni does:
//! 1.x ⇄ 0.3/0.4 (add or drop `ips[].version`), and 0.1/0.2 keep the first IPv4 and IPv6
//! address with its gateway, routes split by family.

use crate::error::{Error, Result};
use crate::version::{self, Version};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::net::IpAddr;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Interface {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sandbox: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub socket_path: String,
    #[serde(default, rename = "pciID", skip_serializing_if = "String::is_empty")]
    pub pci_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IpConfig {
    /// Host address with its prefix length, e.g. `10.244.0.5/24`.
    #[serde(with = "crate::addr::cidr")]
    pub address: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// Index into `interfaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    #[serde(with = "crate::addr::cidr")]
    pub dst: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, rename = "advmss", skip_serializing_if = "Option::is_none")]
    pub adv_mss: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<u8>,
}

impl Route {
    pub fn new(dst: IpNet, gw: Option<IpAddr>) -> Route {
        Route {
            dst,
            gw,
            mtu: None,
            adv_mss: None,
            priority: None,
            table: None,
            scope: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    pub fn is_empty(&self) -> bool {
        self.nameservers.is_empty()
            && self.domain.is_empty()
            && self.search.is_empty()
            && self.options.is_empty()
    }
}

/// A result in the newest shape. Its `cni_version` says which version it was read as or is meant for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CniResult {
    pub cni_version: String,
    pub interfaces: Vec<Interface>,
    pub ips: Vec<IpConfig>,
    pub routes: Vec<Route>,
    pub dns: Dns,
}

fn is_legacy(v: Version) -> bool {
    v < Version(0, 3, 0)
}

fn family(a: &IpNet) -> &'static str {
    match a {
        IpNet::V4(_) => "4",
        IpNet::V6(_) => "6",
    }
}

impl CniResult {
    /// Reads a result JSON of any supported version (taken from its `cniVersion`).
    pub fn parse(bytes: &[u8]) -> Result<CniResult> {
        let v: Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::decode(format!("cannot decode result: {e}")))?;
        Self::from_value(&v)
    }

    /// Reads a result object of any supported version.
    pub fn from_value(v: &Value) -> Result<CniResult> {
        let obj = v
            .as_object()
            .ok_or_else(|| Error::decode("result is not a JSON object"))?;
        let ver = obj.get("cniVersion").and_then(Value::as_str).unwrap_or("");
        version::require_supported(ver)?;
        let parsed = Version::parse(ver)?;
        let field = |name: &str| obj.get(name).cloned().unwrap_or(Value::Null);
        let decode = |what: &str, e: serde_json::Error| {
            Error::decode(format!("cannot decode result {what}: {e}"))
        };
        let mut out = CniResult {
            cni_version: ver.to_string(),
            ..Default::default()
        };
        if let Some(d) = obj.get("dns").filter(|d| !d.is_null()) {
            out.dns = serde_json::from_value(d.clone()).map_err(|e| decode("dns", e))?;
        }
        if is_legacy(parsed) {
            for key in ["ip4", "ip6"] {
                let Some(block) = obj.get(key).filter(|b| !b.is_null()) else {
                    continue;
                };
                let legacy: LegacyIp =
                    serde_json::from_value(block.clone()).map_err(|e| decode(key, e))?;
                out.ips.push(IpConfig {
                    address: legacy.ip,
                    gateway: legacy.gateway,
                    interface: None,
                });
                out.routes
                    .extend(legacy.routes.into_iter().map(|r| Route::new(r.dst, r.gw)));
            }
            return Ok(out);
        }
        if !field("interfaces").is_null() {
            out.interfaces =
                serde_json::from_value(field("interfaces")).map_err(|e| decode("interfaces", e))?;
        }
        if !field("ips").is_null() {
            // `version` (0.3/0.4) is checked against the address, then dropped.
            let ips = field("ips");
            for ip in ips
                .as_array()
                .ok_or_else(|| Error::decode("result ips is not a list"))?
            {
                let cfg: IpConfig =
                    serde_json::from_value(ip.clone()).map_err(|e| decode("ips", e))?;
                if let Some(fam) = ip.get("version").and_then(Value::as_str) {
                    if fam != family(&cfg.address) {
                        return Err(Error::decode(format!(
                            "result ip {} is marked version {fam}",
                            cfg.address
                        )));
                    }
                }
                out.ips.push(cfg);
            }
        }
        if !field("routes").is_null() {
            out.routes =
                serde_json::from_value(field("routes")).map_err(|e| decode("routes", e))?;
        }
        Ok(out)
    }

    /// The result as JSON in the given version, converting as libcni does.
    pub fn to_value(&self, cni_version: &str) -> Result<Value> {
        version::require_supported(cni_version)?;
        let ver = Version::parse(cni_version)?;
        let mut obj = Map::new();
        obj.insert("cniVersion".into(), cni_version.into());
        if is_legacy(ver) {
            for (key, want) in [("ip4", "4"), ("ip6", "6")] {
                let Some(ip) = self.ips.iter().find(|i| family(&i.address) == want) else {
                    continue;
                };
                let routes: Vec<Value> = self
                    .routes
                    .iter()
                    .filter(|r| family(&r.dst) == want)
                    .map(|r| {
                        let mut o = json!({ "dst": r.dst });
                        if let Some(gw) = r.gw {
                            o["gw"] = json!(gw);
                        }
                        o
                    })
                    .collect();
                let mut block = json!({ "ip": ip.address });
                if let Some(gw) = ip.gateway {
                    block["gateway"] = json!(gw);
                }
                if !routes.is_empty() {
                    block["routes"] = Value::Array(routes);
                }
                obj.insert(key.into(), block);
            }
        } else {
            let with_family = ver < Version(1, 0, 0);
            if !self.interfaces.is_empty() {
                obj.insert("interfaces".into(), serde_json::to_value(&self.interfaces)?);
            }
            if !self.ips.is_empty() {
                let ips = self
                    .ips
                    .iter()
                    .map(|ip| {
                        let mut v = serde_json::to_value(ip)?;
                        if with_family {
                            v["version"] = family(&ip.address).into();
                        }
                        Ok(v)
                    })
                    .collect::<Result<Vec<_>>>()?;
                obj.insert("ips".into(), Value::Array(ips));
            }
            if !self.routes.is_empty() {
                obj.insert("routes".into(), serde_json::to_value(&self.routes)?);
            }
        }
        // Always present, as in libcni's output (Go's omitempty never drops a struct).
        obj.insert("dns".into(), serde_json::to_value(&self.dns)?);
        Ok(Value::Object(obj))
    }

    /// Converts a result JSON of any version to `cni_version` (libcni's `fixupResultVersion` + `GetAsVersion`).
    pub fn convert(v: &Value, cni_version: &str) -> Result<Value> {
        Self::from_value(v)?.to_value(cni_version)
    }
}

#[derive(Deserialize)]
struct LegacyIp {
    #[serde(with = "crate::addr::cidr")]
    ip: IpNet,
    #[serde(default)]
    gateway: Option<IpAddr>,
    #[serde(default)]
    routes: Vec<LegacyRoute>,
}

#[derive(Deserialize)]
struct LegacyRoute {
    #[serde(with = "crate::addr::cidr")]
    dst: IpNet,
    #[serde(default)]
    gw: Option<IpAddr>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> CniResult {
        CniResult::from_value(&json!({
            "cniVersion": "1.1.0",
            "interfaces": [
                {"name": "cni0", "mac": "aa:bb:cc:dd:ee:01", "mtu": 1400},
                {"name": "veth1", "mac": "aa:bb:cc:dd:ee:02"},
                {"name": "eth0", "mac": "aa:bb:cc:dd:ee:03", "mtu": 1400, "sandbox": "/run/netns/p", "socketPath": "/s", "pciID": "0000:00:01.0"}
            ],
            "ips": [
                {"address": "10.1.0.5/24", "gateway": "10.1.0.1", "interface": 2},
                {"address": "10.1.0.6/24", "interface": 2},
                {"address": "fd00::5/64", "gateway": "fd00::1", "interface": 2}
            ],
            "routes": [
                {"dst": "0.0.0.0/0", "gw": "10.1.0.1", "mtu": 1300, "advmss": 1200, "priority": 5, "table": 100, "scope": 0},
                {"dst": "::/0", "gw": "fd00::1"},
                {"dst": "10.9.0.0/16"}
            ],
            "dns": {"nameservers": ["10.1.0.10"], "domain": "cluster.local", "search": ["svc"], "options": ["ndots:5"]}
        }))
        .unwrap()
    }

    #[test]
    fn v110_round_trips_losslessly() {
        let r = full();
        let v = r.to_value("1.1.0").unwrap();
        assert_eq!(v["interfaces"][0]["mtu"], 1400);
        assert_eq!(v["interfaces"][2]["pciID"], "0000:00:01.0");
        assert_eq!(v["routes"][0]["advmss"], 1200);
        assert_eq!(v["routes"][0]["table"], 100);
        assert_eq!(v["routes"][0]["scope"], 0);
        assert_eq!(CniResult::from_value(&v).unwrap(), r);
    }

    #[test]
    fn down_to_040_and_030_adds_ip_version_and_back_up_is_lossless_for_their_fields() {
        for ver in ["0.3.0", "0.3.1", "0.4.0"] {
            let v = full().to_value(ver).unwrap();
            assert_eq!(v["cniVersion"], ver);
            assert_eq!(v["ips"][0]["version"], "4");
            assert_eq!(v["ips"][2]["version"], "6");
            assert_eq!(v["ips"][0]["interface"], 2);
            let up = CniResult::convert(&v, "1.0.0").unwrap();
            assert!(up["ips"][0].get("version").is_none());
            assert_eq!(up["ips"][2]["address"], "fd00::5/64");
            assert_eq!(up["routes"].as_array().unwrap().len(), 3);
            assert_eq!(up["dns"]["domain"], "cluster.local");
        }
    }

    #[test]
    fn down_to_020_keeps_first_of_each_family_with_routes_split() {
        for ver in ["0.1.0", "0.2.0"] {
            let v = full().to_value(ver).unwrap();
            assert_eq!(v["ip4"]["ip"], "10.1.0.5/24");
            assert_eq!(v["ip4"]["gateway"], "10.1.0.1");
            assert_eq!(v["ip4"]["routes"].as_array().unwrap().len(), 2);
            assert_eq!(v["ip4"]["routes"][0]["dst"], "0.0.0.0/0");
            assert_eq!(v["ip6"]["ip"], "fd00::5/64");
            assert_eq!(v["ip6"]["routes"][0]["gw"], "fd00::1");
            assert!(v.get("interfaces").is_none() && v.get("ips").is_none());
            assert_eq!(v["dns"]["nameservers"][0], "10.1.0.10");
        }
    }

    #[test]
    fn up_from_020_makes_ips_and_routes() {
        let legacy = json!({
            "cniVersion": "0.2.0",
            "ip4": {"ip": "10.2.0.3/16", "gateway": "10.2.0.1", "routes": [{"dst": "0.0.0.0/0"}]},
            "ip6": {"ip": "fd01::3/64"},
            "dns": {"nameservers": ["1.1.1.1"]}
        });
        for ver in ["0.3.1", "0.4.0", "1.0.0", "1.1.0"] {
            let v = CniResult::convert(&legacy, ver).unwrap();
            assert_eq!(v["ips"].as_array().unwrap().len(), 2, "{ver}");
            assert_eq!(v["ips"][0]["gateway"], "10.2.0.1");
            assert_eq!(v["routes"][0]["dst"], "0.0.0.0/0");
        }
        // and back down again is unchanged
        assert_eq!(CniResult::convert(&legacy, "0.2.0").unwrap(), legacy);
        let no_dns = json!({"cniVersion": "0.2.0", "ip4": {"ip": "10.2.0.3/16"}});
        assert_eq!(
            CniResult::convert(&no_dns, "0.2.0").unwrap()["dns"],
            json!({})
        );
    }

    #[test]
    fn single_family_legacy_omits_the_other() {
        let r = CniResult {
            cni_version: "1.0.0".into(),
            ips: vec![IpConfig {
                address: "10.0.0.2/24".parse().unwrap(),
                gateway: None,
                interface: None,
            }],
            ..Default::default()
        };
        let v = r.to_value("0.1.0").unwrap();
        assert!(v.get("ip6").is_none());
        assert!(v["ip4"].get("gateway").is_none());
    }

    #[test]
    fn bad_results_are_decode_or_version_errors() {
        assert_eq!(CniResult::parse(b"{").unwrap_err().code.number(), 6);
        assert_eq!(CniResult::parse(b"[]").unwrap_err().code.number(), 6);
        assert_eq!(
            CniResult::parse(br#"{"cniVersion":"7.0.0"}"#)
                .unwrap_err()
                .code
                .number(),
            1
        );
        assert_eq!(
            CniResult::parse(br#"{"cniVersion":"1.0.0","ips":[{"address":"300.1.1.1/24"}]}"#)
                .unwrap_err()
                .code
                .number(),
            6
        );
        assert_eq!(
            CniResult::parse(
                br#"{"cniVersion":"0.4.0","ips":[{"version":"6","address":"10.0.0.1/24"}]}"#
            )
            .unwrap_err()
            .code
            .number(),
            6
        );
        assert!(full().to_value("0.5.0").is_err());
    }

    #[test]
    fn empty_result_is_the_version_and_an_empty_dns_like_libcni() {
        let r = CniResult::default();
        assert_eq!(
            r.to_value("1.0.0").unwrap(),
            json!({"cniVersion": "1.0.0", "dns": {}})
        );
    }
}
