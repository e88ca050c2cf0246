//! Hostile input: a corpus of bad configs, environments and paths, each given to the release
//! `podwire` (and `podwire-ipam`, `podwire-portmap`, `loopback`) inside a pristine throwaway node. Each must end in exactly one
//! CNI error JSON on stdout with the expected code and a non-zero exit, no panic, and nothing
//! changed: not the node's links, addresses or nft rules, not the pod's links, not one file
//! under the state directory. Prints the table of input → code.

use podwire_reliability_tests::node::{Node, Pod};
use podwire_reliability_tests::plugin::{self, Call};
use podwire_reliability_tests::report::Report;
use podwire_reliability_tests::{binaries, is_root, state};
use serde_json::{json, Value};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

const NET: &str = "hostile";
const BRIDGE: &str = "pwhost0";

#[derive(Clone, Copy, PartialEq)]
enum Bin {
    Podwire,
    Ipam,
    Portmap,
    Loopback,
}

type Setup = Box<dyn Fn(&Ctx)>;

struct Case {
    what: String,
    bin: Bin,
    /// (variable, value or None to unset), applied over a valid ADD environment.
    env: Vec<(&'static str, Option<String>)>,
    stdin: Vec<u8>,
    code: u32,
    /// Prepares the state dir (symlinks...) before the fingerprint is taken.
    setup: Option<Setup>,
}

struct Ctx {
    node: Node,
    pod: Pod,
    /// The suite's directory (the same for every case, emptied before each).
    root: PathBuf,
    /// A directory outside the state dir that a symlink may point at: must stay empty.
    elsewhere: PathBuf,
}

impl Ctx {
    fn data(&self) -> PathBuf {
        self.root.join("ipam")
    }

    fn base(&self) -> Value {
        json!({"cniVersion": "1.1.0", "name": NET, "type": "podwire", "bridge": BRIDGE,
               "isGateway": true, "ipMasq": true,
               "ipam": {"type": "podwire-ipam", "subnet": "10.79.0.0/24", "dataDir": self.data()}})
    }

    /// podwire-portmap chained after podwire for the pod, one TCP mapping.
    fn portmap_base(&self) -> Value {
        json!({"cniVersion": "1.1.0", "name": NET, "type": "podwire-portmap",
               "runtimeConfig": {"portMappings":
                   [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]},
               "prevResult": {"cniVersion": "1.1.0",
                   "interfaces": [{"name": BRIDGE}, {"name": "eth0", "sandbox": self.pod.path}],
                   "ips": [{"address": "10.79.0.2/24", "interface": 1}]}})
    }

    fn ipam_base(&self) -> Value {
        json!({"cniVersion": "1.1.0", "name": NET, "type": "podwire-bridge-stub",
               "ipam": {"type": "podwire-ipam", "subnet": "10.79.0.0/24", "dataDir": self.data()}})
    }
}

fn case(what: &str, code: u32, stdin: impl Into<Vec<u8>>) -> Case {
    Case {
        what: what.into(),
        bin: Bin::Podwire,
        env: Vec::new(),
        stdin: stdin.into(),
        code,
        setup: None,
    }
}

impl Case {
    fn env(mut self, k: &'static str, v: Option<&str>) -> Case {
        self.env.push((k, v.map(str::to_string)));
        self
    }
    fn ipam(mut self) -> Case {
        self.bin = Bin::Ipam;
        self
    }
    fn on(mut self, bin: Bin) -> Case {
        self.bin = bin;
        self
    }
    fn setup(mut self, f: impl Fn(&Ctx) + 'static) -> Case {
        self.setup = Some(Box::new(f));
        self
    }
}

/// The base config with one change made by `f`.
fn edit(c: &Ctx, f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v = c.base();
    f(&mut v);
    v.to_string().into_bytes()
}

fn ipam_edit(c: &Ctx, f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v = c.ipam_base();
    f(&mut v);
    v.to_string().into_bytes()
}

fn corpus(c: &Ctx) -> Vec<Case> {
    let base = c.base().to_string();
    let e = |f: &dyn Fn(&mut Value)| edit(c, f);
    let ipam = |f: &dyn Fn(&mut Value)| edit(c, |v| f(&mut v["ipam"]));
    let nested = "[".repeat(100_000);
    let data = c.data();
    let mut v = vec![
        // --- config JSON: syntax
        case("config: empty stdin", 6, ""),
        case("config: whitespace only", 6, " \n\t "),
        case("config: truncated JSON", 6, &base[..base.len() / 2]),
        case("config: a JSON array", 6, "[]"),
        case("config: JSON null", 6, "null"),
        case("config: a JSON string", 6, "\"podwire\""),
        case("config: trailing garbage", 6, format!("{base}}}x")),
        case(
            "config: invalid UTF-8",
            6,
            b"{\"cniVersion\":\"1.1.0\",\"name\":\"\xff\xfe\"}".to_vec(),
        ),
        case(
            "config: 100,000 nested arrays",
            6,
            format!("{{\"cniVersion\":\"1.1.0\",\"x\":{nested}"),
        ),
        case("config: NUL bytes", 6, b"\0\0\0\0".to_vec()),
        // --- cniVersion
        case(
            "cniVersion: a number",
            6,
            e(&|v| v["cniVersion"] = json!(1.1)),
        ),
        case(
            "cniVersion: missing",
            1,
            e(&|v| {
                v.as_object_mut().unwrap().remove("cniVersion");
            }),
        ),
        case("cniVersion: empty", 1, e(&|v| v["cniVersion"] = json!(""))),
        case(
            "cniVersion: unknown 0.5.0",
            1,
            e(&|v| v["cniVersion"] = json!("0.5.0")),
        ),
        case(
            "cniVersion: future 2.0.0",
            1,
            e(&|v| v["cniVersion"] = json!("2.0.0")),
        ),
        case(
            "cniVersion: 1.1.0-rc1",
            1,
            e(&|v| v["cniVersion"] = json!("1.1.0-rc1")),
        ),
        case(
            "cniVersion: 99999999999.0.0",
            1,
            e(&|v| v["cniVersion"] = json!("99999999999.0.0")),
        ),
        // --- names and types
        case(
            "type: missing",
            7,
            e(&|v| {
                v.as_object_mut().unwrap().remove("type");
            }),
        ),
        case(
            "name: missing",
            7,
            e(&|v| {
                v.as_object_mut().unwrap().remove("name");
            }),
        ),
        case(
            "name: ../../etc (escape dataDir)",
            7,
            e(&|v| v["name"] = json!("../../etc")),
        ),
        case("name: a/b", 7, e(&|v| v["name"] = json!("a/b"))),
        case("name: ..", 7, e(&|v| v["name"] = json!(".."))),
        case("name: NUL inside", 7, e(&|v| v["name"] = json!("a\u{0}b"))),
        case(
            "name: 300 characters",
            7,
            e(&|v| v["name"] = json!("n".repeat(300))),
        ),
        case("name: a number", 6, e(&|v| v["name"] = json!(5))),
        // --- the bridge's own keys: wrong types, huge numbers, bad values
        case("mtu: 1e30", 7, e(&|v| v["mtu"] = json!(1e30))),
        case(
            "mtu: 2^64+",
            7,
            e(&|v| v["mtu"] = serde_json::from_str("99999999999999999999999").unwrap()),
        ),
        case("mtu: -1", 7, e(&|v| v["mtu"] = json!(-1))),
        case("mtu: 10", 7, e(&|v| v["mtu"] = json!(10))),
        case("vlan: 70000", 7, e(&|v| v["vlan"] = json!(70000))),
        case("vlan: 0", 7, e(&|v| v["vlan"] = json!(0))),
        case(
            "isGateway: \"yes\"",
            7,
            e(&|v| v["isGateway"] = json!("yes")),
        ),
        case("bridge: a number", 7, e(&|v| v["bridge"] = json!(5))),
        case(
            "bridge: 24 characters",
            7,
            e(&|v| v["bridge"] = json!("way-too-long-bridge-name")),
        ),
        case("bridge: ../x", 7, e(&|v| v["bridge"] = json!("../x"))),
        case("ipam: a list", 6, e(&|v| v["ipam"] = json!([]))),
        case("ipam: a string", 6, e(&|v| v["ipam"] = json!("host-local"))),
        case(
            "ipam: no type",
            7,
            ipam(&|v| {
                v.as_object_mut().unwrap().remove("type");
            }),
        ),
        case(
            "ipam: type ../../bin/sh",
            7,
            ipam(&|v| v["type"] = json!("../../bin/sh")),
        ),
        case(
            "ipam: type not in CNI_PATH",
            4,
            ipam(&|v| v["type"] = json!("no-such-ipam")),
        ),
        case(
            "no ipam and no subnet",
            7,
            e(&|v| {
                v.as_object_mut().unwrap().remove("ipam");
            }),
        ),
        case(
            "legacy subnet: not a CIDR",
            7,
            e(&|v| {
                v.as_object_mut().unwrap().remove("ipam");
                v["subnet"] = json!("x");
            }),
        ),
        case(
            "legacy subnet outside network",
            7,
            e(&|v| {
                v.as_object_mut().unwrap().remove("ipam");
                v["subnet"] = json!("10.1.0.0/24");
                v["network"] = json!("10.2.0.0/16");
            }),
        ),
        case("dns: a number", 6, e(&|v| v["dns"] = json!(5))),
        case(
            "runtimeConfig: a string",
            6,
            e(&|v| v["runtimeConfig"] = json!("x")),
        ),
        case("args: a number", 6, e(&|v| v["args"] = json!(5))),
        case(
            "runtimeConfig.mac: not a MAC",
            7,
            e(&|v| v["runtimeConfig"] = json!({"mac": "zz:zz"})),
        ),
        case(
            "runtimeConfig.mac: multicast",
            7,
            e(&|v| v["runtimeConfig"] = json!({"mac": "01:00:5e:00:00:01"})),
        ),
        // --- IPAM ranges: invalid CIDRs, overlaps, too small
        case(
            "subnet: /33",
            7,
            ipam(&|v| v["subnet"] = json!("10.0.0.0/33")),
        ),
        case(
            "subnet: host bits set",
            7,
            ipam(&|v| v["subnet"] = json!("10.0.0.1/24")),
        ),
        case(
            "subnet: not a CIDR",
            7,
            ipam(&|v| v["subnet"] = json!("not-a-cidr")),
        ),
        case(
            "subnet: 300.1.1.0/24",
            7,
            ipam(&|v| v["subnet"] = json!("300.1.1.0/24")),
        ),
        case("subnet: a number", 7, ipam(&|v| v["subnet"] = json!(42))),
        // Octal to other tools, refused by Go's parser: never read as decimal.
        case(
            "subnet: leading zero 010.1.2.0/24",
            7,
            ipam(&|v| v["subnet"] = json!("010.1.2.0/24")),
        ),
        case(
            "routes: dst with a leading zero",
            7,
            ipam(&|v| v["routes"] = json!([{"dst": "10.09.0.0/16"}])),
        ),
        case(
            "subnet: /31 too small",
            7,
            ipam(&|v| v["subnet"] = json!("10.0.0.0/31")),
        ),
        case(
            "subnet: /32 too small",
            7,
            ipam(&|v| v["subnet"] = json!("10.0.0.0/32")),
        ),
        case(
            "subnet: IPv6 /127 too small",
            7,
            ipam(&|v| v["subnet"] = json!("fd00::/127")),
        ),
        case(
            "subnet: IPv6 /128 too small",
            7,
            ipam(&|v| v["subnet"] = json!("fd00::/128")),
        ),
        case(
            "ranges: overlapping in a set",
            7,
            ipam(&|v| {
                v.as_object_mut().unwrap().remove("subnet");
                v["ranges"] = json!([[{"subnet": "10.5.0.0/24"}, {"subnet": "10.5.0.0/25"}]]);
            }),
        ),
        case(
            "ranges: overlapping sets",
            7,
            ipam(&|v| {
                v.as_object_mut().unwrap().remove("subnet");
                v["ranges"] = json!([[{"subnet": "10.5.0.0/24"}], [{"subnet": "10.5.0.0/24"}]]);
            }),
        ),
        case(
            "ranges: a string",
            7,
            ipam(&|v| {
                v.as_object_mut().unwrap().remove("subnet");
                v["ranges"] = json!("x");
            }),
        ),
        case(
            "rangeStart outside subnet",
            7,
            ipam(&|v| v["rangeStart"] = json!("10.80.0.5")),
        ),
        case(
            "rangeStart after rangeEnd",
            7,
            ipam(&|v| {
                v["rangeStart"] = json!("10.79.0.50");
                v["rangeEnd"] = json!("10.79.0.10");
            }),
        ),
        case(
            "gateway outside subnet",
            7,
            ipam(&|v| v["gateway"] = json!("10.80.0.1")),
        ),
        case(
            "args.cni.ips: outside every range",
            7,
            e(&|v| v["args"] = json!({"cni": {"ips": ["10.200.0.5"]}})),
        ),
        case(
            "runtimeConfig.ips: not an IP",
            7,
            e(&|v| v["runtimeConfig"] = json!({"ips": ["x"]})),
        ),
        // --- paths: dataDir that escapes or is not a path
        case(
            "dataDir: relative",
            7,
            ipam(&|v| v["dataDir"] = json!("relative/state")),
        ),
        case(
            "dataDir: .. components",
            7,
            ipam(&|v| v["dataDir"] = json!(format!("{}/../../escape", data.display()))),
        ),
        case(
            "dataDir: NUL inside",
            7,
            ipam(&|v| v["dataDir"] = json!("/tmp/a\u{0}b")),
        ),
        case("dataDir: a number", 7, ipam(&|v| v["dataDir"] = json!(5))),
        // --- environment
        case("CNI_COMMAND: missing", 4, base.clone()).env("CNI_COMMAND", None),
        case("CNI_COMMAND: lower case add", 4, base.clone()).env("CNI_COMMAND", Some("add")),
        case("CNI_COMMAND: FROB", 4, base.clone()).env("CNI_COMMAND", Some("FROB")),
        case("CNI_CONTAINERID: missing", 4, base.clone()).env("CNI_CONTAINERID", None),
        case("CNI_CONTAINERID: ../../etc", 4, base.clone())
            .env("CNI_CONTAINERID", Some("../../etc")),
        case("CNI_CONTAINERID: a/b", 4, base.clone()).env("CNI_CONTAINERID", Some("a/b")),
        case("CNI_CONTAINERID: -rf", 4, base.clone()).env("CNI_CONTAINERID", Some("-rf")),
        case("CNI_CONTAINERID: newline", 4, base.clone()).env("CNI_CONTAINERID", Some("abc\ndef")),
        case("CNI_CONTAINERID: 300 characters", 4, base.clone())
            .env("CNI_CONTAINERID", Some(&"c".repeat(300))),
        case("CNI_IFNAME: missing", 4, base.clone()).env("CNI_IFNAME", None),
        case("CNI_IFNAME: 16 bytes", 4, base.clone()).env("CNI_IFNAME", Some("0123456789abcdef")),
        case("CNI_IFNAME: .", 4, base.clone()).env("CNI_IFNAME", Some(".")),
        case("CNI_IFNAME: a/b", 4, base.clone()).env("CNI_IFNAME", Some("a/b")),
        case("CNI_IFNAME: eth 0", 4, base.clone()).env("CNI_IFNAME", Some("eth 0")),
        case("CNI_IFNAME: a:b", 4, base.clone()).env("CNI_IFNAME", Some("a:b")),
        case("CNI_NETNS: missing for ADD", 4, base.clone()).env("CNI_NETNS", None),
        case("CNI_NETNS: does not exist", 4, base.clone())
            .env("CNI_NETNS", Some("/run/netns/podwire-no-such-ns")),
        case("CNI_NETNS: a regular file", 4, base.clone()).env("CNI_NETNS", Some("/etc/hostname")),
        case("CNI_NETNS: a directory", 4, base.clone()).env("CNI_NETNS", Some("/tmp")),
        case("CNI_NETNS: /dev/null", 4, base.clone()).env("CNI_NETNS", Some("/dev/null")),
        case("CNI_NETNS: a mount namespace", 4, base.clone())
            .env("CNI_NETNS", Some("/proc/self/ns/mnt")),
        case("CNI_NETNS: the plugin's own netns", 4, base.clone())
            .env("CNI_NETNS", Some("/proc/self/ns/net")),
        case("CNI_ARGS: no =", 4, base.clone()).env("CNI_ARGS", Some("junk")),
        case("CNI_ARGS: empty key", 4, base.clone()).env("CNI_ARGS", Some("=x")),
        case("CNI_ARGS: unknown key", 2, base.clone()).env("CNI_ARGS", Some("FOO=1")),
        case("CNI_ARGS: MAC not a MAC", 7, base.clone()).env("CNI_ARGS", Some("MAC=zz")),
        case("CNI_ARGS: IP not an IP", 4, base.clone())
            .env("CNI_ARGS", Some("IgnoreUnknown=1;IP=notanip")),
        case("CNI_ARGS: IP with a leading zero", 4, base.clone())
            .env("CNI_ARGS", Some("IgnoreUnknown=1;IP=10.250.0.010")),
        case("CHECK: no prevResult", 7, base.clone()).env("CNI_COMMAND", Some("CHECK")),
        case(
            "CHECK: cniVersion 0.3.1",
            1,
            e(&|v| v["cniVersion"] = json!("0.3.1")),
        )
        .env("CNI_COMMAND", Some("CHECK")),
        case("GC: no valid-attachments", 7, base.clone()).env("CNI_COMMAND", Some("GC")),
        case(
            "GC: valid-attachments not a list",
            7,
            e(&|v| v["cni.dev/valid-attachments"] = json!({})),
        )
        .env("CNI_COMMAND", Some("GC")),
        case(
            "GC: cniVersion 1.0.0",
            1,
            e(&|v| {
                v["cniVersion"] = json!("1.0.0");
                v["cni.dev/valid-attachments"] = json!([]);
            }),
        )
        .env("CNI_COMMAND", Some("GC")),
        case(
            "STATUS: cniVersion 0.4.0",
            1,
            e(&|v| v["cniVersion"] = json!("0.4.0")),
        )
        .env("CNI_COMMAND", Some("STATUS")),
    ];
    // --- symlinks in the state directory: refused, never followed
    let link_net = |c: &Ctx| {
        std::fs::create_dir_all(c.data()).unwrap();
        symlink(&c.elsewhere, c.data().join(NET)).unwrap();
    };
    // A state dir in use: it has its lock file (unless that is the planted link).
    let link_in_net = |name: &'static str| {
        move |c: &Ctx| {
            let dir = c.data().join(NET);
            std::fs::create_dir_all(&dir).unwrap();
            if name != "lock" {
                std::fs::write(dir.join("lock"), "").unwrap();
            }
            symlink(c.elsewhere.join(name), dir.join(name)).unwrap();
        }
    };
    v.push(case("state: <dataDir>/<network> is a symlink", 5, base.clone()).setup(link_net));
    v.push(case("state: lock is a symlink", 5, base.clone()).setup(link_in_net("lock")));
    v.push(case("state: .podwire is a symlink", 5, base.clone()).setup(link_in_net(".podwire")));
    v.push(
        case(
            "state: .podwire/by-attachment is a symlink",
            5,
            base.clone(),
        )
        .setup(|c: &Ctx| {
            let dir = c.data().join(NET).join(".podwire");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(c.data().join(NET).join("lock"), "").unwrap();
            symlink(&c.elsewhere, dir.join("by-attachment")).unwrap();
        }),
    );
    v.push(
        case("DEL: <dataDir>/<network> is a symlink", 5, base.clone())
            .env("CNI_COMMAND", Some("DEL"))
            .setup(link_net),
    );
    // --- the IPAM binary on its own
    let ie = |f: &dyn Fn(&mut Value)| ipam_edit(c, f);
    v.extend([
        case("podwire-ipam: empty stdin", 6, "").ipam(),
        case(
            "podwire-ipam: name ../x",
            7,
            ie(&|v| v["name"] = json!("../x")),
        )
        .ipam(),
        case(
            "podwire-ipam: subnet /32",
            7,
            ie(&|v| v["ipam"]["subnet"] = json!("10.0.0.0/32")),
        )
        .ipam(),
        case(
            "podwire-ipam: no ipam section",
            7,
            ie(&|v| {
                v.as_object_mut().unwrap().remove("ipam");
            }),
        )
        .ipam(),
        case(
            "podwire-ipam: dataDir relative",
            7,
            ie(&|v| v["ipam"]["dataDir"] = json!("rel")),
        )
        .ipam(),
        case(
            "podwire-ipam: CNI_CONTAINERID ../x",
            4,
            c.ipam_base().to_string(),
        )
        .ipam()
        .env("CNI_CONTAINERID", Some("../x")),
        case(
            "podwire-ipam: <dataDir>/<network> is a symlink",
            5,
            c.ipam_base().to_string(),
        )
        .ipam()
        .setup(link_net),
        case(
            "podwire-ipam: GC without valid-attachments",
            7,
            c.ipam_base().to_string(),
        )
        .ipam()
        .env("CNI_COMMAND", Some("GC")),
    ]);
    v.extend(portmap_and_loopback_cases(c));
    v
}

fn portmap_and_loopback_cases(c: &Ctx) -> Vec<Case> {
    let pm = |f: &dyn Fn(&mut Value)| {
        let mut v = c.portmap_base();
        f(&mut v);
        v.to_string()
    };
    let maps = |m: Value| pm(&|v| v["runtimeConfig"]["portMappings"] = m.clone());
    let lo = json!({"cniVersion": "1.1.0", "name": NET, "type": "loopback"}).to_string();
    // Another pod holds 8080/tcp: the ADD is refused naming it, and the holder's mapping stays.
    let holder = |c: &Ctx| {
        let mut conf = c.portmap_base();
        conf["prevResult"]["ips"][0]["address"] = json!("10.79.0.3/24");
        let call = Call::attachment(
            "ADD",
            "holder-ctr",
            &c.pod.path,
            conf.to_string().as_bytes(),
        );
        let out = plugin::run(
            &binaries::release("podwire-portmap"),
            Some(&c.node.ns),
            &call,
            None,
        );
        assert_eq!(
            out.code,
            Some(0),
            "holder ADD: {} {}",
            out.stdout,
            out.stderr
        );
    };
    // The pod's own mapping, then a firewall reload's `nft flush table`: every hostPort is dead.
    let flushed = |c: &Ctx| {
        let call = Call::attachment(
            "ADD",
            "hostile-ctr",
            &c.pod.path,
            c.portmap_base().to_string().as_bytes(),
        );
        let out = plugin::run(
            &binaries::release("podwire-portmap"),
            Some(&c.node.ns),
            &call,
            None,
        );
        assert_eq!(out.code, Some(0), "ADD: {} {}", out.stdout, out.stderr);
        let nft = std::process::Command::new("ip")
            .args(["netns", "exec", &c.node.name, "nft", "flush", "table"])
            .args(["inet", portmap::ruleset::TABLE])
            .status()
            .unwrap();
        assert!(nft.success(), "nft flush table");
    };
    vec![
        case(
            "portmap: hostIP ::1",
            7,
            maps(json!([{"hostPort": 8080, "containerPort": 80, "hostIP": "::1"}])),
        )
        .on(Bin::Portmap),
        case(
            "portmap: CHECK of a flushed table",
            104,
            c.portmap_base().to_string(),
        )
        .on(Bin::Portmap)
        .env("CNI_COMMAND", Some("CHECK"))
        .setup(flushed),
        case(
            "portmap: hostPort 0",
            7,
            maps(json!([{"hostPort": 0, "containerPort": 80}])),
        )
        .on(Bin::Portmap),
        case(
            "portmap: hostPort 70000",
            7,
            maps(json!([{"hostPort": 70000, "containerPort": 80}])),
        )
        .on(Bin::Portmap),
        case(
            "portmap: hostPort a string",
            7,
            maps(json!([{"hostPort": "80", "containerPort": 80}])),
        )
        .on(Bin::Portmap),
        case(
            "portmap: containerPort missing",
            7,
            maps(json!([{"hostPort": 8080}])),
        )
        .on(Bin::Portmap),
        case(
            "portmap: protocol icmp",
            7,
            maps(json!([{"hostPort": 8080, "containerPort": 80, "protocol": "icmp"}])),
        )
        .on(Bin::Portmap),
        case(
            "portmap: hostIP not an address",
            7,
            maps(json!([{"HostPort": 8080, "ContainerPort": 80, "HostIP": "nope"}])),
        )
        .on(Bin::Portmap),
        case(
            "portmap: portMappings an object",
            7,
            maps(json!({"hostPort": 8080})),
        )
        .on(Bin::Portmap),
        case("portmap: a mapping a number", 7, maps(json!([8080]))).on(Bin::Portmap),
        case(
            "portmap: one host port twice",
            7,
            maps(json!([{"hostPort": 8080, "containerPort": 80},
                         {"hostPort": 8080, "containerPort": 81}])),
        )
        .on(Bin::Portmap),
        case(
            "portmap: no prevResult",
            7,
            pm(&|v| {
                v.as_object_mut().unwrap().remove("prevResult");
            }),
        )
        .on(Bin::Portmap),
        case(
            "portmap: prevResult a string",
            6,
            pm(&|v| v["prevResult"] = json!("x")),
        )
        .on(Bin::Portmap),
        case(
            "portmap: host port held by another pod",
            105,
            c.portmap_base().to_string(),
        )
        .on(Bin::Portmap)
        .setup(holder),
        case("loopback: CNI_NETNS missing", 4, lo.clone())
            .on(Bin::Loopback)
            .env("CNI_NETNS", Some("/run/netns/pw-hostile-none")),
        case("loopback: CNI_NETNS a regular file", 4, lo.clone())
            .on(Bin::Loopback)
            .env("CNI_NETNS", Some("/proc/self/status")),
        case("loopback: CNI_NETNS its own netns", 4, lo)
            .on(Bin::Loopback)
            .env("CNI_NETNS", Some("/proc/self/ns/net")),
    ]
}

/// Everything a refused input must leave as it was.
fn fingerprint(c: &Ctx) -> String {
    let pod_links: Vec<String> = kernel::Netlink::new_in(&c.pod.ns)
        .and_then(|nl| nl.links())
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .collect();
    format!(
        "{}\npod: {pod_links:?}\ndata: {:?}\nelsewhere: {:?}",
        state::kernel_fingerprint(&c.node),
        Node::tree(&c.root),
        Node::tree(&c.elsewhere)
    )
}

/// The one JSON value on stdout, if stdout is exactly one.
fn one_json(stdout: &str) -> Option<Value> {
    let mut it = serde_json::Deserializer::from_str(stdout).into_iter::<Value>();
    let first = it.next()?.ok()?;
    it.next().is_none().then_some(first)
}

#[test]
fn every_bad_input_is_one_error_json_with_its_code_and_changes_nothing() {
    assert!(is_root(), "the hostile-input suite needs root (netns)");
    let podwire = binaries::release("podwire");
    let ipam_bin = binaries::release("podwire-ipam");
    let portmap_bin = binaries::release("podwire-portmap");
    let loopback_bin = binaries::release("loopback");
    let root =
        std::env::temp_dir().join(podwire_reliability_tests::node::unique("podwire-hostile-"));
    let fresh = || {
        let node = Node::new();
        let pod = node.pod();
        let _ = std::fs::remove_dir_all(&root);
        let elsewhere = root.join("elsewhere");
        std::fs::create_dir_all(&elsewhere).unwrap();
        Ctx {
            node,
            pod,
            root: root.clone(),
            elsewhere,
        }
    };
    let bin_dir = podwire.parent().unwrap().display().to_string();
    let mut report = Report::new("hostile");
    let mut failures = Vec::new();
    let cases = corpus(&fresh());
    let total = cases.len();
    for case in cases {
        // A pristine node and pod for every input: nothing one case did can hide another's.
        let c = fresh();
        if let Some(setup) = &case.setup {
            setup(&c);
        }
        let before = fingerprint(&c);
        let mut call = Call::attachment("ADD", "hostile-ctr", &c.pod.path, &case.stdin)
            .var("CNI_PATH", Some(&bin_dir));
        for (k, v) in &case.env {
            call = call.var(k, v.as_deref());
        }
        let bin: &Path = match case.bin {
            Bin::Podwire => &podwire,
            Bin::Ipam => &ipam_bin,
            Bin::Portmap => &portmap_bin,
            Bin::Loopback => &loopback_bin,
        };
        let out = plugin::run(bin, Some(&c.node.ns), &call, None);
        let after = fingerprint(&c);
        let json = one_json(&out.stdout);
        let got = json.as_ref().and_then(|j| j["code"].as_u64());
        let mut wrong = Vec::new();
        if out.code.unwrap_or(0) == 0 {
            wrong.push(format!("exit {:?} signal {:?}", out.code, out.signal));
        }
        match &json {
            Some(j)
                if j["msg"].as_str().is_some_and(|m| !m.is_empty())
                    && j["cniVersion"].is_string() => {}
            _ => wrong.push(format!(
                "stdout is not one CNI error JSON: {:?}",
                out.stdout
            )),
        }
        if got != Some(u64::from(case.code)) {
            wrong.push(format!("code {got:?}, want {}", case.code));
        }
        if out.stderr.contains("panicked") || got == Some(199) {
            wrong.push(format!("panic: {}", out.stderr));
        }
        if before != after {
            wrong.push(format!(
                "state changed:\n--- before\n{before}\n--- after\n{after}"
            ));
        }
        let msg = json
            .as_ref()
            .and_then(|j| j["msg"].as_str().map(str::to_string))
            .unwrap_or_default();
        let short: String = msg.chars().take(90).collect();
        report.line(format!(
            "{:<48} -> {:>3}  {}{short}",
            case.what,
            got.map(|g| g.to_string()).unwrap_or_else(|| "-".into()),
            if wrong.is_empty() { "" } else { "FAIL " }
        ));
        if !wrong.is_empty() {
            failures.push(format!("{}: {}", case.what, wrong.join("; ")));
        }
    }
    // Control: the untouched base config works, so every refusal above is down to its one change.
    let c = fresh();
    let ok = plugin::run(
        &podwire,
        Some(&c.node.ns),
        &Call::attachment(
            "ADD",
            "hostile-ctr",
            &c.pod.path,
            c.base().to_string().as_bytes(),
        ),
        None,
    );
    report.line(format!(
        "{total} bad inputs, {} handled as expected, {} not; control ADD of the base config: exit {:?}",
        total - failures.len(),
        failures.len(),
        ok.code
    ));
    report.finish();
    assert!(
        total >= 60,
        "the corpus must hold at least 60 inputs, has {total}"
    );
    assert_eq!(
        ok.code,
        Some(0),
        "control ADD failed: {} {}",
        ok.stdout,
        ok.stderr
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The agent's hostile inputs (issue #22 items 10 and 11): Node objects whose pod CIDRs would
/// take the node's egress or its underlay, and a link squatting podwire's VXLAN device name.
/// Each gets no route and a reason; the good peer is routed; nothing else changes.
#[test]
fn hostile_node_objects_and_a_squatting_device_route_nothing_they_claim() {
    use node::peers::kernel_io::reconcile;
    use node::peers::{Options, OwnNode, PeerNode};
    assert!(is_root(), "the hostile-input suite needs root (netns)");
    let n = Node::new();
    let ip = |args: &[&str]| {
        let mut cmd = vec!["ip", "-n", &n.name];
        cmd.extend_from_slice(args);
        let ok = std::process::Command::new(cmd[0])
            .args(&cmd[1..])
            .status()
            .unwrap();
        assert!(ok.success(), "{cmd:?}");
    };
    ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p",
    ]);
    ip(&["addr", "add", "192.168.77.1/24", "dev", "eth0"]);
    ip(&["link", "set", "eth0p", "up"]);
    ip(&["link", "set", "eth0", "up"]);
    ip(&["link", "add", "podwire.vxlan", "type", "bridge"]);
    let peer = |name: &str, cidr: &str, addr: &str| PeerNode {
        name: name.into(),
        pod_cidrs: vec![cidr.parse().unwrap()],
        internal: vec![addr.parse().unwrap()],
        external: vec![],
    };
    let nodes = vec![
        peer("me", "10.253.1.0/24", "192.168.77.1"),
        peer("good", "10.253.2.0/24", "192.168.77.2"),
        peer("half", "128.0.0.0/1", "192.168.77.3"),
        peer("default", "0.0.0.0/0", "192.168.77.4"),
        peer("underlay", "192.168.77.0/25", "192.168.77.5"),
        peer("far", "10.253.6.0/24", "192.168.78.6"), // VXLAN: the squatted device
    ];
    let opts = Options {
        cluster_cidrs: vec!["10.253.0.0/16".parse().unwrap()],
        ..Options::default()
    };
    let routes_before = n.netlink().routes(kernel::IpFamily::V4).unwrap().len();
    let own = OwnNode::find(&nodes, "me", None);
    let r = reconcile(
        &n.netlink(),
        &own,
        &nodes,
        &opts,
        &[],
        &mut Default::default(),
    )
    .expect("a pass");
    let ours: Vec<String> = n
        .netlink()
        .routes(kernel::IpFamily::V4)
        .unwrap()
        .into_iter()
        .filter(|r| r.protocol == node::peers::ROUTE_PROTOCOL)
        .map(|r| r.dst.to_string())
        .collect();
    assert_eq!(ours, vec!["10.253.2.0/24"], "{:?}", r.problems);
    let all_after = n.netlink().routes(kernel::IpFamily::V4).unwrap().len();
    assert_eq!(
        all_after,
        routes_before + 1,
        "only the good peer's route was added"
    );
    for (who, why) in [
        ("node half: 128.0.0.0/1", "outside the cluster CIDR"),
        ("node default: 0.0.0.0/0", "outside the cluster CIDR"),
        ("node underlay: 192.168.77.0/25", "outside the cluster CIDR"),
        ("podwire.vxlan: ", "not a VXLAN device (bridge)"),
        ("10.253.6.0/24 (node far)", "VXLAN device is missing"),
    ] {
        assert!(
            r.problems
                .iter()
                .any(|p| p.text.starts_with(who) && p.text.contains(why)),
            "{who}: {:?}",
            r.problems
        );
    }
    let squat = n.netlink().link("podwire.vxlan").unwrap();
    assert_eq!(
        squat.kind.as_deref(),
        Some("bridge"),
        "the squatter untouched"
    );
}
