//! Loading networks from a config directory, as libcni does.

mod common;

use common::TempDir;
use runtime::conf::{conf_files, list_networks, load_network, NetworkConfigList};

fn write(dir: &TempDir, name: &str, body: &str) {
    std::fs::write(dir.join(name), body).unwrap();
}

#[test]
fn conflists_come_first_in_sorted_order() {
    let d = TempDir::new("conf");
    write(
        &d,
        "20-b.conflist",
        r#"{"cniVersion":"1.0.0","name":"net","plugins":[{"type":"second"}]}"#,
    );
    write(
        &d,
        "10-a.conflist",
        r#"{"cniVersion":"1.0.0","name":"net","plugins":[{"type":"first"}]}"#,
    );
    write(
        &d,
        "05-single.conf",
        r#"{"cniVersion":"1.0.0","name":"net","type":"single"}"#,
    );
    let l = load_network(d.path(), "net").unwrap();
    assert_eq!(l.plugins[0].kind, "first");
    assert_eq!(l.file.as_deref(), Some(d.join("10-a.conflist").as_path()));
    assert_eq!(
        conf_files(d.path(), &["conflist"]).unwrap(),
        vec![d.join("10-a.conflist"), d.join("20-b.conflist")]
    );
}

#[test]
fn single_conf_and_json_are_upconverted() {
    let d = TempDir::new("conf");
    write(
        &d,
        "10-x.conflist",
        r#"{"cniVersion":"1.0.0","name":"other","plugins":[{"type":"o"}]}"#,
    );
    write(
        &d,
        "20-one.conf",
        r#"{"cniVersion":"0.4.0","name":"one","type":"bridge","bridge":"b0"}"#,
    );
    write(
        &d,
        "30-two.json",
        r#"{"cniVersion":"0.3.1","name":"two","type":"ptp"}"#,
    );
    let one = load_network(d.path(), "one").unwrap();
    assert_eq!(one.cni_version, "0.4.0");
    assert_eq!(one.plugins.len(), 1);
    assert_eq!(one.plugins[0].raw["bridge"], "b0");
    // The list bytes are the upconverted list, as libcni caches them.
    let bytes: serde_json::Value = serde_json::from_slice(&one.bytes).unwrap();
    assert_eq!(bytes["name"], "one");
    assert_eq!(bytes["plugins"][0]["type"], "bridge");
    assert_eq!(
        load_network(d.path(), "two").unwrap().plugins[0].kind,
        "ptp"
    );
}

#[test]
fn unknown_name_and_empty_dir_are_clear_errors() {
    let d = TempDir::new("conf");
    let e = load_network(d.path(), "x").unwrap_err();
    assert!(e.to_string().contains("no network configs found"), "{e}");
    write(
        &d,
        "10.conflist",
        r#"{"cniVersion":"1.0.0","name":"a","plugins":[{"type":"t"}]}"#,
    );
    let e = load_network(d.path(), "missing").unwrap_err();
    assert!(
        e.to_string()
            .contains(r#"no network config named "missing""#),
        "{e}"
    );
    assert_eq!(e.code().number(), 7);
    // A directory that does not exist has no configs, like libcni.
    assert!(load_network(&d.join("nope"), "a").is_err());
}

#[test]
fn a_bad_file_is_named_in_the_error() {
    let d = TempDir::new("conf");
    write(
        &d,
        "10-bad.conflist",
        r#"{"cniVersion":"1.0.0","name":"a","plugins":[{"type":"t"}"#,
    );
    write(
        &d,
        "20-good.conflist",
        r#"{"cniVersion":"1.0.0","name":"b","plugins":[{"type":"t"}]}"#,
    );
    let e = load_network(d.path(), "b").unwrap_err();
    assert_eq!(e.file.as_deref(), Some(d.join("10-bad.conflist").as_path()));
    assert!(e.to_string().contains("10-bad.conflist"), "{e}");
    assert_eq!(e.code().number(), 6);
    let all = list_networks(d.path()).unwrap();
    assert_eq!(all.len(), 2);
    assert!(all[0].is_err() && all[1].as_ref().unwrap().name == "b");
}

#[test]
fn bad_lists_get_config_errors() {
    let code = |s: &str| {
        NetworkConfigList::from_bytes(s.as_bytes())
            .unwrap_err()
            .code()
            .number()
    };
    assert_eq!(
        code(r#"{"cniVersion":"1.0.0","plugins":[{"type":"t"}]}"#),
        7
    );
    assert_eq!(
        code(r#"{"cniVersion":"1.0.0","name":5,"plugins":[{"type":"t"}]}"#),
        7
    );
    assert_eq!(code(r#"{"cniVersion":"1.0.0","name":"n","plugins":[]}"#), 7);
    assert_eq!(code(r#"{"cniVersion":"1.0.0","name":"n","plugins":{}}"#), 7);
    assert_eq!(
        code(r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"name":"x"}]}"#),
        7
    );
    assert_eq!(
        code(
            r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"t","capabilities":{"a":"yes"}}]}"#
        ),
        7
    );
    assert_eq!(
        code(r#"{"cniVersion":"x.y","name":"n","plugins":[{"type":"t"}]}"#),
        7
    );
    assert_eq!(
        code(
            r#"{"cniVersion":"1.0.0","name":"n","disableCheck":"maybe","plugins":[{"type":"t"}]}"#
        ),
        7
    );
    assert_eq!(
        code(r#"{"cniVersion":"1.0.0","name":"n","loadOnlyInlinedPlugins":true}"#),
        7
    );
    assert_eq!(code("[1]"), 7);
    assert_eq!(code("{"), 6);
}

#[test]
fn cni_versions_picks_the_highest_known() {
    let v = |s: &str| {
        NetworkConfigList::from_bytes(s.as_bytes())
            .unwrap()
            .cni_version
    };
    let base = r#""name":"n","plugins":[{"type":"t"}]"#;
    assert_eq!(
        v(&format!(
            r#"{{"cniVersion":"0.4.0","cniVersions":["1.0.0","0.3.1"],{base}}}"#
        )),
        "1.0.0"
    );
    // cniVersion counts as a candidate too.
    assert_eq!(
        v(&format!(
            r#"{{"cniVersion":"1.1.0","cniVersions":["1.0.0"],{base}}}"#
        )),
        "1.1.0"
    );
    // Versions newer than we implement are skipped.
    assert_eq!(
        v(&format!(
            r#"{{"cniVersion":"0.4.0","cniVersions":["9.0.0","1.0.0"],{base}}}"#
        )),
        "1.0.0"
    );
    assert_eq!(
        v(&format!(r#"{{"cniVersions":["0.10.0","0.9.0"],{base}}}"#)),
        "0.10.0"
    );
    assert!(NetworkConfigList::from_bytes(
        format!(r#"{{"cniVersions":["bad"],{base}}}"#).as_bytes()
    )
    .is_err());
}

#[test]
fn flags_accept_bools_and_bool_strings() {
    let l = NetworkConfigList::from_bytes(
        br#"{"cniVersion":"1.0.0","name":"n","disableCheck":"TRUE","disableGC":true,
             "loadOnlyInlinedPlugins":"false","plugins":[{"type":"t","capabilities":{"portMappings":true,"bandwidth":false}}]}"#,
    )
    .unwrap();
    assert!(l.disable_check && l.disable_gc && !l.load_only_inlined_plugins);
    assert_eq!(l.capabilities(), vec!["portMappings".to_string()]);
}

#[test]
fn plugins_from_the_network_subdirectory_unless_inlined_only() {
    let d = TempDir::new("conf");
    std::fs::create_dir(d.join("net")).unwrap();
    write(&d, "net/20-b.conf", r#"{"type":"tuning"}"#);
    write(&d, "net/10-a.conf", r#"{"type":"portmap"}"#);
    write(&d, "net/ignored.json", r#"{"type":"nope"}"#);
    write(
        &d,
        "10.conflist",
        r#"{"cniVersion":"1.0.0","name":"net","plugins":[{"type":"bridge"}]}"#,
    );
    let l = load_network(d.path(), "net").unwrap();
    let kinds: Vec<_> = l.plugins.iter().map(|p| p.kind.as_str()).collect();
    assert_eq!(kinds, ["bridge", "portmap", "tuning"]);

    write(
        &d,
        "10.conflist",
        r#"{"cniVersion":"1.0.0","name":"net","loadOnlyInlinedPlugins":true,"plugins":[{"type":"bridge"}]}"#,
    );
    assert_eq!(load_network(d.path(), "net").unwrap().plugins.len(), 1);

    // No "plugins" key at all: the subdirectory supplies them.
    write(&d, "10.conflist", r#"{"cniVersion":"1.0.0","name":"net"}"#);
    assert_eq!(load_network(d.path(), "net").unwrap().plugins.len(), 2);
    std::fs::remove_dir_all(d.join("net")).unwrap();
    let e = load_network(d.path(), "net").unwrap_err();
    assert!(e.to_string().contains("no plugin configs"), "{e}");
}
