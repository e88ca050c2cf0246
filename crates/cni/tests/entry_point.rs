//! Execs the example plugin built on the entry point, as a runtime would.

use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn plugin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cni-noop-plugin"))
}

fn exec(vars: &[(&str, &str)], stdin: &str) -> (i32, Value, String) {
    let mut child = Command::new(plugin())
        .env_clear()
        .envs(vars.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cargo builds cni-noop-plugin for its tests");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let json = if stdout.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&stdout).unwrap()
    };
    (
        out.status.code().unwrap(),
        json,
        String::from_utf8(out.stderr).unwrap(),
    )
}

const CONF: &str = r#"{"cniVersion":"1.0.0","name":"net","type":"noop-plugin"}"#;

fn add_env<'a>(over: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut v = vec![
        ("CNI_COMMAND", "ADD"),
        ("CNI_CONTAINERID", "ctr1"),
        ("CNI_NETNS", "/var/run/netns/does-not-matter"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", "/opt/cni/bin"),
    ];
    for (k, val) in over {
        v.retain(|(kk, _)| kk != k);
        v.push((*k, *val));
    }
    v
}

#[test]
fn answers_version() {
    let (code, v, _) = exec(&[("CNI_COMMAND", "VERSION")], "");
    assert_eq!(code, 0);
    assert_eq!(
        v["supportedVersions"],
        serde_json::json!(["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
    );
}

#[test]
fn add_prints_a_result_in_the_config_version() {
    let (code, v, _) = exec(&add_env(&[]), CONF);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["cniVersion"], "1.0.0");
    assert_eq!(v["interfaces"][0]["name"], "eth0");
}

#[test]
fn bad_input_becomes_error_json_with_the_right_code() {
    type Case<'a> = (Vec<(&'a str, &'a str)>, &'a str, u64, &'a str);
    let cases: Vec<Case> = vec![
        (add_env(&[]), "{\"cniVersion\": ", 6, "malformed JSON"),
        (
            add_env(&[("CNI_CONTAINERID", "")]),
            CONF,
            4,
            "missing container ID",
        ),
        (add_env(&[("CNI_IFNAME", "")]), CONF, 4, "missing interface"),
        (add_env(&[("CNI_NETNS", "")]), CONF, 4, "missing netns"),
        (add_env(&[("CNI_COMMAND", "")]), CONF, 4, "missing command"),
        (
            add_env(&[("CNI_COMMAND", "RESET")]),
            CONF,
            4,
            "unknown command",
        ),
        (
            add_env(&[("CNI_IFNAME", "abcdefghijklmnop")]),
            CONF,
            4,
            "16-byte interface name",
        ),
        (
            add_env(&[("CNI_CONTAINERID", "abc/def")]),
            CONF,
            4,
            "container ID with /",
        ),
    ];
    for (vars, stdin, want, what) in cases {
        let (code, v, stderr) = exec(&vars, stdin);
        assert_ne!(code, 0, "{what}: must exit non-zero");
        assert_eq!(v["code"], want, "{what}: {v}");
        assert!(v["cniVersion"].is_string(), "{what}: {v}");
        assert!(!v["msg"].as_str().unwrap_or("").is_empty(), "{what}: {v}");
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    }
}

#[test]
fn logs_go_to_the_configured_file_and_stderr_never_stdout() {
    let log = std::env::temp_dir().join(format!("podwire-entry-log-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let conf = serde_json::json!({
        "cniVersion": "1.0.0", "name": "net", "type": "noop-plugin",
        "logFile": log, "logLevel": "debug"
    })
    .to_string();
    let (code, v, _) = exec(&add_env(&[]), &conf);
    assert_eq!(code, 0);
    assert_eq!(v["cniVersion"], "1.0.0", "stdout is the result alone");
    let (code, v, stderr) = exec(&add_env(&[("CNI_IFNAME", "x/y")]), &conf);
    assert_eq!((code, v["code"].as_u64()), (1, Some(4)));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("debug noop-plugin ADD ctr1/eth0"), "{text}");
    // the environment error is found before the config is read, so it reaches stderr only
    assert!(stderr.contains("invalid interface name"), "{stderr}");
    std::fs::remove_file(&log).unwrap();
}
