//! Test helpers: temp dirs, fake plugins written as shell scripts, and Drop guards for the
//! network namespaces and links a test makes. Names are unique per process and call.
#![allow(dead_code)]

use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A short name unique to this process and call (fits in IFNAMSIZ with a 4-char prefix).
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("{prefix}{:x}{n:x}", std::process::id() % 0xfffff)
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(unique(&format!("podwire-rt-{tag}-")));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes an executable shell script (tests may use shell; the library never does).
pub fn script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace at /run/netns/NAME, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new() -> Netns {
        let name = unique("pwrt-");
        run("ip", &["netns", "add", &name]);
        Netns { name }
    }
    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }
    /// `ip` run inside the namespace.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut full = vec!["netns", "exec", &self.name, "ip"];
        full.extend_from_slice(args);
        run("ip", &full)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A throwaway "node" netns the calling thread works in until dropped: the plugins it execs
/// inherit it, so their bridge and firewall rules (the reference portmap never removes its
/// top-level CNI-HOSTPORT-* chains) go with it instead of staying on the host.
pub struct NodeNetns {
    home: std::fs::File,
    _ns: Netns,
}

impl NodeNetns {
    pub fn enter() -> NodeNetns {
        let ns = Netns::new();
        let home = std::fs::File::open("/proc/thread-self/ns/net").unwrap();
        let node = std::fs::File::open(ns.path()).unwrap();
        // SAFETY: valid namespace fds; only this thread changes netns.
        assert_eq!(
            unsafe { libc::setns(node.as_raw_fd(), libc::CLONE_NEWNET) },
            0
        );
        NodeNetns { home, _ns: ns }
    }
}

impl Drop for NodeNetns {
    fn drop(&mut self) {
        // Back home first: the netns is then deleted by `_ns`.
        // SAFETY: a valid namespace fd.
        unsafe { libc::setns(self.home.as_raw_fd(), libc::CLONE_NEWNET) };
    }
}

/// A host link deleted on drop (the bridge a test's plugins create).
pub struct Link(pub String);

impl Drop for Link {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.0])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

pub fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// A fake plugin `name` in `bin`: it records each call in `log/calls`, its stdin in
/// `log/<name>-<COMMAND>.stdin` and its `CNI_*` variables in `log/<name>-<COMMAND>.env`, then
/// runs `body` (shell, with `$CNI_COMMAND` set).
pub fn fake_plugin(bin: &Path, log: &Path, name: &str, body: &str) {
    std::fs::create_dir_all(log).unwrap();
    let l = log.display();
    script(
        &bin.join(name),
        &format!(
            "echo \"{name} $CNI_COMMAND\" >> {l}/calls\n\
             cat > {l}/{name}-$CNI_COMMAND.stdin\n\
             env | grep '^CNI_' | sort > {l}/{name}-$CNI_COMMAND.env\n\
             {body}"
        ),
    );
}

/// A fake plugin body printing `result` for ADD and nothing otherwise.
pub fn answers_add(result: &str) -> String {
    format!("if [ \"$CNI_COMMAND\" = ADD ]; then printf '%s' '{result}'; fi")
}

pub fn read_json(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn calls(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log.join("calls"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}
