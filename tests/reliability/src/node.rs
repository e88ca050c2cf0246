//! A throwaway node: its own network namespace (where the plugin runs, so bridges, nft tables and
//! sysctls never touch the real host), a private directory for IPAM state and the result cache,
//! and throwaway pod namespaces. Everything goes on Drop, even when the test fails.

use kernel::{Netlink, Netns, NetnsGuard};
use runtime::{CniConfig, Exec};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A name no other test (or test process) uses: `<prefix><pid>x<n>`.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}x{}",
        std::process::id() % 100_000,
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

pub struct Node {
    pub name: String,
    pub ns: Netns,
    pub dir: PathBuf,
    pods: Mutex<Vec<String>>,
}

/// A pod's network namespace: its path is what a runtime passes as `CNI_NETNS`.
pub struct Pod {
    pub name: String,
    pub path: String,
    pub ns: Netns,
}

impl Node {
    pub fn new() -> Node {
        let name = unique("pwr");
        let ns = Netns::add(&name).expect("create node netns");
        let node = Node {
            name,
            ns,
            dir: std::env::temp_dir().join(unique("podwire-reliability-")),
            pods: Mutex::new(Vec::new()),
        };
        Netlink::new_in(&node.ns)
            .and_then(|nl| nl.link_set_up("lo", true))
            .expect("lo up in node");
        std::fs::create_dir_all(&node.dir).expect("create state dir");
        node
    }

    /// IPAM `dataDir`.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("ipam")
    }

    /// The runtime's result cache.
    pub fn cache_dir(&self) -> PathBuf {
        self.dir.join("cache")
    }

    /// The runtime side for this node: plugins from `plugin_dir`, results cached in
    /// [`Node::cache_dir`], plugin stderr kept out of the test output, each call killed after
    /// `timeout` (`None`: never).
    pub fn runtime(&self, plugin_dir: &Path, timeout: Option<Duration>) -> CniConfig {
        CniConfig::new(vec![plugin_dir.to_path_buf()])
            .with_cache_dir(self.cache_dir())
            .with_exec(Exec {
                timeout,
                forward_stderr: false,
                ..Exec::default()
            })
    }

    pub fn pod(&self) -> Pod {
        let name = unique("pwq");
        let ns = Netns::add(&name).expect("create pod netns");
        self.pods.lock().unwrap().push(name.clone());
        Pod {
            path: format!("{}/{name}", kernel::netns::NETNS_RUN_DIR),
            name,
            ns,
        }
    }

    /// Removes a pod's namespace, as a runtime does when the sandbox goes (the kernel then
    /// destroys the veth pair with it).
    pub fn delete_pod(&self, pod: Pod) {
        let _ = Netns::delete(&pod.name);
        self.pods.lock().unwrap().retain(|p| *p != pod.name);
    }

    /// Moves the calling thread into the node until the guard drops; plugins spawned meanwhile
    /// (by this harness or by the runtime library) run in the node.
    pub fn enter(&self) -> NetnsGuard {
        self.ns.enter().expect("enter node netns")
    }

    pub fn netlink(&self) -> Netlink {
        Netlink::new_in(&self.ns).expect("netlink in node")
    }

    /// Every file and directory below `dir`, with its mode (for "nothing changed on disk").
    pub fn tree(dir: &Path) -> Vec<(String, u32)> {
        use std::os::unix::fs::MetadataExt;
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                let Ok(m) = std::fs::symlink_metadata(&p) else {
                    continue;
                };
                out.push((p.display().to_string(), m.mode()));
                if m.is_dir() {
                    stack.push(p);
                }
            }
        }
        out.sort();
        out
    }
}

impl Default for Node {
    fn default() -> Self {
        Node::new()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        for p in self.pods.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = Netns::delete(p);
        }
        let _ = Netns::delete(&self.name);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
