//! The library driving podwire's own bridge plugin (`podwire`, from crates/bridge) chained with
//! the reference portmap and loopback, as containerd would. The binary is looked up in
//! $PODWIRE_PLUGIN_DIR, then the cargo target dir (release, then debug); the test is skipped
//! with a message when it is not built, or without root and /usr/lib/cni.

mod common;

use common::{is_root, link_exists, unique, Link, Netns, TempDir};
use runtime::{CniConfig, Exec, NetworkConfigList, RuntimeConf};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn podwire_dir() -> Option<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    std::env::var_os("PODWIRE_PLUGIN_DIR")
        .map(PathBuf::from)
        .into_iter()
        .chain([target.join("release"), target.join("debug")])
        .find(|d| d.join("podwire").is_file())
}

#[test]
fn podwire_bridge_portmap_loopback_add_check_del() {
    let Some(dir) =
        podwire_dir().filter(|_| is_root() && Path::new("/usr/lib/cni/portmap").exists())
    else {
        eprintln!("SKIPPED: needs root, /usr/lib/cni and a built `podwire` plugin");
        return;
    };
    let tmp = TempDir::new("podwire");
    let bridge = Link(unique("pwpb"));
    let net = unique("pwpw-");
    let list = NetworkConfigList::from_bytes(
        json!({"cniVersion": "1.0.0", "name": net, "plugins": [
            {"type": "podwire", "bridge": bridge.0, "isGateway": true,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.252.164.0/24"}]],
                      "dataDir": tmp.join("ipam")}},
            {"type": "portmap", "capabilities": {"portMappings": true}},
            {"type": "loopback"}]})
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    let cni = CniConfig::new(vec![dir, PathBuf::from("/usr/lib/cni")])
        .with_cache_dir(tmp.join("cache"))
        .with_exec(Exec {
            timeout: Some(Duration::from_secs(60)),
            ..Exec::default()
        });
    let ns = Netns::new();
    let rt = RuntimeConf {
        container_id: unique("pwpw-cid-"),
        netns: ns.path(),
        ifname: "eth0".into(),
        ..Default::default()
    };
    let result = cni.add_network_list(&list, &rt).unwrap();
    let addr = result.ips[0].address.to_string();
    assert!(addr.starts_with("10.252.164."), "{addr}");
    assert!(ns
        .ip(&["-4", "-o", "addr", "show", "dev", "eth0"])
        .contains(&addr));
    assert!(link_exists(&bridge.0));
    cni.check_network_list(&list, &rt).unwrap();
    cni.del_network_list(&list, &rt).unwrap();
    assert!(!ns.ip(&["-o", "link"]).contains("eth0"));
}
