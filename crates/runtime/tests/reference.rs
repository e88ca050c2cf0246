//! The library driving Debian's reference plugins (containernetworking-plugins 1.1.1 in
//! /usr/lib/cni: bridge, host-local, portmap, loopback) in throwaway network namespaces.
//! Needs root, `ip` and `iptables`; skipped (with a message) when they are not there.
//! Subnets 10.252.16x.0/24 only inside namespaces these tests create; each test's plugins run
//! from a node netns of its own (the bridge and portmap's iptables chains live there); every
//! netns, bridge and directory is removed by a Drop guard.

mod common;

use common::{is_root, link_exists, run, unique, Link, Netns, NodeNetns, TempDir};
use runtime::{load_network, CniConfig, Exec, GcAttachment, RuntimeConf};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

const REF: &str = "/usr/lib/cni";

fn ready() -> bool {
    let ok = is_root()
        && ["bridge", "host-local", "portmap", "loopback"]
            .iter()
            .all(|p| Path::new(REF).join(p).exists())
        && std::process::Command::new("iptables")
            .arg("--version")
            .output()
            .is_ok();
    if !ok {
        eprintln!("SKIPPED: needs root, {REF}/{{bridge,host-local,portmap,loopback}} and iptables");
    }
    ok
}

struct Setup {
    dir: TempDir,
    bridge: Link,
    cni: CniConfig,
    /// Dropped last: the bridge is deleted from inside it.
    _node: NodeNetns,
}

impl Setup {
    /// Writes a conflist named `net` with the given plugins after a bridge on a fresh bridge name.
    fn new(net: &str, subnet: &str, after_bridge: serde_json::Value) -> Setup {
        let node = NodeNetns::enter();
        let dir = TempDir::new("ref");
        let bridge = unique("pwrb");
        let mut plugins = vec![json!({
            "type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": false,
            "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]],
                     "dataDir": dir.join("ipam")}
        })];
        plugins.extend(after_bridge.as_array().unwrap().iter().cloned());
        let conflist = json!({"cniVersion": "1.0.0", "name": net, "plugins": plugins});
        std::fs::create_dir(dir.join("net.d")).unwrap();
        std::fs::write(dir.join("net.d/10-test.conflist"), conflist.to_string()).unwrap();
        let cni = CniConfig::new(vec![PathBuf::from(REF)])
            .with_cache_dir(dir.join("cache"))
            .with_exec(Exec {
                timeout: Some(Duration::from_secs(60)),
                ..Exec::default()
            });
        Setup {
            dir,
            bridge: Link(bridge),
            cni,
            _node: node,
        }
    }

    fn list(&self, net: &str) -> runtime::NetworkConfigList {
        load_network(&self.dir.join("net.d"), net).unwrap()
    }

    fn cache_file(&self, net: &str, cid: &str) -> PathBuf {
        self.dir
            .join("cache/results")
            .join(format!("{net}-{cid}-eth0"))
    }
}

fn rt(cid: &str, ns: &Netns) -> RuntimeConf {
    RuntimeConf {
        container_id: cid.into(),
        netns: ns.path(),
        ifname: "eth0".into(),
        args: vec![("IgnoreUnknown".into(), "1".into())],
        capability_args: Default::default(),
    }
}

fn nat_rules() -> String {
    run("iptables-save", &["-t", "nat"])
}

#[test]
fn bridge_and_portmap_add_check_del() {
    if !ready() {
        return;
    }
    let net = unique("pwref-");
    let s = Setup::new(
        &net,
        "10.252.161.0/24",
        json!([{"type": "portmap", "capabilities": {"portMappings": true}}]),
    );
    let list = s.list(&net);
    assert_eq!(
        s.cni.validate_network_list(&list).unwrap(),
        ["portMappings"]
    );
    s.cni.status_network_list(&list).unwrap();

    let ns = Netns::new();
    let cid = unique("pwref-cid-");
    let mut rt = rt(&cid, &ns);
    rt.capability_args = json!({
        "portMappings": [{"hostPort": 18081, "containerPort": 80, "protocol": "tcp"}],
        "bandwidth": {"ingressRate": 1}
    })
    .as_object()
    .unwrap()
    .clone();

    let result = s.cni.add_network_list(&list, &rt).unwrap();
    assert_eq!(result.cni_version, "1.0.0");
    let addr = result.ips[0].address.to_string();
    assert!(addr.starts_with("10.252.161."), "{addr}");
    assert!(ns
        .ip(&["-4", "-o", "addr", "show", "dev", "eth0"])
        .contains(&addr));
    assert!(link_exists(&s.bridge.0));
    // portmap got the mapping (its rules carry the container ID) and only it.
    assert!(nat_rules().contains(&cid), "no DNAT rules for {cid}");

    let cached: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.cache_file(&net, &cid)).unwrap()).unwrap();
    assert_eq!(cached["kind"], "cniCacheV1");
    assert_eq!(cached["containerId"], cid.as_str());
    assert_eq!(cached["result"]["ips"][0]["address"], addr.as_str());
    assert_eq!(
        cached["capabilityArgs"]["portMappings"][0]["hostPort"],
        18081
    );

    // portmap 1.1.1's CHECK also looks for an IPv6 chain an IPv4-only pod never gets (fixed in
    // later plugins); the error must come back as the plugin's own, named, with its code.
    match s.cni.check_network_list(&list, &rt) {
        Ok(()) => {}
        Err(e) => {
            assert!(e.reported && e.cni.msg.contains("ipv6 dnat"), "{e}");
            assert_eq!(e.plugin.as_ref().unwrap().kind, "portmap");
            assert_eq!(e.code().number(), 999);
        }
    }

    s.cni.del_network_list(&list, &rt).unwrap();
    assert!(!ns.ip(&["-o", "link"]).contains("eth0"));
    assert!(!nat_rules().contains(&cid), "DNAT rules left for {cid}");
    assert!(!s.cache_file(&net, &cid).exists());
    // CHECK after DEL fails: the plugin says what is missing, and is named.
    let err = s.cni.check_network_list(&list, &rt).unwrap_err();
    assert!(err.plugin.is_some(), "{err}");
}

#[test]
fn bridge_loopback_portmap_chain_of_three() {
    if !ready() {
        return;
    }
    let net = unique("pwref-");
    let s = Setup::new(
        &net,
        "10.252.162.0/24",
        json!([{"type": "loopback"}, {"type": "portmap", "capabilities": {"portMappings": true}}]),
    );
    let list = s.list(&net);
    let ns = Netns::new();
    let cid = unique("pwref-cid-");
    let rt = rt(&cid, &ns);
    let result = s.cni.add_network_list(&list, &rt).unwrap();
    // loopback and portmap pass the bridge's result on.
    assert!(result.ips[0].address.to_string().starts_with("10.252.162."));
    assert!(result.interfaces.iter().any(|i| i.name == "eth0"));
    assert!(ns.ip(&["link", "show", "lo"]).contains("UP"));
    s.cni.check_network_list(&list, &rt).unwrap();
    s.cni.del_network_list(&list, &rt).unwrap();
    assert!(!ns.ip(&["-o", "link"]).contains("eth0"));
    assert!(!ns.ip(&["link", "show", "lo"]).contains(",UP"));
}

#[test]
fn gc_removes_a_stale_attachment_and_keeps_the_valid_one() {
    if !ready() {
        return;
    }
    let net = unique("pwref-");
    let s = Setup::new(&net, "10.252.163.0/24", json!([]));
    let list = s.list(&net);
    let (ns1, ns2) = (Netns::new(), Netns::new());
    let (cid1, cid2) = (unique("pwref-keep-"), unique("pwref-stale-"));
    let r1 = s.cni.add_network_list(&list, &rt(&cid1, &ns1)).unwrap();
    let r2 = s.cni.add_network_list(&list, &rt(&cid2, &ns2)).unwrap();
    let ip2 = r2.ips[0].address.addr().to_string();
    let lease2 = s.dir.join("ipam").join(&net).join(&ip2);
    assert!(lease2.exists(), "host-local should hold {ip2}");

    let valid = [GcAttachment {
        container_id: cid1.clone(),
        ifname: "eth0".into(),
    }];
    s.cni.gc_network_list(&list, Some(&valid)).result.unwrap();
    assert!(!ns2.ip(&["-o", "link"]).contains("eth0"), "stale eth0 left");
    assert!(!lease2.exists(), "stale address not released");
    assert!(!s.cache_file(&net, &cid2).exists());
    let addr1 = r1.ips[0].address.to_string();
    assert!(ns1
        .ip(&["-4", "-o", "addr", "show", "dev", "eth0"])
        .contains(&addr1));
    assert!(s.cache_file(&net, &cid1).exists());
    s.cni.del_network_list(&list, &rt(&cid1, &ns1)).unwrap();
}
