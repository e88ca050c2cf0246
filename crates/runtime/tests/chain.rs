//! Running lists against fake plugins (shell scripts that record what they were given):
//! chaining, injection, capability filtering, the cache, GC and STATUS — no root needed.

mod common;

use common::{answers_add, calls, fake_plugin, read_json, TempDir};
use runtime::{CniConfig, Exec, GcAttachment, NetworkConfigList, RuntimeConf};
use serde_json::{json, Value};
use std::path::PathBuf;

struct Env {
    _dir: TempDir,
    bin: PathBuf,
    log: PathBuf,
    cache: PathBuf,
}

impl Env {
    fn new() -> Env {
        let dir = TempDir::new("chain");
        let bin = dir.join("bin");
        std::fs::create_dir(&bin).unwrap();
        Env {
            bin,
            log: dir.join("log"),
            cache: dir.join("cache"),
            _dir: dir,
        }
    }
    fn plugin(&self, name: &str, body: &str) {
        fake_plugin(&self.bin, &self.log, name, body);
    }
    fn cni(&self) -> CniConfig {
        CniConfig::new(vec![PathBuf::from("/nonexistent"), self.bin.clone()])
            .with_cache_dir(&self.cache)
            .with_exec(Exec {
                forward_stderr: false,
                ..Exec::default()
            })
    }
    fn stdin(&self, plugin: &str, cmd: &str) -> Value {
        read_json(&self.log.join(format!("{plugin}-{cmd}.stdin")))
    }
    fn env(&self, plugin: &str, cmd: &str) -> String {
        std::fs::read_to_string(self.log.join(format!("{plugin}-{cmd}.env"))).unwrap()
    }
    fn calls(&self) -> Vec<String> {
        calls(&self.log)
    }
    fn cache_file(&self, net: &str, cid: &str) -> PathBuf {
        self.cache.join(format!("results/{net}-{cid}-eth0"))
    }
}

/// Results compared as results: an empty `dns` may or may not be written out.
fn same_result(got: &Value, want: &str) -> bool {
    cni::CniResult::from_value(got).unwrap()
        == cni::CniResult::from_value(&serde_json::from_str(want).unwrap()).unwrap()
}

fn list(v: Value) -> NetworkConfigList {
    NetworkConfigList::from_bytes(&serde_json::to_vec(&v).unwrap()).unwrap()
}

fn rt(cid: &str) -> RuntimeConf {
    RuntimeConf {
        container_id: cid.into(),
        netns: "/run/netns/fake".into(),
        ifname: "eth0".into(),
        args: vec![
            ("IgnoreUnknown".into(), "1".into()),
            ("K8S_POD_NAME".into(), "web".into()),
        ],
        capability_args: json!({
            "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}],
            "bandwidth": {"ingressRate": 1000},
            "undeclared": true
        })
        .as_object()
        .unwrap()
        .clone(),
    }
}

const R_A: &str = r#"{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/run/netns/fake"}],"ips":[{"address":"10.252.1.2/24","gateway":"10.252.1.1","interface":0}]}"#;
// No cniVersion: libcni takes it to be the config's version.
const R_B: &str = r#"{"interfaces":[{"name":"eth0","sandbox":"/run/netns/fake"}],"ips":[{"address":"10.252.1.2/24","gateway":"10.252.1.1","interface":0}],"routes":[{"dst":"0.0.0.0/0"}]}"#;
const R_C: &str = r#"{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/run/netns/fake"}],"ips":[{"address":"10.252.1.2/24","gateway":"10.252.1.1","interface":0}],"routes":[{"dst":"0.0.0.0/0"}],"dns":{"nameservers":["10.252.1.53"]}}"#;

fn three(e: &Env) -> NetworkConfigList {
    e.plugin("a", &answers_add(R_A));
    e.plugin("b", &answers_add(R_B));
    e.plugin("c", &answers_add(R_C));
    list(json!({
        "cniVersion": "1.0.0", "name": "fake3",
        "plugins": [
            {"type": "a", "own": 1, "runtimeConfig": {"kept": "no capabilities declared"}},
            {"type": "b", "capabilities": {"portMappings": true, "bandwidth": false}},
            {"type": "c", "name": "ignored", "cniVersion": "0.3.1"}
        ]
    }))
}

#[test]
fn add_check_del_chain_three_plugins() {
    let e = Env::new();
    let l = three(&e);
    let cni = e.cni();
    let r = cni.add_network_list(&l, &rt("cid-1")).unwrap();
    assert_eq!(r.dns.nameservers, ["10.252.1.53"]);
    assert_eq!(r.cni_version, "1.0.0");

    let a = e.stdin("a", "ADD");
    assert_eq!(a["name"], "fake3");
    assert_eq!(a["cniVersion"], "1.0.0");
    assert_eq!(a["own"], 1);
    assert!(a.get("prevResult").is_none());
    assert_eq!(
        a["runtimeConfig"],
        json!({"kept": "no capabilities declared"})
    );

    let b = e.stdin("b", "ADD");
    assert!(same_result(&b["prevResult"], R_A), "{}", b["prevResult"]);
    // Only the declared, enabled capability reaches the plugin.
    assert_eq!(
        b["runtimeConfig"],
        json!({"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]})
    );

    let c = e.stdin("c", "ADD");
    assert_eq!(c["name"], "fake3", "the list's name is injected");
    assert_eq!(c["cniVersion"], "1.0.0", "the list's version is injected");
    assert_eq!(c["prevResult"]["cniVersion"], "1.0.0", "version fixed up");
    assert_eq!(c["prevResult"]["routes"][0]["dst"], "0.0.0.0/0");

    let env = e.env("a", "ADD");
    for want in [
        "CNI_COMMAND=ADD",
        "CNI_CONTAINERID=cid-1",
        "CNI_NETNS=/run/netns/fake",
        "CNI_IFNAME=eth0",
        "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAME=web",
        &format!("CNI_PATH=/nonexistent:{}", e.bin.display()),
    ] {
        assert!(env.lines().any(|l| l == want), "{want} not in {env}");
    }

    let cached = read_json(&e.cache_file("fake3", "cid-1"));
    assert_eq!(cached["kind"], "cniCacheV1");
    assert_eq!(cached["netns"], "/run/netns/fake");
    assert!(same_result(&cached["result"], R_C), "{}", cached["result"]);
    assert_eq!(cached["cniArgs"][1], json!(["K8S_POD_NAME", "web"]));
    let (bytes, crt) = cni.cached_config(&l, &rt("cid-1")).unwrap().unwrap();
    assert_eq!(bytes, l.bytes);
    assert_eq!(crt.args, rt("cid-1").args);
    assert_eq!(
        cni.cached_result(&l, &rt("cid-1"))
            .unwrap()
            .unwrap()
            .dns
            .nameservers,
        ["10.252.1.53"]
    );

    cni.check_network_list(&l, &rt("cid-1")).unwrap();
    for p in ["a", "b", "c"] {
        assert_eq!(
            e.stdin(p, "CHECK")["prevResult"]["dns"]["nameservers"][0],
            "10.252.1.53"
        );
    }

    cni.del_network_list(&l, &rt("cid-1")).unwrap();
    assert_eq!(
        e.stdin("a", "DEL")["prevResult"]["ips"][0]["address"],
        "10.252.1.2/24"
    );
    assert!(!e.cache_file("fake3", "cid-1").exists());
    assert_eq!(
        e.calls(),
        ["a ADD", "b ADD", "c ADD", "a CHECK", "b CHECK", "c CHECK", "c DEL", "b DEL", "a DEL"]
    );
    // A second DEL (no cache any more) still runs and succeeds, without prevResult.
    cni.del_network_list(&l, &rt("cid-1")).unwrap();
    assert!(e.stdin("a", "DEL").get("prevResult").is_none());
}

#[test]
fn a_failing_plugin_stops_add_and_is_named_with_its_code() {
    let e = Env::new();
    e.plugin("a", &answers_add(R_A));
    e.plugin(
        "b",
        r#"echo '{"cniVersion":"1.0.0","code":7,"msg":"bad bridge name","details":"too long"}'; exit 1"#,
    );
    e.plugin("c", &answers_add(R_C));
    let l = list(json!({"cniVersion": "1.0.0", "name": "failnet",
        "plugins": [{"type": "a"}, {"type": "b"}, {"type": "c"}]}));
    let err = e.cni().add_network_list(&l, &rt("cid-2")).unwrap_err();
    assert!(err.reported);
    assert_eq!(err.code().number(), 7);
    let p = err.plugin.as_ref().unwrap();
    assert_eq!((p.kind.as_str(), p.network.as_str()), ("b", "failnet"));
    assert_eq!(
        err.to_string(),
        r#"plugin type="b" name="failnet" failed (add): bad bridge name: too long (CNI code 7)"#
    );
    assert_eq!(e.calls(), ["a ADD", "b ADD"]);
    assert!(!e.cache_file("failnet", "cid-2").exists());
}

#[test]
fn nothing_runs_when_a_plugin_is_missing_or_names_are_invalid() {
    let e = Env::new();
    e.plugin("a", &answers_add(R_A));
    let l = list(
        json!({"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "a"}, {"type": "nope"}]}),
    );
    let err = e.cni().add_network_list(&l, &rt("cid-3")).unwrap_err();
    assert_eq!(err.plugin.as_ref().unwrap().kind, "nope");
    assert!(
        err.to_string().contains("failed to find plugin \"nope\""),
        "{err}"
    );

    let ok = list(json!({"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "a"}]}));
    for (cid, ifname) in [
        ("", "eth0"),
        ("-bad", "eth0"),
        ("../../etc", "eth0"),
        ("c", "a/b"),
        ("c", ""),
    ] {
        let mut r = rt(cid);
        r.ifname = ifname.into();
        let err = e.cni().add_network_list(&ok, &r).unwrap_err();
        assert_eq!(err.code().number(), 4, "{cid:?} {ifname:?}: {err}");
        assert!(e.cni().del_network_list(&ok, &r).is_err());
    }
    let bad_name = list(json!({"cniVersion": "1.0.0", "name": "a b", "plugins": [{"type": "a"}]}));
    assert_eq!(
        e.cni()
            .add_network_list(&bad_name, &rt("c"))
            .unwrap_err()
            .code()
            .number(),
        7
    );
    assert!(e.calls().is_empty(), "{:?}", e.calls());
}

#[test]
fn a_corrupt_cache_entry_never_blocks_del() {
    let e = Env::new();
    e.plugin("a", "");
    let l = list(json!({"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "a"}]}));
    let file = e.cache_file("n", "cid-4");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "{\"kind\":\"cniCacheV1\",\"result\":{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"nonsense\"}]}}").unwrap();
    e.cni().del_network_list(&l, &rt("cid-4")).unwrap();
    assert_eq!(e.calls(), ["a DEL"]);
    assert!(e.stdin("a", "DEL").get("prevResult").is_none());
    assert!(!file.exists());
    // And CHECK does complain about it, as libcni does.
    std::fs::write(&file, "garbage").unwrap();
    assert!(e.cni().check_network_list(&l, &rt("cid-4")).is_err());
}

#[test]
fn check_and_del_follow_the_lists_version_and_flags() {
    let e = Env::new();
    e.plugin("a", &answers_add(R_A));
    let old = list(json!({"cniVersion": "0.3.1", "name": "old", "plugins": [{"type": "a"}]}));
    let err = e.cni().check_network_list(&old, &rt("c5")).unwrap_err();
    assert!(
        err.to_string()
            .contains("does not support the CHECK command"),
        "{err}"
    );
    e.cni().add_network_list(&old, &rt("c5")).unwrap();
    e.cni().del_network_list(&old, &rt("c5")).unwrap();
    assert!(
        e.stdin("a", "DEL").get("prevResult").is_none(),
        "no cached result before 0.4.0"
    );

    let off = list(
        json!({"cniVersion": "1.0.0", "name": "off", "disableCheck": true, "plugins": [{"type": "a"}]}),
    );
    e.cni().check_network_list(&off, &rt("c6")).unwrap();
    assert_eq!(e.calls(), ["a ADD", "a DEL"]);
}

#[test]
fn gc_deletes_stale_attachments_then_gcs_every_plugin() {
    let e = Env::new();
    let r11 = r#"{"cniVersion":"1.1.0","ips":[{"address":"10.252.2.2/24"}]}"#;
    e.plugin("a", &answers_add(r11));
    e.plugin("b", &answers_add(r11));
    let l = list(json!({"cniVersion": "1.1.0", "name": "gcnet",
        "plugins": [{"type": "a"}, {"type": "b", "capabilities": {"portMappings": true}}]}));
    let other =
        list(json!({"cniVersion": "1.1.0", "name": "othernet", "plugins": [{"type": "a"}]}));
    let cni = e.cni();
    cni.add_network_list(&l, &rt("keep")).unwrap();
    cni.add_network_list(&l, &rt("stale")).unwrap();
    cni.add_network_list(&other, &rt("elsewhere")).unwrap();
    std::fs::remove_file(e.log.join("calls")).unwrap();

    let valid = [GcAttachment {
        container_id: "keep".into(),
        ifname: "eth0".into(),
    }];
    let gc = cni.gc_network_list(&l, Some(&valid));
    gc.result.unwrap();
    assert_eq!(e.calls(), ["b DEL", "a DEL", "a GC", "b GC"]);
    assert_eq!(
        gc.removed,
        [GcAttachment {
            container_id: "stale".into(),
            ifname: "eth0".into(),
        }],
        "GC says what it removed"
    );
    // The stale DEL used what the cache remembered.
    let del = e.env("b", "DEL");
    assert!(del.contains("CNI_CONTAINERID=stale") && del.contains("CNI_NETNS=/run/netns/fake"));
    assert_eq!(
        e.stdin("b", "DEL")["runtimeConfig"]["portMappings"][0]["hostPort"],
        8080
    );
    let gc = e.stdin("a", "GC");
    assert_eq!(
        gc["cni.dev/valid-attachments"],
        json!([{"containerID": "keep", "ifname": "eth0"}])
    );
    assert_eq!(gc["cni.dev/attachments"], gc["cni.dev/valid-attachments"]);
    assert_eq!(gc["name"], "gcnet");
    assert!(e.env("a", "GC").contains("CNI_CONTAINERID=\n"));
    assert!(e.cache_file("gcnet", "keep").exists());
    assert!(!e.cache_file("gcnet", "stale").exists());
    assert!(e.cache_file("othernet", "elsewhere").exists());

    // Errors are collected: a failing GC does not stop the next plugin's.
    e.plugin(
        "a",
        r#"[ "$CNI_COMMAND" = GC ] && { echo '{"code":5,"msg":"disk"}'; exit 1; }; true"#,
    );
    let err = cni.gc_network_list(&l, Some(&valid)).result.unwrap_err();
    assert_eq!(err.code().number(), 5);
    assert!(e
        .calls()
        .ends_with(&["a GC".to_string(), "b GC".to_string()]));

    let off = list(
        json!({"cniVersion": "1.1.0", "name": "gcnet", "disableGC": true, "plugins": [{"type": "a"}]}),
    );
    cni.gc_network_list(&off, None).result.unwrap();
    assert!(
        e.cache_file("gcnet", "keep").exists(),
        "disableGC touches nothing"
    );
    // With no valid set (cnitool's gc), every attachment of the network goes.
    cni.gc_network_list(&l, None).result.unwrap_err();
    assert!(!e.cache_file("gcnet", "keep").exists());
    assert_eq!(
        e.stdin("b", "GC")["cni.dev/valid-attachments"],
        json!([]),
        "an empty list, as libcni sends"
    );
}

#[test]
fn status_asks_every_plugin_from_110_on() {
    let e = Env::new();
    e.plugin("a", "true");
    e.plugin(
        "b",
        r#"echo '{"cniVersion":"1.1.0","code":50,"msg":"no free addresses"}'; exit 1"#,
    );
    let l = list(
        json!({"cniVersion": "1.1.0", "name": "st", "plugins": [{"type": "a"}, {"type": "b"}]}),
    );
    let err = e.cni().status_network_list(&l).unwrap_err();
    assert_eq!(err.code().number(), 50);
    assert_eq!(err.plugin.as_ref().unwrap().kind, "b");
    assert_eq!(e.calls(), ["a STATUS", "b STATUS"]);
    assert_eq!(e.stdin("a", "STATUS")["name"], "st");
    let ok = list(json!({"cniVersion": "1.1.0", "name": "st", "plugins": [{"type": "a"}]}));
    e.cni().status_network_list(&ok).unwrap();
    let old = list(json!({"cniVersion": "1.0.0", "name": "st", "plugins": [{"type": "b"}]}));
    e.cni().status_network_list(&old).unwrap();
    assert_eq!(e.calls().len(), 3, "no STATUS before 1.1.0");
}

#[test]
fn validate_checks_every_plugins_versions() {
    let e = Env::new();
    e.plugin(
        "v1",
        r#"echo '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}'"#,
    );
    let l = list(json!({"cniVersion": "1.0.0", "name": "v",
        "plugins": [{"type": "v1", "capabilities": {"portMappings": true}}]}));
    assert_eq!(e.cni().validate_network_list(&l).unwrap(), ["portMappings"]);
    let newer = list(
        json!({"cniVersion": "1.1.0", "name": "v", "plugins": [{"type": "v1"}, {"type": "gone"}]}),
    );
    let err = e.cni().validate_network_list(&newer).unwrap_err();
    assert_eq!(err.all().count(), 2);
    assert!(
        err.to_string()
            .contains("does not support config version \"1.1.0\""),
        "{err}"
    );
}
