//! Privilege hygiene: the plugins run as root on input from the runtime, so what they leave on
//! disk is private (directories 0700, files 0600), no symlink in a state or cache directory is
//! followed, no plugin path runs a shell or any other program (only a delegated IPAM found in
//! `CNI_PATH`, as libcni does), and the fault-injection hook is inert in a normal build.

use podwire_reliability_tests::node::Node;
use podwire_reliability_tests::plugin::{self, Call};
use podwire_reliability_tests::report::Report;
use podwire_reliability_tests::{binaries, is_root};
use runtime::{NetworkConfigList, RuntimeConf};
use serde_json::json;
use std::os::unix::fs::symlink;
use std::path::Path;

const NET: &str = "hygiene";

fn conf(node: &Node, subnet: &str) -> serde_json::Value {
    json!({"cniVersion": "1.1.0", "name": NET, "type": "podwire", "bridge": "pwhyg0",
           "isGateway": true, "ipMasq": true,
           "ipam": {"type": "podwire-ipam", "subnet": subnet, "dataDir": node.data_dir()}})
}

/// (path, mode) of everything below `dir` whose permissions are not 0700 (dirs) / 0600 (files).
fn loose(dir: &Path) -> Vec<String> {
    Node::tree(dir)
        .into_iter()
        .filter(|(_, mode)| {
            let is_dir = mode & 0o170000 == 0o040000;
            mode & 0o777 != if is_dir { 0o700 } else { 0o600 }
        })
        .map(|(p, m)| format!("{p} {:o}", m & 0o7777))
        .collect()
}

#[test]
fn state_and_cache_are_private() {
    assert!(is_root(), "needs root (netns)");
    let podwire = binaries::release("podwire");
    let node = Node::new();
    let pod = node.pod();
    let list = NetworkConfigList::from_bytes(
        json!({"cniVersion": "1.1.0", "name": NET, "plugins": [conf(&node, "10.81.0.0/24")]})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let cni = node.runtime(podwire.parent().unwrap(), None);
    let rt = RuntimeConf {
        container_id: "hyg1".into(),
        netns: pod.path.clone(),
        ifname: "eth0".into(),
        ..Default::default()
    };
    {
        let _in_node = node.enter();
        cni.add_network_list(&list, &rt).unwrap();
    }
    let state = loose(&node.data_dir());
    let cache = loose(&node.cache_dir());
    let mut report = Report::new("hygiene-modes");
    report.line(format!(
        "after ADD: {} entries under dataDir, {} under the cache dir; not 0700/0600: {:?} {:?}",
        Node::tree(&node.data_dir()).len(),
        Node::tree(&node.cache_dir()).len(),
        state,
        cache
    ));
    report.finish();
    assert!(
        Node::tree(&node.data_dir()).len() >= 4,
        "ADD wrote no state?"
    );
    assert!(state.is_empty(), "IPAM state not private: {state:?}");
    assert!(cache.is_empty(), "cache not private: {cache:?}");
}

/// IPAM state: an `<ip>` file planted as a symlink is never written through, and an address
/// file that is a symlink is simply taken (never handed out, never followed).
#[test]
fn symlinks_in_the_state_dir_are_not_followed() {
    assert!(is_root(), "needs root (netns)");
    let podwire = binaries::release("podwire");
    let node = Node::new();
    let pod = node.pod();
    let net_dir = node.data_dir().join(NET);
    std::fs::create_dir_all(&net_dir).unwrap();
    let victim = node.dir.join("victim");
    std::fs::write(&victim, "precious").unwrap();
    // Every address of a /29 but one is a planted link to the victim.
    for host in 2..=5 {
        symlink(&victim, net_dir.join(format!("10.82.0.{host}"))).unwrap();
    }
    symlink(&victim, net_dir.join("last_reserved_ip.0")).unwrap();
    let c = conf(&node, "10.82.0.0/29");
    let add = plugin::run(
        &podwire,
        Some(&node.ns),
        &Call::attachment("ADD", "hyg2", &pod.path, c.to_string().as_bytes()),
        None,
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert_eq!(add.code, Some(0), "{} {}", add.stdout, add.stderr);
    let v: serde_json::Value = serde_json::from_str(&add.stdout).unwrap();
    assert_eq!(
        v["ips"][0]["address"], "10.82.0.6/29",
        "the only free address"
    );
    let del = plugin::run(
        &podwire,
        Some(&node.ns),
        &Call::attachment("DEL", "hyg2", &pod.path, c.to_string().as_bytes()),
        None,
    );
    assert_eq!(del.code, Some(0), "{}", del.stdout);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    for host in 2..=5 {
        let p = net_dir.join(format!("10.82.0.{host}"));
        assert!(p.symlink_metadata().unwrap().file_type().is_symlink());
    }
}

/// The runtime library's cache: a result file planted as a symlink is replaced, not written
/// through.
#[test]
fn a_symlinked_cache_file_is_replaced_not_followed() {
    let dir = std::env::temp_dir().join(podwire_reliability_tests::node::unique("podwire-hyg-"));
    let cache = runtime::Cache::new(dir.join("cache"));
    std::fs::create_dir_all(cache.results_dir()).unwrap();
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let path = cache.file_path(NET, "c1", "eth0").unwrap();
    symlink(&victim, &path).unwrap();
    cache
        .write(&runtime::CacheEntry {
            container_id: "c1".into(),
            network_name: NET.into(),
            ifname: "eth0".into(),
            ..Default::default()
        })
        .unwrap();
    let kept = std::fs::read_to_string(&victim).unwrap();
    let replaced = !path.symlink_metadata().unwrap().file_type().is_symlink();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(kept, "precious");
    assert!(replaced);
}

/// Every `execve` a plugin makes, through strace: the plugin's own, and nothing else.
fn execs(bin: &Path, node: &Node, call: &Call) -> Vec<String> {
    let trace = node.dir.join(format!(
        "trace-{}",
        podwire_reliability_tests::node::unique("t")
    ));
    let mut wrapped = call.clone();
    wrapped
        .env
        .push(("PATH".into(), "/usr/sbin:/usr/bin:/sbin:/bin".into()));
    let strace = Path::new("/usr/bin/strace");
    let args = [
        "-f".to_string(),
        "-qq".into(),
        "-e".into(),
        "trace=execve,execveat".into(),
        "-o".into(),
        trace.display().to_string(),
        bin.display().to_string(),
    ];
    // strace takes the plugin's environment and passes it on; the plugin is its argument.
    let out = plugin::run_with_args(strace, &args, Some(&node.ns), &wrapped, None);
    assert!(out.code.is_some(), "strace run failed: {}", out.stderr);
    std::fs::read_to_string(&trace)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("execve"))
        .map(str::to_string)
        .collect()
}

#[test]
fn no_plugin_path_runs_another_program() {
    assert!(is_root(), "needs root (netns)");
    let podwire = binaries::release("podwire");
    let ipam_bin = binaries::release("podwire-ipam");
    let mut report = Report::new("hygiene-exec");

    // Statically: the only process spawn in plugin code is the delegated IPAM (cni::invoke).
    let ws = binaries::workspace();
    let mut spawns = Vec::new();
    for krate in ["cni", "kernel", "ipam", "bridge"] {
        for (path, _) in Node::tree(&ws.join("crates").join(krate).join("src")) {
            if !path.ends_with(".rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (i, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                if [
                    "Command::new",
                    "process::Command",
                    "execv",
                    "/bin/sh",
                    "libc::system",
                    "posix_spawn",
                ]
                .iter()
                .any(|needle| code.contains(needle))
                {
                    spawns.push(format!(
                        "{}:{}",
                        path.trim_start_matches(&ws.display().to_string()),
                        i + 1
                    ));
                }
            }
        }
    }
    report.line(format!("process spawns in plugin sources: {spawns:?}"));
    assert!(
        spawns
            .iter()
            .all(|s| s.contains("crates/cni/src/invoke.rs")),
        "only cni::invoke (delegated IPAM) may spawn a process: {spawns:?}"
    );

    // Dynamically: every command of both plugins under strace.
    if !Path::new("/usr/bin/strace").exists() {
        report.line(
            "strace not installed: the runtime exec check was skipped (apt-get install strace)",
        );
        report.finish();
        return;
    }
    let node = Node::new();
    let pod = node.pod();
    let mut c = conf(&node, "10.83.0.0/24");
    let mut total = 0;
    let mut extra = Vec::new();
    let mut run = |bin: &Path, command: &str, stdin: &serde_json::Value| {
        let call = Call::attachment(command, "hyg3", &pod.path, stdin.to_string().as_bytes());
        let seen = execs(bin, &node, &call);
        total += 1;
        if seen.len() != 1 {
            extra.push(format!("{} {command}: {seen:?}", bin.display()));
        }
    };
    run(&podwire, "ADD", &c);
    c["cni.dev/valid-attachments"] = json!([{"containerID": "hyg3", "ifname": "eth0"}]);
    for cmd in ["GC", "STATUS", "VERSION", "DEL"] {
        run(&podwire, cmd, &c);
    }
    let mut ic = c.clone();
    ic["type"] = json!("podwire-ipam");
    for cmd in ["ADD", "CHECK", "GC", "STATUS", "DEL"] {
        run(&ipam_bin, cmd, &ic);
    }
    report.line(format!(
        "{total} plugin runs under strace (podwire ADD/GC/STATUS/VERSION/DEL, podwire-ipam ADD/CHECK/GC/STATUS/DEL): {} ran another program",
        extra.len()
    ));
    report.finish();
    assert!(extra.is_empty(), "{extra:#?}");
}

/// `PODWIRE_FAULT` means nothing to a normal build: the hook compiles to nothing.
#[test]
fn fault_injection_is_inert_in_the_release_build() {
    assert!(is_root(), "needs root (netns)");
    let podwire = binaries::release("podwire");
    let node = Node::new();
    let pod = node.pod();
    let c = conf(&node, "10.84.0.0/24");
    let out = plugin::run(
        &podwire,
        Some(&node.ns),
        &Call::attachment("ADD", "hyg5", &pod.path, c.to_string().as_bytes())
            .var(ipam::fault::ENV, Some("veth")),
        None,
    );
    assert_eq!(
        out.code,
        Some(0),
        "{:?} {} {}",
        out.signal,
        out.stdout,
        out.stderr
    );
}
