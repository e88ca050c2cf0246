//! Fuzzing with proptest (the toolchain is stable: cargo-fuzz needs nightly). Every property
//! feeds generated input to a parser the plugins run on runtime-supplied data and demands no
//! panic, errors with a spec code, and round trips that hold:
//!
//! - config parsing: raw bytes and JSON shaped like a config → `NetConf::parse`, then the bridge's
//!   `Config::from_netconf` and the IPAM's `config::load`
//! - result conversion: JSON shaped like a result → `CniResult::from_value`, then to every version
//! - `CNI_ARGS`: any string → `CniArgs::parse`; parse(join(pairs)) == pairs
//! - the whole entry point: any environment and stdin → `skel::dispatch`, never code 199 (a panic)
//!
//! CI runs `PODWIRE_FUZZ_CASES` cases per property (default 256); the longer run is
//! `PODWIRE_FUZZ_CASES=200000 cargo test --release -p podwire-reliability-tests --test fuzz`
//! (or `PODWIRE_LONG=1`: 50,000). Every failure found becomes a plain test under `regressions`.

use cni::args::CniArgs;
use cni::{CmdArgs, CniResult, NetConf, Plugin};
use podwire_reliability_tests::count;
use podwire_reliability_tests::report::Report;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Map, Value};

/// The spec's codes and podwire's plugin codes: anything else is a bug.
fn known_code(n: u32) -> bool {
    matches!(n, 1..=7 | 11 | 50 | 51 | 100..=104)
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: count("PODWIRE_FUZZ_CASES", 256, 50_000) as u32,
        failure_persistence: None,
        ..Config::default()
    })
}

/// JSON scalars biased to what configs and results hold.
fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop_oneof![
            Just("1.1.0"),
            Just("1.0.0"),
            Just("0.4.0"),
            Just("0.3.1"),
            Just("0.2.0"),
            Just("0.1.0"),
            Just("podwire"),
            Just("podwire-ipam"),
            Just("host-local"),
            Just("10.0.0.0/24"),
            Just("10.0.0.1"),
            Just("fd00::/64"),
            Just("fd00::1"),
            Just("0.0.0.0/0"),
            Just("::/0"),
            Just("10.0.0.5/24"),
            Just("eth0"),
            Just("cni0"),
            Just("/tmp/x"),
            Just("../x"),
            Just(""),
            Just("4"),
            Just("6"),
            Just("aa:bb:cc:dd:ee:ff"),
        ]
        .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop_oneof![
            Just("cniVersion"),
            Just("name"),
            Just("type"),
            Just("ipam"),
            Just("subnet"),
            Just("ranges"),
            Just("rangeStart"),
            Just("rangeEnd"),
            Just("gateway"),
            Just("routes"),
            Just("dst"),
            Just("gw"),
            Just("bridge"),
            Just("mtu"),
            Just("vlan"),
            Just("isGateway"),
            Just("ipMasq"),
            Just("dataDir"),
            Just("runtimeConfig"),
            Just("args"),
            Just("cni"),
            Just("ips"),
            Just("mac"),
            Just("dns"),
            Just("nameservers"),
            Just("interfaces"),
            Just("address"),
            Just("interface"),
            Just("version"),
            Just("ip4"),
            Just("ip6"),
            Just("ip"),
            Just("sandbox"),
            Just("prevResult"),
            Just("network"),
            Just("ipRanges"),
        ]
        .prop_map(str::to_string),
        "[a-zA-Z]{1,8}",
    ]
}

/// A config-shaped object: the required keys usually present, the rest random.
fn config_like() -> impl Strategy<Value = Value> {
    (
        prop::option::weighted(0.9, scalar()),
        prop::option::weighted(0.9, prop_oneof![Just(json!("net1")), scalar()]),
        prop::option::weighted(0.9, prop_oneof![Just(json!("podwire")), scalar()]),
        prop::option::weighted(0.7, json_value()),
        prop::collection::vec((key(), json_value()), 0..6),
    )
        .prop_map(|(v, name, kind, ipam, rest)| {
            let mut m: Map<String, Value> = rest.into_iter().collect();
            let mut put = |k: &str, x: Option<Value>| {
                if let Some(x) = x {
                    m.insert(k.into(), x);
                }
            };
            put("cniVersion", v);
            put("name", name);
            put("type", kind);
            put("ipam", ipam);
            Value::Object(m)
        })
}

fn result_like() -> impl Strategy<Value = Value> {
    let ip = prop_oneof![
        json_value(),
        (scalar(), scalar(), scalar(), scalar()).prop_map(|(a, g, v, i)| {
            json!({"address": a, "gateway": g, "version": v, "interface": i})
        }),
    ];
    (
        scalar(),
        prop::collection::vec(ip, 0..4),
        prop::collection::vec(json_value(), 0..3),
        prop::collection::vec(json_value(), 0..3),
        json_value(),
        prop::option::of((json_value(), json_value())),
    )
        .prop_map(|(v, ips, ifs, routes, dns, legacy)| {
            let mut r = json!({"cniVersion": v, "ips": ips, "interfaces": ifs, "routes": routes, "dns": dns});
            if let Some((a, b)) = legacy {
                r["ip4"] = a;
                r["ip6"] = b;
            }
            r
        })
}

fn check_config(bytes: &[u8]) -> Result<(), TestCaseError> {
    let conf = match NetConf::parse(bytes) {
        Ok(c) => c,
        Err(e) => {
            prop_assert!(known_code(e.code.number()), "{e}");
            return Ok(());
        }
    };
    match bridge::config::Config::from_netconf(&conf) {
        Ok(c) => {
            if c.in_process_ipam() {
                if let Err(e) = ipam::config::load(&c.ipam, &conf, &CniArgs::default()) {
                    prop_assert!(known_code(e.code.number()), "{e}");
                }
            }
        }
        Err(e) => prop_assert!(known_code(e.code.number()), "{e}"),
    }
    if let Some(section) = &conf.ipam {
        if let Err(e) = ipam::config::load(section, &conf, &CniArgs::default()) {
            prop_assert!(known_code(e.code.number()), "{e}");
        }
    }
    Ok(())
}

fn check_result(v: &Value) -> Result<(), TestCaseError> {
    let r = match CniResult::from_value(v) {
        Ok(r) => r,
        Err(e) => {
            prop_assert!(known_code(e.code.number()), "{e}");
            return Ok(());
        }
    };
    for version in cni::version::SUPPORTED {
        match r.to_value(version) {
            Ok(out) => {
                // What we print must read back as a result of that version.
                let back = CniResult::from_value(&out);
                prop_assert!(
                    back.is_ok(),
                    "{version}: {out} does not parse back: {:?}",
                    back.err()
                );
                if version >= "0.3.0" {
                    let back = back.unwrap();
                    prop_assert_eq!(&back.ips, &r.ips, "{}: ips changed", version);
                    prop_assert_eq!(&back.routes, &r.routes, "{}: routes changed", version);
                }
            }
            Err(e) => prop_assert!(known_code(e.code.number()), "{e}"),
        }
        if let Err(e) = CniResult::convert(v, version) {
            prop_assert!(known_code(e.code.number()), "{e}");
        }
    }
    Ok(())
}

fn check_args(s: &str) -> Result<(), TestCaseError> {
    match CniArgs::parse(s) {
        Ok(a) => {
            let joined: Vec<String> = a.pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let again = CniArgs::parse(&joined.join(";")).unwrap();
            prop_assert_eq!(&again, &a);
            let _ = a.check_known(&["IP", "MAC"]);
            let _ = a.ignore_unknown();
        }
        Err(e) => prop_assert_eq!(e.code.number(), 4),
    }
    Ok(())
}

/// A plugin that never touches anything: only the entry point's own parsing is under test.
struct Inert;
impl Plugin for Inert {
    fn add(&self, _: &CmdArgs) -> cni::Result<CniResult> {
        Ok(CniResult::default())
    }
    fn del(&self, _: &CmdArgs) -> cni::Result<()> {
        Ok(())
    }
    fn check(&self, _: &CmdArgs) -> cni::Result<()> {
        Ok(())
    }
}

/// One property run to completion: `Err` holds the minimal failing input.
type Property = Box<dyn Fn(&mut TestRunner) -> Result<(), String>>;

#[test]
fn fuzz_all() {
    let mut report = Report::new("fuzz");
    let props: [(&str, Property); 6] = [
        (
            "config: raw bytes",
            Box::new(|r: &mut TestRunner| {
                r.run(&prop::collection::vec(any::<u8>(), 0..256), |b| {
                    check_config(&b)
                })
                .map_err(|e| e.to_string())
            }),
        ),
        (
            "config: config-shaped JSON",
            Box::new(|r: &mut TestRunner| {
                r.run(&config_like(), |v| check_config(v.to_string().as_bytes()))
                    .map_err(|e| e.to_string())
            }),
        ),
        (
            "result: result-shaped JSON, to every version",
            Box::new(|r: &mut TestRunner| {
                r.run(&result_like(), |v| check_result(&v))
                    .map_err(|e| e.to_string())
            }),
        ),
        (
            "result: raw bytes",
            Box::new(|r: &mut TestRunner| {
                r.run(&prop::collection::vec(any::<u8>(), 0..128), |b| {
                    if let Err(e) = CniResult::parse(&b) {
                        prop_assert!(known_code(e.code.number()));
                    }
                    Ok(())
                })
                .map_err(|e| e.to_string())
            }),
        ),
        (
            "CNI_ARGS",
            Box::new(|r: &mut TestRunner| {
                r.run(&"([A-Za-z_=;]{0,6}(=[^;]{0,8})?;?){0,6}|.{0,40}", |s| {
                    check_args(&s)
                })
                .map_err(|e| e.to_string())
            }),
        ),
        (
            "entry point: env + stdin",
            Box::new(|r: &mut TestRunner| {
                let env = (
                    prop_oneof![
                        Just("ADD"),
                        Just("DEL"),
                        Just("CHECK"),
                        Just("GC"),
                        Just("STATUS"),
                        Just("VERSION"),
                        Just("FROB")
                    ],
                    ".{0,10}",
                    prop_oneof![
                        Just("".to_string()),
                        Just("/proc/self/ns/net".to_string()),
                        Just("/nonexistent".to_string()),
                        ".{0,10}"
                    ],
                    ".{0,17}",
                    ".{0,30}",
                    config_like(),
                );
                r.run(&env, |(cmd, cid, netns, ifname, args, conf)| {
                    let vars = [
                        ("CNI_COMMAND", cmd.to_string()),
                        ("CNI_CONTAINERID", cid),
                        ("CNI_NETNS", netns),
                        ("CNI_IFNAME", ifname),
                        ("CNI_ARGS", args),
                    ];
                    let get = |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
                    let out = cni::skel::dispatch(&get, conf.to_string().as_bytes(), &Inert);
                    let text = String::from_utf8(out.stdout).unwrap();
                    if out.exit_code != 0 {
                        let v: Value = serde_json::from_str(&text).unwrap();
                        let code = v["code"].as_u64().unwrap() as u32;
                        prop_assert!(known_code(code), "code {} (199 = panic): {}", code, text);
                    }
                    Ok(())
                })
                .map_err(|e| e.to_string())
            }),
        ),
    ];
    let mut failures = Vec::new();
    for (name, f) in &props {
        let mut r = runner();
        let cases = r.config().cases;
        match f(&mut r) {
            Ok(()) => report.line(format!("{name}: {cases} cases, 0 failures")),
            Err(e) => {
                report.line(format!("{name}: FAILED: {e}"));
                failures.push(format!("{name}: {e}"));
            }
        }
    }
    report.finish();
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Inputs the fuzzer once broke, kept as plain tests.
mod regressions {}
