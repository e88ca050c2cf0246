//! The result cache is libcni's `cniCacheV1`: checked against a file in the layout
//! containerd 1.6 writes, and for what podwire itself writes.

mod common;

use common::TempDir;
use runtime::cache::{Cache, CacheEntry};
use runtime::NetworkConfigList;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;

const CONTAINERD_16: &str = include_str!("fixtures/containerd-1.6-cache.json");
const CID: &str = "4bd1b64f2b1e5bbb6d42e8b8a4e8cd7ae58a2b8f7f1c0f3d7cbb53f6e2a9c001";

#[test]
fn reads_a_containerd_16_cache_file() {
    let e = CacheEntry::from_json(CONTAINERD_16.trim().as_bytes()).unwrap();
    assert_eq!(e.container_id, CID);
    assert_eq!(e.network_name, "containerd-net");
    assert_eq!(e.ifname, "eth0");
    assert_eq!(e.netns, "", "libcni 1.1 writes no netns");
    assert_eq!(
        e.cni_args[1],
        ("K8S_POD_NAMESPACE".into(), "default".into())
    );
    assert_eq!(e.capability_args["portMappings"][0]["hostPort"], 8080);
    // The config is the conflist's bytes and loads as a list.
    let list = NetworkConfigList::from_bytes(&e.config).unwrap();
    assert_eq!(list.name, "containerd-net");
    assert_eq!(list.plugins[1].kind, "portmap");
    let r = cni::CniResult::from_value(e.result.as_ref().unwrap()).unwrap();
    assert_eq!(r.ips[0].address.to_string(), "10.88.0.7/16");
}

/// Captured from containerd 1.6.20 running podwire in the runtime suite (tests/runtimes).
const CONTAINERD_1620_WRITTEN: &str = include_str!("fixtures/containerd-1.6.20-written.json");

#[test]
fn a_file_containerd_wrote_is_read_and_rewritten_byte_for_byte() {
    let raw = CONTAINERD_1620_WRITTEN.trim();
    let e = CacheEntry::from_json(raw.as_bytes()).unwrap();
    assert_eq!(e.network_name, "podwire-e2e");
    assert_eq!(e.ifname, "eth0");
    assert_eq!(e.cni_args.len(), 5);
    assert_eq!(
        e.result.as_ref().unwrap()["ips"][0]["address"],
        "10.253.0.2/24"
    );
    let list = NetworkConfigList::from_bytes(&e.config).unwrap();
    assert_eq!(list.plugins[0].kind, "podwire");
    assert_eq!(
        String::from_utf8(e.to_json()).unwrap(),
        raw,
        "same fields, order and encoding as libcni"
    );
}

#[test]
fn rewriting_a_containerd_16_file_is_byte_identical() {
    let e = CacheEntry::from_json(CONTAINERD_16.trim().as_bytes()).unwrap();
    assert_eq!(
        String::from_utf8(e.to_json()).unwrap(),
        CONTAINERD_16.trim()
    );
}

#[test]
fn what_podwire_writes_has_libcnis_fields_layout_and_modes() {
    let d = TempDir::new("cache");
    let cache = Cache::new(d.join("cni"));
    let entry = CacheEntry {
        container_id: "cid-1".into(),
        network_name: "net1".into(),
        ifname: "eth0".into(),
        netns: "/run/netns/p1".into(),
        config: br#"{"cniVersion":"1.0.0","name":"net1","plugins":[{"type":"bridge"}]}"#.to_vec(),
        cni_args: vec![("IgnoreUnknown".into(), "1".into())],
        capability_args: json!({"portMappings": []}).as_object().unwrap().clone(),
        result: Some(json!({"cniVersion": "1.0.0", "ips": [{"address": "10.252.0.2/24"}]})),
    };
    let path = cache.write(&entry).unwrap();
    assert_eq!(path, d.join("cni/results/net1-cid-1-eth0"));
    let text = std::fs::read_to_string(&path).unwrap();
    // Field names and order of libcni's cachedInfo.
    let keys = [
        "\"kind\":\"cniCacheV1\"",
        "\"containerId\":\"cid-1\"",
        "\"config\":\"eyJjbmlWZXJzaW9uIjoiMS4wLjAiLCJuYW1lIjoibmV0MSIsInBsdWdpbnMiOlt7InR5cGUiOiJicmlkZ2UifV19\"",
        "\"ifName\":\"eth0\"",
        "\"networkName\":\"net1\"",
        "\"netns\":\"/run/netns/p1\"",
        "\"cniArgs\":[[\"IgnoreUnknown\",\"1\"]]",
        "\"capabilityArgs\":{\"portMappings\":[]}",
        "\"result\":{",
    ];
    let mut at = 0;
    for k in keys {
        let pos = text[at..]
            .find(k)
            .unwrap_or_else(|| panic!("{k} missing or out of order in {text}"));
        at += pos + k.len();
    }
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let dir_mode = std::fs::metadata(d.join("cni/results"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700);
    assert_eq!(cache.read("net1", "cid-1", "eth0").unwrap().unwrap(), entry);

    // Empty optional fields are left out, as Go's omitempty does.
    let bare = CacheEntry {
        cni_args: vec![],
        capability_args: Default::default(),
        netns: String::new(),
        ..entry
    };
    let v: serde_json::Value = serde_json::from_slice(&bare.to_json()).unwrap();
    for absent in ["netns", "cniArgs", "capabilityArgs"] {
        assert!(v.get(absent).is_none(), "{absent} should be omitted");
    }
}

#[test]
fn results_convert_to_the_asked_version_and_legacy_files_are_read() {
    let d = TempDir::new("cache");
    let cache = Cache::new(d.path());
    std::fs::create_dir_all(d.join("results")).unwrap();
    std::fs::write(d.join("results/n-c-eth0"), CONTAINERD_16).unwrap();
    let r = cache
        .read_result("n", "c", "eth0", "0.4.0")
        .unwrap()
        .unwrap();
    assert_eq!(r["cniVersion"], "0.4.0");
    assert_eq!(r["ips"][0]["version"], "4");
    // Before cniCacheV1 the file was the bare result.
    std::fs::write(
        d.join("results/old-c-eth0"),
        r#"{"cniVersion":"0.2.0","ip4":{"ip":"10.1.0.5/24","gateway":"10.1.0.1"}}"#,
    )
    .unwrap();
    let r = cache
        .read_result("old", "c", "eth0", "1.0.0")
        .unwrap()
        .unwrap();
    assert_eq!(r["ips"][0]["address"], "10.1.0.5/24");
    assert!(cache
        .read_result("none", "c", "eth0", "1.0.0")
        .unwrap()
        .is_none());
}

#[test]
fn corrupt_or_foreign_files_are_errors_on_read_and_skipped_when_listing() {
    let d = TempDir::new("cache");
    let cache = Cache::new(d.path());
    let good = CacheEntry {
        container_id: "c1".into(),
        network_name: "n".into(),
        ifname: "eth0".into(),
        ..Default::default()
    };
    cache.write(&good).unwrap();
    cache
        .write(&CacheEntry {
            container_id: "c2".into(),
            ..good.clone()
        })
        .unwrap();
    std::fs::write(d.join("results/n-c3-eth0"), "{not json").unwrap();
    std::fs::write(d.join("results/n-c4-eth0"), r#"{"kind":"other"}"#).unwrap();
    std::fs::write(
        d.join("results/n-c5-eth0"),
        r#"{"kind":"cniCacheV1","config":"%%%"}"#,
    )
    .unwrap();
    assert!(cache.read("n", "c3", "eth0").is_err());
    assert!(cache.read("n", "c4", "eth0").is_err());
    assert!(cache.read("n", "c5", "eth0").is_err());
    let all = cache.attachments(None).unwrap();
    assert_eq!(
        all.iter()
            .map(|e| e.container_id.as_str())
            .collect::<Vec<_>>(),
        ["c1", "c2"]
    );
    let one = cache.attachments(Some("c2")).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].container_id, "c2");
    cache.remove("n", "c1", "eth0").unwrap();
    cache.remove("n", "c1", "eth0").unwrap();
    assert!(cache.read("n", "c1", "eth0").unwrap().is_none());
    assert!(cache.file_path("", "c", "eth0").is_err());
    assert!(Cache::new(d.join("missing"))
        .attachments(None)
        .unwrap()
        .is_empty());
}

#[test]
fn symlinks_in_the_cache_are_never_followed() {
    let d = TempDir::new("symlink");
    let victim = d.path().join("victim");
    std::fs::write(&victim, "do not touch").unwrap();
    let cache = Cache::new(d.path().join("cache"));
    let entry = CacheEntry {
        container_id: "ctr".into(),
        network_name: "net".into(),
        ifname: "eth0".into(),
        ..Default::default()
    };
    let path = cache.write(&entry).unwrap();
    // A cache file replaced by a link to another file is not read through.
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(&victim, &path).unwrap();
    assert!(cache.read("net", "ctr", "eth0").is_err());
    assert!(cache.attachments(None).unwrap().is_empty());
    // A results directory replaced by a link is refused, and nothing lands where it points.
    let elsewhere = d.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::remove_dir_all(cache.results_dir()).unwrap();
    std::os::unix::fs::symlink(&elsewhere, cache.results_dir()).unwrap();
    assert!(cache.write(&entry).is_err());
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "do not touch");
}
