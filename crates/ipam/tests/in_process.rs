//! The in-process API the bridge plugin calls: `add`/`del`/`check`/`status` on a `CmdArgs`,
//! and the `*_with` variants with an ipam section built by `subnet_conf`.

mod common;
use common::DataDir;
use serde_json::json;

fn args(command: &str, id: &str, conf: &serde_json::Value) -> cni::CmdArgs {
    let bytes = conf.to_string().into_bytes();
    cni::CmdArgs {
        command: cni::Command::parse(command).unwrap(),
        container_id: id.into(),
        netns: "/var/run/netns/none".into(),
        ifname: "eth0".into(),
        args: cni::args::CniArgs::default(),
        path: Vec::new(),
        conf: cni::NetConf::parse(&bytes).unwrap(),
        stdin: bytes,
    }
}

#[test]
fn add_check_del_in_process() {
    let dir = DataDir::new("inproc");
    let conf = common::conf("1.0.0", "net1", &dir, json!({"subnet": "10.60.0.0/24"}));
    let r = ipam::add(&args("ADD", "c1", &conf)).unwrap();
    assert_eq!(r.ips.len(), 1);
    assert_eq!(r.ips[0].address.to_string(), "10.60.0.2/24");
    assert_eq!(r.ips[0].interface, None);
    ipam::check(&args("CHECK", "c1", &conf)).unwrap();
    ipam::del(&args("DEL", "c1", &conf)).unwrap();
    assert!(ipam::check(&args("CHECK", "c1", &conf)).is_err());
    assert!(dir.allocated("net1").is_empty());
}

#[test]
fn legacy_top_level_subnet_through_subnet_conf() {
    let dir = DataDir::new("inproc-legacy");
    // The bridge's legacy config: no ipam section, a top-level subnet.
    let conf = json!({"cniVersion": "1.0.0", "name": "legacy", "type": "podwire",
                      "subnet": "10.61.0.0/24"});
    let mut section = ipam::subnet_conf("10.61.0.0/24");
    section.extra.insert("dataDir".into(), json!(dir.path()));
    let a = args("ADD", "c1", &conf);
    let r = ipam::add_with(&section, &a).unwrap();
    assert_eq!(r.ips[0].address.to_string(), "10.61.0.2/24");
    assert_eq!(r.ips[0].gateway.unwrap().to_string(), "10.61.0.1");
    // Without a section, the plain entry points refuse with code 7.
    assert_eq!(ipam::add(&a).unwrap_err().code.number(), 7);
    ipam::del_with(&section, &args("DEL", "c1", &conf)).unwrap();
    assert!(dir.allocated("legacy").is_empty());
}

#[test]
fn the_plugin_trait_dispatches() {
    let dir = DataDir::new("inproc-skel");
    let conf = common::conf("1.1.0", "net1", &dir, json!({"subnet": "10.62.0.0/30"}));
    let env = |k: &str| {
        let v = match k {
            "CNI_COMMAND" => "ADD",
            "CNI_CONTAINERID" => "c1",
            "CNI_IFNAME" => "eth0",
            "CNI_NETNS" => "/var/run/netns/none",
            _ => return None,
        };
        Some(v.to_string())
    };
    let out = cni::skel::dispatch(&env, conf.to_string().as_bytes(), &ipam::IpamPlugin);
    assert_eq!(out.exit_code, 0, "{}", String::from_utf8_lossy(&out.stdout));
    let st = |k: &str| (k == "CNI_COMMAND").then(|| "STATUS".to_string());
    let out = cni::skel::dispatch(&st, conf.to_string().as_bytes(), &ipam::IpamPlugin);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["code"], 50, "a /30 has one address and c1 holds it: {v}");
}
