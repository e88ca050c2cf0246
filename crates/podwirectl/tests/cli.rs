//! podwirectl as a user runs it: against fake plugins (shell scripts that record their input)
//! with no root, and against Debian's reference plugins in a namespace it makes itself.

use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("{prefix}{:x}{n:x}", std::process::id() % 0xfffff)
}

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let p = std::env::temp_dir().join(unique("podwirectl-test-"));
        std::fs::create_dir_all(p.join("net.d")).unwrap();
        std::fs::create_dir_all(p.join("bin")).unwrap();
        TempDir(p)
    }
    fn join(&self, s: &str) -> PathBuf {
        self.0.join(s)
    }
    /// A fake plugin recording its stdin and CNI_* variables in `log/<name>-<COMMAND>.*`.
    fn plugin(&self, name: &str, body: &str) {
        let log = self.join("log");
        std::fs::create_dir_all(&log).unwrap();
        let l = log.display();
        let path = self.join("bin").join(name);
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\necho \"{name} $CNI_COMMAND\" >> {l}/calls\n\
                 cat > {l}/{name}-$CNI_COMMAND.stdin\n\
                 env | grep '^CNI_' | sort > {l}/{name}-$CNI_COMMAND.env\n{body}\n"
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    fn conflist(&self, file: &str, v: Value) {
        std::fs::write(self.join("net.d").join(file), v.to_string()).unwrap();
    }
    fn logged(&self, what: &str) -> String {
        std::fs::read_to_string(self.join("log").join(what)).unwrap_or_default()
    }
    /// podwirectl with cnitool's environment pointing into this directory.
    fn ctl(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_podwirectl"))
            .args(args)
            .env("NETCONFPATH", self.join("net.d"))
            .env("CNI_PATH", self.join("bin"))
            .env("CNI_CACHE_DIR", self.join("cache"))
            .env_remove("CNI_ARGS")
            .env_remove("CAP_ARGS")
            .env_remove("CNI_IFNAME")
            .output()
            .unwrap()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const RESULT: &str = r#"{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","mac":"aa:bb:cc:dd:ee:02","sandbox":"/run/netns/x"}],"ips":[{"address":"10.252.180.2/24","gateway":"10.252.180.1","interface":0}],"routes":[{"dst":"0.0.0.0/0","gw":"10.252.180.1"}]}"#;

fn answers_add(result: &str) -> String {
    format!("if [ \"$CNI_COMMAND\" = ADD ]; then printf '%s' '{result}'; fi")
}

/// `printf %s PATH | sha512sum`, first 20 hex digits: cnitool's container ID.
fn cnitool_id(path: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("printf %s '{path}' | sha512sum"))
        .output()
        .unwrap();
    format!("cnitool-{}", &stdout(&out)[..20])
}

#[test]
fn add_check_del_with_cnitools_environment() {
    let d = TempDir::new();
    d.plugin("fake", &answers_add(RESULT));
    d.conflist(
        "10-fake.conflist",
        json!({"cniVersion": "1.0.0", "name": "fakenet",
               "plugins": [{"type": "fake", "capabilities": {"portMappings": true}}]}),
    );
    let netns = d.join("pod-ns").display().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_podwirectl"))
        .args(["add", "fakenet", &netns, "--json"])
        .env("NETCONFPATH", d.join("net.d"))
        .env("CNI_PATH", d.join("bin"))
        .env("CNI_CACHE_DIR", d.join("cache"))
        .env("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAME=web")
        .env(
            "CAP_ARGS",
            r#"{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}],"other":1}"#,
        )
        .env("CNI_IFNAME", "net1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let printed: Value = serde_json::from_str(&stdout(&out)).unwrap();
    // Compared as results: an empty `dns` may or may not be written out.
    assert_eq!(
        cni::CniResult::from_value(&printed).unwrap(),
        cni::CniResult::parse(RESULT.as_bytes()).unwrap()
    );
    let env = d.logged("fake-ADD.env");
    let cid = cnitool_id(&netns);
    for want in [
        format!("CNI_CONTAINERID={cid}"),
        format!("CNI_NETNS={netns}"),
        "CNI_IFNAME=net1".to_string(),
        "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAME=web".to_string(),
    ] {
        assert!(env.lines().any(|l| l == want), "{want} not in {env}");
    }
    let stdin: Value = serde_json::from_str(&d.logged("fake-ADD.stdin")).unwrap();
    assert_eq!(
        stdin["runtimeConfig"],
        json!({"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]})
    );

    // Human output: interfaces, IPs, routes.
    let out = d.ctl(&["add", "fakenet", &netns, "--container-id", "c2"]);
    let text = stdout(&out);
    assert!(
        text.contains("10.252.180.2/24  gateway 10.252.180.1  on eth0"),
        "{text}"
    );
    assert!(text.contains("0.0.0.0/0  via 10.252.180.1"), "{text}");

    let out = d.ctl(&["check", "fakenet", &netns, "--container-id", "c2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let check: Value = serde_json::from_str(&d.logged("fake-CHECK.stdin")).unwrap();
    assert_eq!(check["prevResult"]["ips"][0]["address"], "10.252.180.2/24");

    let out = d.ctl(&["del", "fakenet", &netns, "--container-id", "c2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!d.join("cache/results/fakenet-c2-eth0").exists());
    assert!(d
        .join(&format!("cache/results/fakenet-{cid}-net1"))
        .exists());
}

#[test]
fn errors_are_one_line_with_plugin_and_code() {
    let d = TempDir::new();
    d.plugin(
        "boom",
        r#"echo '{"cniVersion":"1.0.0","code":7,"msg":"bad config","details":"subnet 10.0.0.0/33"}'; exit 1"#,
    );
    d.conflist(
        "10.conflist",
        json!({"cniVersion": "1.0.0", "name": "bad", "plugins": [{"type": "boom"}]}),
    );
    let out = d.ctl(&["add", "bad", "/run/netns/none"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(
        err.trim(),
        r#"podwirectl: plugin type="boom" name="bad" failed (add): bad config: subnet 10.0.0.0/33 (CNI code 7)"#
    );
    let out = d.ctl(&["--json", "add", "bad", "/run/netns/none"]);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        (v["code"].as_u64(), v["plugin"].as_str()),
        (Some(7), Some("boom"))
    );

    d.plugin("crash", "echo 'line one' >&2; echo 'line two' >&2; exit 3");
    d.conflist(
        "20.conflist",
        json!({"cniVersion": "1.0.0", "name": "crash", "plugins": [{"type": "crash"}]}),
    );
    let err = stderr(&d.ctl(&["del", "crash", "/run/netns/none"]));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("type=\"crash\"") && err.contains("line one line two"),
        "{err}"
    );

    let out = d.ctl(&["add", "nosuch", "/run/netns/none"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no network config named \"nosuch\""));
    std::fs::write(
        d.join("net.d/30.conflist"),
        r#"{"cniVersion":"1.0.0","name":"x""#,
    )
    .unwrap();
    let out = d.ctl(&["add", "x", "/run/netns/none"]);
    assert!(stderr(&out).contains("30.conflist"), "{}", stderr(&out));
}

/// containerd 1.6 left an attachment in its cache; podwire takes over the node and deletes it
/// with the cached result, and what podwirectl writes has the same fields in the same order.
#[test]
fn takes_over_a_containerd_16_cache_entry_and_writes_the_same_format() {
    let d = TempDir::new();
    d.plugin("bridge", &answers_add(RESULT));
    d.plugin("portmap", &answers_add(RESULT));
    d.conflist(
        "10-containerd-net.conflist",
        json!({"cniVersion": "1.0.0", "name": "containerd-net", "plugins": [
            {"type": "bridge"}, {"type": "portmap", "capabilities": {"portMappings": true}}]}),
    );
    let fixture = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../runtime/tests/fixtures/containerd-1.6-cache.json"),
    )
    .unwrap();
    let theirs: Value = serde_json::from_str(&fixture).unwrap();
    let cid = theirs["containerId"].as_str().unwrap();
    std::fs::create_dir_all(d.join("cache/results")).unwrap();
    std::fs::write(
        d.join(&format!("cache/results/containerd-net-{cid}-eth0")),
        &fixture,
    )
    .unwrap();

    let out = d.ctl(&[
        "del",
        "containerd-net",
        "/run/netns/gone",
        "--container-id",
        cid,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let del: Value = serde_json::from_str(&d.logged("bridge-DEL.stdin")).unwrap();
    assert_eq!(del["prevResult"]["ips"][0]["address"], "10.88.0.7/16");
    assert!(!d
        .join(&format!("cache/results/containerd-net-{cid}-eth0"))
        .exists());

    let out = Command::new(env!("CARGO_BIN_EXE_podwirectl"))
        .args([
            "add",
            "containerd-net",
            "/run/netns/p",
            "--container-id",
            cid,
        ])
        .env("NETCONFPATH", d.join("net.d"))
        .env("CNI_PATH", d.join("bin"))
        .env("CNI_CACHE_DIR", d.join("cache"))
        .env("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAMESPACE=default")
        .env("CAP_ARGS", r#"{"portMappings":[]}"#)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let ours = std::fs::read_to_string(d.join(&format!("cache/results/containerd-net-{cid}-eth0")))
        .unwrap();
    let key_order = |text: &str| -> Vec<String> {
        let v: Value = serde_json::from_str(text).unwrap();
        let mut keys: Vec<(usize, String)> = v
            .as_object()
            .unwrap()
            .keys()
            .map(|k| (text.find(&format!("\"{k}\":")).unwrap(), k.clone()))
            .collect();
        keys.sort();
        keys.into_iter()
            .map(|(_, k)| k)
            .filter(|k| k != "netns")
            .collect()
    };
    assert_eq!(key_order(&ours), key_order(&fixture));
    let v: Value = serde_json::from_str(&ours).unwrap();
    for k in [
        "kind",
        "containerId",
        "config",
        "ifName",
        "networkName",
        "cniArgs",
        "result",
    ] {
        assert_eq!(
            std::mem::discriminant(&v[k]),
            std::mem::discriminant(&theirs[k]),
            "{k} has another JSON type"
        );
    }
    assert_eq!(v["netns"], "/run/netns/p");
    let mode = std::fs::metadata(d.join(&format!("cache/results/containerd-net-{cid}-eth0")))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn gc_keeps_valid_attachments_and_status_asks_110_plugins() {
    let d = TempDir::new();
    let r = RESULT.replace("1.0.0", "1.1.0");
    d.plugin("fake", &answers_add(&r));
    d.conflist(
        "10.conflist",
        json!({"cniVersion": "1.1.0", "name": "gcnet", "plugins": [{"type": "fake"}]}),
    );
    for cid in ["keep", "stale1", "stale2"] {
        assert!(d
            .ctl(&["add", "gcnet", "/run/netns/p", "--container-id", cid])
            .status
            .success());
    }
    let out = d.ctl(&["gc", "gcnet", "--valid", "keep", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        v["removed"],
        json!([{"containerID": "stale1", "ifname": "eth0"}, {"containerID": "stale2", "ifname": "eth0"}])
    );
    let gc: Value = serde_json::from_str(&d.logged("fake-GC.stdin")).unwrap();
    assert_eq!(
        gc["cni.dev/valid-attachments"],
        json!([{"containerID": "keep", "ifname": "eth0"}])
    );
    assert!(d.join("cache/results/gcnet-keep-eth0").exists());

    let out = d.ctl(&["status", "gcnet"]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("is ready"));
    d.plugin(
        "fake",
        r#"echo '{"code":50,"msg":"no addresses left"}'; exit 1"#,
    );
    let out = d.ctl(&["status", "gcnet"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no addresses left (CNI code 50)"),
        "{}",
        stderr(&out)
    );
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

struct LinkGuard(String);
impl Drop for LinkGuard {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.0])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

struct NetnsGuard(String);
impl Drop for NetnsGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(format!("/run/netns/{}", self.0)); // after a failed umount
        let _ = Command::new("ip")
            .args(["netns", "del", &self.0])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

#[test]
fn reference_plugins_in_a_namespace_podwirectl_makes() {
    if !is_root() || !Path::new("/usr/lib/cni/bridge").exists() {
        eprintln!("SKIPPED: needs root and /usr/lib/cni");
        return;
    }
    let d = TempDir::new();
    let bridge = unique("pwcb");
    let _bridge = LinkGuard(bridge.clone());
    let ns = unique("pwctl-");
    d.conflist(
        "10.conflist",
        json!({"cniVersion": "1.0.0", "name": "refnet", "plugins": [
            {"type": "bridge", "bridge": bridge, "isGateway": true,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.252.171.0/24"}]],
                      "routes": [{"dst": "0.0.0.0/0"}], "dataDir": d.join("ipam")}},
            {"type": "loopback"}]}),
    );
    let ctl = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_podwirectl"))
            .args(args)
            .env("NETCONFPATH", d.join("net.d"))
            .env("CNI_PATH", "/usr/lib/cni")
            .env("CNI_CACHE_DIR", d.join("cache"))
            .output()
            .unwrap()
    };
    let out = ctl(&["netns", "add", &ns]);
    let _ns = NetnsGuard(ns.clone());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), format!("/run/netns/{ns}"));
    assert!(stdout(&ctl(&["netns", "list"])).lines().any(|l| l == ns));

    let out = ctl(&["add", "refnet", &ns]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("10.252.171.2/24  gateway 10.252.171.1  on eth0"),
        "{text}"
    );
    assert!(text.contains(&format!("in /run/netns/{ns}")), "{text}");
    let cid = cnitool_id(&format!("/run/netns/{ns}"));
    assert!(d.join(&format!("cache/results/refnet-{cid}-eth0")).exists());
    let addrs = Command::new("ip")
        .args(["netns", "exec", &ns, "ip", "-4", "-o", "addr"])
        .output()
        .unwrap();
    assert!(stdout(&addrs).contains("10.252.171.2/24"));

    assert!(ctl(&["check", "refnet", &ns]).status.success());
    let out = ctl(&["del", "refnet", &ns]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!d.join(&format!("cache/results/refnet-{cid}-eth0")).exists());

    let out = ctl(&["netns", "del", &ns]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!Path::new(&format!("/run/netns/{ns}")).exists());
}

/// `podwirectl node setup` and `teardown`, run inside a throwaway netns standing in for a node.
#[test]
fn node_setup_and_teardown_through_the_cli() {
    if !is_root() {
        eprintln!("SKIPPED: needs root");
        return;
    }
    let d = TempDir::new();
    let ns = unique("pwctln-");
    let _ns = NetnsGuard(ns.clone());
    assert!(Command::new("ip")
        .args(["netns", "add", &ns])
        .status()
        .unwrap()
        .success());
    let node = |args: &[&str]| {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns,
                env!("CARGO_BIN_EXE_podwirectl"),
                "node",
            ])
            .args(args)
            .output()
            .unwrap()
    };
    let conf_dir = d.join("net.d").display().to_string();
    let state_dir = d.join("state").display().to_string();
    let setup = [
        "setup",
        "--pod-cidr",
        "10.252.200.0/24",
        "--cluster-cidr",
        "10.252.0.0/16",
        "--bridge",
        "pwctl0",
        "--conf-dir",
        &conf_dir,
        "--state-dir",
        &state_dir,
    ];
    let out = node(&setup);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let conf: Value = serde_json::from_str(
        &std::fs::read_to_string(d.join("net.d/10-podwire.conflist")).unwrap(),
    )
    .unwrap();
    assert_eq!(conf["plugins"][0]["type"], "podwire");
    assert_eq!(conf["plugins"][0]["bridge"], "pwctl0");
    let addr = Command::new("ip")
        .args(["-n", &ns, "-j", "addr", "show", "pwctl0"])
        .output()
        .unwrap();
    assert!(stdout(&addr).contains("10.252.200.1"), "{}", stdout(&addr));
    let again = node(&setup);
    assert!(again.status.success());
    // teardown takes setup's --bridge/--conf-dir, and refuses (changing nothing) others.
    for wrong in [["--bridge", "pwother0"], ["--conf-dir", "/etc/elsewhere"]] {
        let out = node(&["teardown", "--state-dir", &state_dir, wrong[0], wrong[1]]);
        assert!(!out.status.success(), "teardown {wrong:?} was accepted");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(wrong[1]) && err.contains("not what setup was given"),
            "{err}"
        );
        assert!(
            d.join("net.d/10-podwire.conflist").exists(),
            "refused, yet removed"
        );
    }
    let out = node(&[
        "teardown",
        "--state-dir",
        &state_dir,
        "--bridge",
        "pwctl0",
        "--conf-dir",
        &conf_dir,
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(!d.join("net.d/10-podwire.conflist").exists());
    let links = Command::new("ip")
        .args(["-n", &ns, "link", "show", "pwctl0"])
        .output()
        .unwrap();
    assert!(!links.status.success(), "the bridge setup made is gone");
}

/// Each subcommand lists and takes only its own options: cnitool's attachment options belong to
/// add/check/del (and gc's --ifname), not to node or netns.
#[test]
fn each_subcommand_takes_only_its_own_options() {
    let help = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_podwirectl"))
            .args(args)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?} --help: {}", stderr(&out));
        stdout(&out)
    };
    let cnitools = [
        "--ifname",
        "--container-id",
        "--cap-args",
        "--cni-args",
        "--cache-dir",
        "--timeout",
        "--netconfpath",
        "--cni-path",
    ];
    for sub in [
        &["node", "setup"][..],
        &["node", "teardown"],
        &["node", "install-cni"],
        &["netns", "add"],
        &["netns", "list"],
    ] {
        let text = help(sub);
        for flag in cnitools {
            assert!(!text.contains(flag), "{sub:?} --help lists {flag}:\n{text}");
        }
    }
    let setup = help(&["node", "setup"]);
    assert_eq!(
        setup.matches("/etc/cni/net.d").count(),
        1,
        "one conf dir option: {setup}"
    );
    for sub in ["add", "check", "del"] {
        let text = help(&[sub]);
        for flag in cnitools {
            assert!(text.contains(flag), "{sub} --help lacks {flag}:\n{text}");
        }
    }
    let status = help(&["status"]);
    assert!(
        !status.contains("--container-id") && status.contains("--netconfpath"),
        "{status}"
    );
    let teardown = help(&["node", "teardown"]);
    for flag in ["--conf-dir", "--state-dir", "--bridge"] {
        assert!(
            teardown.contains(flag),
            "teardown --help lacks {flag}:\n{teardown}"
        );
    }

    let out = Command::new(env!("CARGO_BIN_EXE_podwirectl"))
        .args(["node", "teardown", "--ifname", "eth0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--ifname"), "{}", stderr(&out));
}

#[test]
fn every_subcommand_help_shows_an_example() {
    for sub in [
        &[][..],
        &["add"],
        &["check"],
        &["del"],
        &["gc"],
        &["status"],
        &["netns"],
        &["netns", "add"],
        &["netns", "del"],
        &["netns", "list"],
        &["node"],
        &["node", "setup"],
        &["node", "teardown"],
        &["node", "install-cni"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_podwirectl"))
            .args(sub)
            .arg("--help")
            .output()
            .unwrap();
        let text = stdout(&out);
        assert!(out.status.success(), "{sub:?}: {}", stderr(&out));
        let example = text
            .split_once("Example")
            .map(|(_, rest)| rest)
            .unwrap_or_else(|| panic!("{sub:?} --help shows no example:\n{text}"));
        assert!(example.contains("podwirectl "), "{sub:?}: {text}");
    }
}

/// Usage errors are one line on stderr, like every other podwirectl error (exit status 2).
#[test]
fn usage_errors_are_one_line() {
    for args in [
        &["add"][..],
        &["add", "net", "ns", "--bogus"],
        &["frob"],
        &["node", "setup", "--pod-cidr", "10.1.0.0/24"],
        &["gc", "net", "--timeout", "soon"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_podwirectl"))
            .args(args)
            .env_remove("PODWIRE_CLUSTER_CIDR")
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}:\n{err}");
        assert!(err.starts_with("podwirectl: "), "{args:?}: {err}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_podwirectl"))
        .arg("add")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(
        err.contains("<NETWORK>") && err.contains("<NETNS>"),
        "names what is missing: {err}"
    );
}
