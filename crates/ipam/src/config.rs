//! The `ipam` section (a superset of host-local's), plus the requested addresses that come
//! from `CNI_ARGS`, `args.cni.ips` and `runtimeConfig.ips`, and ranges from
//! `runtimeConfig.ipRanges`. Every bad value is a code 7 error naming it.

use crate::range::{Range, RangeSet};
use cni::args::CniArgs;
use cni::{Error, IpamConf, NetConf, Result, Route};
use serde_json::{Map, Value};
use std::net::IpAddr;
use std::path::PathBuf;

/// host-local's default state directory.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/cni/networks";
/// Where Linux publishes the ID of the running boot.
pub const DEFAULT_BOOT_ID_FILE: &str = "/proc/sys/kernel/random/boot_id";

/// Where the state lives and how it is kept: all that DEL and GC need, so they work even when
/// the ranges in the config have changed or are broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConf {
    /// The network name: the state directory under `data_dir` (validated: no path tricks).
    pub network: String,
    pub data_dir: PathBuf,
    /// Release allocations stamped with an earlier boot on the first ADD/STATUS of each boot.
    pub reclaim_after_reboot: bool,
    /// The boot ID source; a config key so tests can simulate a reboot.
    pub boot_id_file: PathBuf,
}

/// Everything an ADD, CHECK or STATUS needs.
#[derive(Debug, Clone, PartialEq)]
pub struct IpamConfig {
    pub store: StoreConf,
    /// In order: `runtimeConfig.ipRanges`, the flat `subnet`, then `ranges` (as host-local).
    /// The position is the `<set>` of `last_reserved_ip.<set>`.
    pub range_sets: Vec<RangeSet>,
    pub routes: Vec<Route>,
    pub resolv_conf: Option<PathBuf>,
    /// Specific addresses asked for, deduplicated, in the order given.
    pub requested: Vec<IpAddr>,
}

/// A minimal ipam section for a config that gives only a subnet (the bridge plugin's legacy
/// top-level `"subnet"`): `{"type": "podwire-ipam", "subnet": <subnet>}`.
pub fn subnet_conf(subnet: &str) -> IpamConf {
    let mut extra = Map::new();
    extra.insert("subnet".into(), subnet.into());
    IpamConf {
        kind: "podwire-ipam".into(),
        extra,
    }
}

fn bad(what: &str, msg: impl std::fmt::Display) -> Error {
    Error::invalid_config(format!("ipam {what}: {msg}"))
}

/// A string field; absent, null and "" all mean "not given".
fn opt_str<'a>(obj: &'a Map<String, Value>, key: &str, what: &str) -> Result<Option<&'a str>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(bad(
            &format!("{what}{key}"),
            format!("want a string, got {other}"),
        )),
    }
}

fn opt_ip(obj: &Map<String, Value>, key: &str, what: &str) -> Result<Option<IpAddr>> {
    opt_str(obj, key, what)?
        .map(|s| {
            s.parse::<IpAddr>().map_err(|_| {
                bad(
                    &format!("{what}{key}"),
                    format!("{s:?} is not an IP address{}", cni::addr::hint(s)),
                )
            })
        })
        .transpose()
}

fn opt_bool(obj: &Map<String, Value>, key: &str) -> Result<bool> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(bad(key, format!("want true or false, got {other}"))),
    }
}

/// One range object: `{"subnet", "rangeStart", "rangeEnd", "gateway"}`. `what` is its location
/// with a trailing separator, e.g. `ranges[0][1].`.
fn parse_range(obj: &Map<String, Value>, what: &str) -> Result<Range> {
    let subnet_str = opt_str(obj, "subnet", what)?
        .ok_or_else(|| bad(what.trim_end_matches('.'), "missing \"subnet\""))?;
    let subnet = cni::addr::parse_net(subnet_str).ok_or_else(|| {
        bad(
            &format!("{what}subnet"),
            format!(
                "{subnet_str:?} is not a subnet in CIDR form (like 10.22.0.0/16){}",
                cni::addr::hint(subnet_str)
            ),
        )
    })?;
    Range::new(
        what.trim_end_matches('.'),
        subnet,
        opt_ip(obj, "rangeStart", what)?,
        opt_ip(obj, "rangeEnd", what)?,
        opt_ip(obj, "gateway", what)?,
    )
}

/// A list of range sets (`ranges` or `runtimeConfig.ipRanges`): `[[{range}, ...], ...]`.
fn parse_sets(v: &Value, what: &str) -> Result<Vec<RangeSet>> {
    let sets = v
        .as_array()
        .ok_or_else(|| bad(what, format!("want a list of range sets, got {v}")))?;
    sets.iter()
        .enumerate()
        .map(|(i, set)| {
            let here = format!("{what}[{i}]");
            let ranges = set.as_array().ok_or_else(|| {
                bad(
                    &here,
                    format!("want a list of ranges (a range set), got {set}"),
                )
            })?;
            let ranges = ranges
                .iter()
                .enumerate()
                .map(|(j, r)| {
                    let at = format!("{here}[{j}]");
                    let obj = r
                        .as_object()
                        .ok_or_else(|| bad(&at, format!("want a range object, got {r}")))?;
                    parse_range(obj, &format!("{at}."))
                })
                .collect::<Result<Vec<_>>>()?;
            RangeSet::new(&here, ranges)
        })
        .collect()
}

/// The state location alone (what DEL and GC need).
pub fn store_conf(ipam: &IpamConf, conf: &NetConf) -> Result<StoreConf> {
    cni::validate::network_name(&conf.name)?;
    if conf.name.len() > 255 {
        return Err(Error::invalid_config(format!(
            "network name of {} bytes is too long: it names the state directory (255 at most)",
            conf.name.len()
        )));
    }
    let data_dir = opt_str(&ipam.extra, "dataDir", "")?.unwrap_or(DEFAULT_DATA_DIR);
    check_data_dir(data_dir)?;
    let boot_id_file = opt_str(&ipam.extra, "bootIdFile", "")?.unwrap_or(DEFAULT_BOOT_ID_FILE);
    Ok(StoreConf {
        network: conf.name.clone(),
        data_dir: PathBuf::from(data_dir),
        reclaim_after_reboot: opt_bool(&ipam.extra, "reclaimAfterReboot")?,
        boot_id_file: PathBuf::from(boot_id_file),
    })
}

/// `dataDir` must say where it is on its own: an absolute path, without `..` (which could
/// lead anywhere) and without NUL. A relative one would depend on the runtime's working directory.
fn check_data_dir(dir: &str) -> Result<()> {
    let path = std::path::Path::new(dir);
    let why = if !path.is_absolute() {
        "must be an absolute path"
    } else if path
        .components()
        .any(|c| c == std::path::Component::ParentDir)
    {
        "may not contain '..'"
    } else if dir.contains('\0') {
        "may not contain a NUL byte"
    } else {
        return Ok(());
    };
    Err(bad("dataDir", format!("{dir:?} {why}")))
}

/// An address as given in a request: a plain address, or one with a prefix (the `ips`
/// capability sends `10.1.2.3/24`): the prefix is ignored, the subnet comes from the range.
fn requested_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| cni::addr::parse_net(s).map(|n| n.addr()))
}

fn requested_list(v: &Value, what: &str) -> Result<Vec<IpAddr>> {
    let list = v
        .as_array()
        .ok_or_else(|| Error::invalid_config(format!("{what}: want a list of IPs, got {v}")))?;
    list.iter()
        .map(|item| {
            item.as_str().and_then(requested_ip).ok_or_else(|| {
                let hint = item.as_str().map(cni::addr::hint).unwrap_or("");
                Error::invalid_config(format!("{what}: {item} is not an IP address{hint}"))
            })
        })
        .collect()
}

/// The addresses asked for through `CNI_ARGS` `IP=` (comma-separated), `args.cni.ips` and
/// `runtimeConfig.ips`, in that order, without repeats.
fn requested(conf: &NetConf, args: &CniArgs) -> Result<Vec<IpAddr>> {
    let mut out: Vec<IpAddr> = Vec::new();
    if let Some(list) = args.get("IP") {
        for item in list.split(',').filter(|s| !s.trim().is_empty()) {
            out.push(requested_ip(item).ok_or_else(|| {
                Error::invalid_env(format!(
                    "CNI_ARGS IP: {item:?} is not an IP address{}",
                    cni::addr::hint(item)
                ))
            })?);
        }
    }
    if let Some(v) = conf.args_cni("ips") {
        out.extend(requested_list(v, "args.cni.ips")?);
    }
    if let Some(v) = conf.runtime("ips") {
        out.extend(requested_list(v, "runtimeConfig.ips")?);
    }
    let mut seen = Vec::with_capacity(out.len());
    out.retain(|ip| {
        let new = !seen.contains(ip);
        seen.push(*ip);
        new
    });
    Ok(out)
}

/// The whole ipam config for ADD, CHECK and STATUS.
pub fn load(ipam: &IpamConf, conf: &NetConf, args: &CniArgs) -> Result<IpamConfig> {
    let store = store_conf(ipam, conf)?;
    let mut sets = Vec::new();
    if let Some(v) = conf.runtime("ipRanges").filter(|v| !v.is_null()) {
        sets.extend(parse_sets(v, "runtimeConfig.ipRanges")?);
    }
    // The deprecated flat form: `subnet` (with rangeStart/rangeEnd/gateway) beside `type`.
    if opt_str(&ipam.extra, "subnet", "")?.is_some() {
        let range = parse_range(&ipam.extra, "")?;
        sets.push(RangeSet::new("subnet", vec![range])?);
    }
    if let Some(v) = ipam.extra.get("ranges").filter(|v| !v.is_null()) {
        sets.extend(parse_sets(v, "ranges")?);
    }
    if sets.is_empty() {
        return Err(Error::invalid_config(
            "ipam: no IP ranges specified (give \"ranges\", \"subnet\" or runtimeConfig \"ipRanges\")",
        ));
    }
    for (i, a) in sets.iter().enumerate() {
        for (j, b) in sets.iter().enumerate().skip(i + 1) {
            if a.overlaps(b) {
                return Err(Error::invalid_config(format!(
                    "ipam: range set {i} ({a}) overlaps with range set {j} ({b})"
                )));
            }
        }
    }
    let v6 = sets.iter().filter(|s| s.is_ipv6()).count();
    let v4 = sets.len() - v6;
    let legacy = cni::version::Version::parse(&conf.cni_version)
        .is_ok_and(|v| v < cni::version::Version(0, 3, 0));
    if legacy && (v4 > 1 || v6 > 1) {
        return Err(Error::invalid_config(format!(
            "ipam: cniVersion {} allows one address per family, but the config has {v4} IPv4 and {v6} IPv6 range sets",
            conf.cni_version
        )));
    }
    let routes = match ipam.extra.get("routes").filter(|v| !v.is_null()) {
        None => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .map(|(i, r)| {
                serde_json::from_value::<Route>(r.clone())
                    .map_err(|e| bad(&format!("routes[{i}]"), format!("{r}: {e}")))
            })
            .collect::<Result<_>>()?,
        Some(other) => return Err(bad("routes", format!("want a list, got {other}"))),
    };
    let resolv_conf = opt_str(&ipam.extra, "resolvConf", "")?.map(PathBuf::from);
    Ok(IpamConfig {
        store,
        range_sets: sets,
        routes,
        resolv_conf,
        requested: requested(conf, args)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn net(v: Value) -> NetConf {
        NetConf::parse(v.to_string().as_bytes()).unwrap()
    }

    fn load_v(v: Value, cni_args: &str) -> Result<IpamConfig> {
        let conf = net(v);
        let ipam = conf.ipam.clone().unwrap();
        load(&ipam, &conf, &CniArgs::parse(cni_args).unwrap())
    }

    fn base(ipam: Value) -> Value {
        json!({"cniVersion": "1.0.0", "name": "net1", "type": "podwire", "ipam": ipam})
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn flat_subnet_form_with_defaults() {
        let c = load_v(
            base(json!({"type": "podwire-ipam", "subnet": "10.22.0.0/16"})),
            "",
        )
        .unwrap();
        assert_eq!(c.store.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(c.store.network, "net1");
        assert!(!c.store.reclaim_after_reboot);
        assert_eq!(c.range_sets.len(), 1);
        let r = &c.range_sets[0].ranges[0];
        assert_eq!(r.gateway, ip("10.22.0.1"));
        assert_eq!(r.end, ip("10.22.255.254"));
        assert!(c.routes.is_empty() && c.resolv_conf.is_none() && c.requested.is_empty());
    }

    #[test]
    fn subnet_conf_builds_a_loadable_section() {
        let conf = net(json!({"cniVersion": "1.0.0", "name": "legacy", "type": "podwire"}));
        let ipam = subnet_conf("10.244.1.0/24");
        let c = load(&ipam, &conf, &CniArgs::default()).unwrap();
        assert_eq!(
            c.range_sets[0].ranges[0].subnet.to_string(),
            "10.244.1.0/24"
        );
        assert_eq!(ipam.kind, "podwire-ipam");
    }

    #[test]
    fn dual_stack_ranges_routes_and_options() {
        let c = load_v(
            base(json!({
                "type": "podwire-ipam",
                "ranges": [
                    [{"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.10", "rangeEnd": "10.1.0.20", "gateway": "10.1.0.254"},
                     {"subnet": "10.2.0.0/24"}],
                    [{"subnet": "fd00:1::/64"}]
                ],
                "routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.168.0.0/16", "gw": "10.1.0.1"}],
                "dataDir": "/run/x", "resolvConf": "/etc/r.conf", "reclaimAfterReboot": true
            })),
            "",
        )
        .unwrap();
        assert_eq!(c.range_sets.len(), 2);
        assert_eq!(c.range_sets[0].ranges.len(), 2);
        assert!(c.range_sets[1].is_ipv6());
        assert_eq!(c.range_sets[0].ranges[0].gateway, ip("10.1.0.254"));
        assert_eq!(c.routes.len(), 2);
        assert_eq!(c.routes[1].gw, Some(ip("10.1.0.1")));
        assert_eq!(c.store.data_dir, PathBuf::from("/run/x"));
        assert_eq!(c.resolv_conf, Some(PathBuf::from("/etc/r.conf")));
        assert!(c.store.reclaim_after_reboot);
    }

    #[test]
    fn order_is_runtime_ranges_then_flat_then_ranges() {
        let mut v = base(
            json!({"type": "t", "subnet": "10.1.0.0/24", "ranges": [[{"subnet": "10.2.0.0/24"}]]}),
        );
        v["runtimeConfig"] = json!({"ipRanges": [[{"subnet": "10.3.0.0/24"}]]});
        let c = load_v(v, "").unwrap();
        let subnets: Vec<String> = c
            .range_sets
            .iter()
            .map(|s| s.ranges[0].subnet.to_string())
            .collect();
        assert_eq!(subnets, ["10.3.0.0/24", "10.1.0.0/24", "10.2.0.0/24"]);
    }

    #[test]
    fn requested_ips_from_all_three_sources() {
        let mut v = base(
            json!({"type": "t", "ranges": [[{"subnet": "10.1.0.0/24"}], [{"subnet": "fd00::/64"}]]}),
        );
        v["args"] = json!({"cni": {"ips": ["10.1.0.7", "10.1.0.5"]}});
        v["runtimeConfig"] = json!({"ips": ["fd00::9/64"]});
        let c = load_v(v, "IgnoreUnknown=1;IP=10.1.0.5, 10.1.0.6;K8S_POD_NAME=x").unwrap();
        assert_eq!(
            c.requested,
            [
                ip("10.1.0.5"),
                ip("10.1.0.6"),
                ip("10.1.0.7"),
                ip("fd00::9")
            ]
        );
    }

    fn code_and_msg(v: Value, args: &str) -> (u32, String) {
        let e = load_v(v, args).unwrap_err();
        (e.code.number(), e.msg)
    }

    #[test]
    fn errors_name_the_offending_value() {
        let cases: Vec<(Value, &str, u32, &str)> = vec![
            (base(json!({"type": "t"})), "", 7, "no IP ranges"),
            (
                base(json!({"type": "t", "subnet": "10.0.0.0/33"})),
                "",
                7,
                "10.0.0.0/33",
            ),
            (
                base(json!({"type": "t", "subnet": "banana"})),
                "",
                7,
                "banana",
            ),
            (base(json!({"type": "t", "subnet": 5})), "", 7, "subnet"),
            (
                base(json!({"type": "t", "subnet": "10.0.0.0/31"})),
                "",
                7,
                "too small",
            ),
            (
                base(
                    json!({"type": "t", "ranges": [[{"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.x"}]]}),
                ),
                "",
                7,
                "ranges[0][0].rangeStart",
            ),
            (
                base(json!({"type": "t", "ranges": [[{"rangeStart": "10.0.0.1"}]]})),
                "",
                7,
                "missing \"subnet\"",
            ),
            (
                base(json!({"type": "t", "ranges": [[]]})),
                "",
                7,
                "ranges[0]",
            ),
            (
                base(json!({"type": "t", "ranges": {"subnet": "10.0.0.0/24"}})),
                "",
                7,
                "list of range sets",
            ),
            (
                base(
                    json!({"type": "t", "ranges": [[{"subnet": "10.0.0.0/24"}], [{"subnet": "10.0.0.128/25"}]]}),
                ),
                "",
                7,
                "range set 0",
            ),
            (
                base(json!({"type": "t", "subnet": "10.0.0.0/24", "routes": [{"dst": "nope"}]})),
                "",
                7,
                "routes[0]",
            ),
            (
                base(json!({"type": "t", "subnet": "10.0.0.0/24", "reclaimAfterReboot": "yes"})),
                "",
                7,
                "reclaimAfterReboot",
            ),
            (
                base(json!({"type": "t", "subnet": "10.0.0.0/24"})),
                "IP=10.0.0.300",
                4,
                "10.0.0.300",
            ),
        ];
        for (v, args, code, needle) in cases {
            let (c, msg) = code_and_msg(v.clone(), args);
            assert_eq!(c, code, "{v}: {msg}");
            assert!(msg.contains(needle), "{msg:?} should contain {needle:?}");
        }
        let mut v = base(json!({"type": "t", "subnet": "10.0.0.0/24"}));
        v["args"] = json!({"cni": {"ips": ["10.0.0.5", 7]}});
        assert!(code_and_msg(v, "").1.contains("args.cni.ips"));
    }

    /// `010.1.2.0` is octal to other tools and refused by Go's parser: refused everywhere an
    /// address is read, 7 in the config, 4 in CNI_ARGS.
    #[test]
    fn leading_zeros_are_refused_wherever_an_address_is_read() {
        let ok = json!({"subnet": "10.1.2.0/24"});
        let range = |r: Value| base(json!({"type": "t", "ranges": [[r]]}));
        let mut cases: Vec<(Value, &str, u32, &str)> = vec![
            (
                base(json!({"type": "t", "subnet": "010.1.2.0/24"})),
                "",
                7,
                "subnet",
            ),
            (
                range(json!({"subnet": "10.1.02.0/24"})),
                "",
                7,
                "ranges[0][0].subnet",
            ),
            (
                range(json!({"subnet": "10.1.2.0/24", "rangeStart": "10.1.2.010"})),
                "",
                7,
                "rangeStart",
            ),
            (
                range(json!({"subnet": "10.1.2.0/24", "gateway": "10.1.2.01"})),
                "",
                7,
                "gateway",
            ),
            (
                base(
                    json!({"type": "t", "subnet": "10.1.2.0/24", "routes": [{"dst": "010.0.0.0/8"}]}),
                ),
                "",
                7,
                "routes[0]",
            ),
            (
                base(
                    json!({"type": "t", "subnet": "10.1.2.0/24", "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.2.01"}]}),
                ),
                "",
                7,
                "routes[0]",
            ),
            (
                base(json!({"type": "t", "subnet": "10.1.2.0/24"})),
                "IP=10.1.2.010",
                4,
                "CNI_ARGS IP",
            ),
            (
                base(json!({"type": "t", "subnet": "10.1.2.0/24"})),
                "IP=10.1.2.010/24",
                4,
                "CNI_ARGS IP",
            ),
        ];
        let mut caps = base(json!({"type": "t", "subnet": "10.1.2.0/24"}));
        caps["runtimeConfig"] = json!({"ips": ["10.1.2.07/24"]});
        cases.push((caps, "", 7, "runtimeConfig.ips"));
        let mut ranges = base(json!({"type": "t"}));
        ranges["runtimeConfig"] = json!({"ipRanges": [[{"subnet": "10.01.0.0/16"}]]});
        cases.push((ranges, "", 7, "runtimeConfig.ipRanges"));
        let mut cni_args = base(json!({"type": "t", "subnet": "10.1.2.0/24"}));
        cni_args["args"] = json!({"cni": {"ips": ["010.1.2.7"]}});
        cases.push((cni_args, "", 7, "args.cni.ips"));
        for (v, args, code, needle) in cases {
            let (c, msg) = code_and_msg(v.clone(), args);
            assert_eq!(c, code, "{v} {args}: {msg}");
            assert!(msg.contains(needle), "{msg:?} should contain {needle:?}");
        }
        assert!(load_v(base(json!({"type": "t", "ranges": [[ok]]})), "IP=10.1.2.10").is_ok());
    }

    #[test]
    fn legacy_versions_allow_one_address_per_family() {
        let mut v = base(
            json!({"type": "t", "ranges": [[{"subnet": "10.1.0.0/24"}], [{"subnet": "10.2.0.0/24"}]]}),
        );
        assert!(load_v(v.clone(), "").is_ok());
        v["cniVersion"] = json!("0.2.0");
        let (code, msg) = code_and_msg(v, "");
        assert_eq!(code, 7);
        assert!(msg.contains("0.2.0"), "{msg}");
    }

    #[test]
    fn data_dir_must_be_absolute_without_dotdot() {
        for bad in ["rel/state", "./x", "/var/lib/../../etc", "/tmp/a\u{0}b"] {
            let conf = net(base(json!({"type": "t", "dataDir": bad})));
            let e = store_conf(conf.ipam.as_ref().unwrap(), &conf).unwrap_err();
            assert_eq!(e.code.number(), 7, "{bad:?}");
            assert!(e.msg.contains("dataDir"), "{e}");
        }
        let long = net(json!({"cniVersion": "1.0.0", "name": "n".repeat(256),
            "type": "podwire", "ipam": {"type": "t"}}));
        assert_eq!(
            store_conf(long.ipam.as_ref().unwrap(), &long)
                .unwrap_err()
                .code
                .number(),
            7
        );
    }

    #[test]
    fn store_conf_needs_no_ranges() {
        let conf = net(base(json!({"type": "t", "dataDir": "/tmp/d"})));
        let s = store_conf(conf.ipam.as_ref().unwrap(), &conf).unwrap();
        assert_eq!(s.data_dir, PathBuf::from("/tmp/d"));
        assert_eq!(s.boot_id_file, PathBuf::from(DEFAULT_BOOT_ID_FILE));
    }
}
