//! The throwaway world a run lives in: a "node" netns that holds every bridge, one fresh netns
//! per pod, and a private state directory. All of it is removed when the `Scene` drops, which
//! also happens on a panic and on Ctrl-C (the signal handler only raises a flag; the run checks
//! it between plugin calls and unwinds). Leftovers of a run that was killed outright are swept
//! by the next one.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kernel::{Netns, NetnsGuard};

/// Every netns and state dir of a run starts with this, followed by the bench's pid.
pub const PREFIX: &str = "pwbench";

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Turns SIGINT/SIGTERM into a flag that `check_interrupted` acts on.
pub fn install_signal_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(sig, on_signal as *const () as libc::sighandler_t);
        }
    }
}

/// Unwinds (running every cleanup guard) when the user asked to stop.
pub fn check_interrupted() {
    if INTERRUPTED.load(Ordering::SeqCst) {
        panic!("interrupted: cleaning up");
    }
}

/// A pod's network namespace: `/run/netns/<name>`.
#[derive(Debug, Clone)]
pub struct Pod {
    pub name: String,
    pub path: String,
    /// Container ID the plugins see (unique within the run).
    pub id: String,
}

pub struct Scene {
    prefix: String,
    node_name: String,
    /// The bench thread sits in the node netns until the scene drops (children inherit it).
    guard: Option<NetnsGuard>,
    pods: RefCell<Vec<String>>,
    root: PathBuf,
}

impl Scene {
    /// Creates the node netns, moves the calling thread into it, and makes the state dir.
    pub fn new() -> std::io::Result<Scene> {
        sweep_leftovers();
        let prefix = format!("{PREFIX}{}", std::process::id());
        let node_name = format!("{prefix}-node");
        let root = std::env::temp_dir().join(&prefix);
        std::fs::create_dir_all(&root)?;
        let node = Netns::add(&node_name).map_err(std::io::Error::other)?;
        let mut scene = Scene {
            prefix,
            node_name,
            guard: None,
            pods: RefCell::new(Vec::new()),
            root,
        };
        let guard = node.enter().map_err(std::io::Error::other)?;
        scene.guard = Some(guard);
        // lo up: the reference plugins and ours never need it, but a node has it.
        if let Ok(nl) = kernel::Netlink::new() {
            let _ = nl.link_set_up("lo", true);
        }
        Ok(scene)
    }

    /// Where plugin state (IPAM dataDirs) goes.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A fresh pod netns (created outside any timed region).
    pub fn pod(&self, tag: &str) -> Pod {
        check_interrupted();
        let name = format!("{}-{tag}", self.prefix);
        Netns::add(&name).unwrap_or_else(|e| panic!("create pod netns {name}: {e}"));
        self.pods.borrow_mut().push(name.clone());
        Pod {
            path: format!("{}/{name}", kernel::netns::NETNS_RUN_DIR),
            id: format!("{}-{tag}", self.prefix),
            name,
        }
    }

    pub fn pods(&self, tag: &str, n: usize) -> Vec<Pod> {
        (0..n).map(|i| self.pod(&format!("{tag}{i}"))).collect()
    }

    /// Removes pod namespaces (their remaining links go with them).
    pub fn drop_pods(&self, pods: &[Pod]) {
        let mut live = self.pods.borrow_mut();
        for p in pods {
            let _ = Netns::delete(&p.name);
            live.retain(|n| *n != p.name);
        }
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        if let Some(g) = self.guard.take() {
            let _ = g.restore();
        }
        for name in self.pods.borrow().iter() {
            let _ = Netns::delete(name);
        }
        // Bridges and host veth ends live in the node netns and go with it.
        let _ = Netns::delete(&self.node_name);
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Deletes namespaces and state dirs left by bench runs whose process is gone.
pub fn sweep_leftovers() {
    let dead = |name: &str| -> bool {
        let Some(rest) = name.strip_prefix(PREFIX) else {
            return false;
        };
        let pid: String = rest.chars().take_while(char::is_ascii_digit).collect();
        !pid.is_empty() && !Path::new(&format!("/proc/{pid}")).exists()
    };
    for name in Netns::list().unwrap_or_default() {
        if dead(&name) {
            let _ = Netns::delete(&name);
        }
    }
    if let Ok(dir) = std::fs::read_dir(std::env::temp_dir()) {
        for e in dir.flatten() {
            if e.file_name().to_str().is_some_and(dead) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// Live `struct net` objects, from the slab allocator (the kernel destroys a deleted netns
/// later, in a worker; that work would land in the next timed region).
fn netns_objects() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/slabinfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("net_namespace "))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Waits until the kernel has finished tearing down deleted namespaces (the count of live
/// ones stops changing), at most `limit`. Returns how long it waited.
pub fn settle(limit: Duration) -> Duration {
    let start = Instant::now();
    let mut last = netns_objects();
    let mut stable_since = Instant::now();
    while start.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(100));
        check_interrupted();
        let now = netns_objects();
        if now != last {
            last = now;
            stable_since = Instant::now();
        } else if stable_since.elapsed() >= Duration::from_millis(400) {
            break;
        }
    }
    start.elapsed()
}
