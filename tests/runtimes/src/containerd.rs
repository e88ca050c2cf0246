//! A private containerd: its own root, state, socket, runc root and CNI dirs under one directory,
//! never the system's `/run/containerd`, `/var/lib/containerd` or `/etc/cni/net.d`. Its CRI plugin
//! plays kubelet's runtime; the guard stops it by PID and removes everything, pass or fail.

use crate::cmd::{self, require, run, terminate, try_run};
use crate::conflist::Network;
use crate::cri::Cri;
use crate::{binaries, host, image};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where one private containerd keeps everything.
#[derive(Debug, Clone)]
pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    pub fn new(dir: &Path) -> Layout {
        Layout { dir: dir.into() }
    }
    pub fn config(&self) -> PathBuf {
        self.dir.join("containerd.toml")
    }
    pub fn socket(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }
    pub fn state(&self) -> PathBuf {
        self.dir.join("state")
    }
    pub fn runc_root(&self) -> PathBuf {
        self.dir.join("runc")
    }
    pub fn cni_bin(&self) -> PathBuf {
        self.dir.join("cni/bin")
    }
    pub fn cni_conf(&self) -> PathBuf {
        self.dir.join("cni/net.d")
    }
    /// podwire-ipam's `dataDir`.
    pub fn ipam_dir(&self) -> PathBuf {
        self.dir.join("ipam")
    }
    /// podwire's `logFile`.
    pub fn plugin_log(&self) -> PathBuf {
        self.dir.join("podwire.log")
    }
    pub fn containerd_log(&self) -> PathBuf {
        self.dir.join("containerd.log")
    }
    pub fn pod_logs(&self) -> PathBuf {
        self.dir.join("pod-logs")
    }
    pub fn images(&self) -> PathBuf {
        self.dir.join("images")
    }
    /// containerd's PID, for a teardown by another process (the demo's trap).
    pub fn pid_file(&self) -> PathBuf {
        self.dir.join("containerd.pid")
    }
    /// Which host-wide paths existed before the run (see [`host::Baseline`]).
    pub fn baseline_file(&self) -> PathBuf {
        self.dir.join("host-baseline")
    }
    /// The network this dir was prepared for.
    pub fn network_file(&self) -> PathBuf {
        self.dir.join("network.json")
    }

    /// containerd's config for these machines: CRI with podwire's CNI dirs, the local pause image,
    /// `restrict_oom_score_adj` (runc cannot write oom_score_adj without CAP_SYS_RESOURCE), no
    /// AppArmor, cgroupfs (no systemd), netns mounts and runc state under the private dirs.
    pub fn config_toml(&self) -> String {
        let p = |p: PathBuf| p.to_string_lossy().into_owned();
        format!(
            r#"# A private containerd for podwire's runtime suite and demo.
version = 2
root = "{root}"
state = "{state}"
# No /opt/containerd, no snapshotters or runtimes this does not use.
disabled_plugins = [
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "{socket}"

[ttrpc]
  address = "{socket}.ttrpc"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_bin}"
    conf_dir = "{cni_conf}"
    max_conf_num = 1

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{runc_root}"
"#,
            root = p(self.root()),
            state = p(self.state()),
            socket = p(self.socket()),
            pause = image::PAUSE_IMAGE,
            cni_bin = p(self.cni_bin()),
            cni_conf = p(self.cni_conf()),
            runc_root = p(self.runc_root()),
        )
    }

    /// Everything containerd needs before it starts: notes the host baseline, clears what a killed
    /// earlier run of `network` left, writes the config, the CNI bin dir (podwire + loopback), the
    /// podwire conflist and the image archives (pause, busybox).
    pub fn prepare(&self, network: &Network) {
        std::fs::create_dir_all(&self.dir).expect("create the private dir");
        host::Baseline::capture().save(&self.baseline_file());
        host::scrub(&network.name, &network.bridge);
        network.save(&self.network_file());
        image::pause_archive(&self.images());
        image::busybox_archive(&self.images());
        for d in [
            self.cni_conf(),
            self.ipam_dir(),
            self.pod_logs(),
            self.images(),
        ] {
            std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        }
        binaries::install_cni_bin_dir(&self.cni_bin());
        let conflist = network.conflist(&self.ipam_dir(), &self.plugin_log());
        std::fs::write(
            self.cni_conf().join("10-podwire.conflist"),
            serde_json::to_string_pretty(&conflist).expect("conflist JSON"),
        )
        .expect("write conflist");
        std::fs::write(self.config(), self.config_toml()).expect("write containerd.toml");
    }

    /// As [`Layout::prepare`] for a node whose network is not set up yet: no conflist, no
    /// plugins (the CNI dirs stay empty until a DaemonSet fills them), the pause image only.
    pub fn prepare_bare(&self) {
        std::fs::create_dir_all(&self.dir).expect("create the private dir");
        host::Baseline::capture().save(&self.baseline_file());
        image::pause_archive(&self.images());
        for d in [self.cni_conf(), self.cni_bin(), self.pod_logs()] {
            std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        }
        std::fs::write(self.config(), self.config_toml()).expect("write containerd.toml");
    }

    /// The network saved by [`Layout::prepare`].
    pub fn network(&self) -> Network {
        Network::load(&self.network_file())
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.containerd_log()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// `ctr` against this containerd, in CRI's namespace.
    pub fn ctr(&self, args: &[&str]) -> Result<String, String> {
        let sock = self.socket();
        let mut full = vec!["--address", sock.to_str().unwrap(), "--namespace", "k8s.io"];
        full.extend_from_slice(args);
        try_run("ctr", &full)
    }

    /// Imports the archives [`Layout::prepare`] built: the pause image (CRI's `sandbox_image`) and
    /// busybox.
    pub fn import_images(&self) -> Result<(), String> {
        for (archive, name) in [
            ("pause.tar", image::PAUSE_IMAGE),
            ("busybox-oci.tar", image::BUSYBOX_IMAGE),
        ] {
            self.import_image(&self.images().join(archive), name)?;
        }
        Ok(())
    }

    /// Imports one OCI archive and checks containerd now lists it as `name`.
    pub fn import_image(&self, archive: &Path, name: &str) -> Result<(), String> {
        self.ctr(&["images", "import", archive.to_str().unwrap()])
            .map_err(|e| format!("import {name}: {e}"))?;
        let listed = self.ctr(&["images", "ls", "-q"])?;
        if !listed.lines().any(|l| l == name) {
            return Err(format!(
                "ctr images import did not register {name}: {listed}"
            ));
        }
        Ok(())
    }

    /// Waits for the socket, then for CRI's Status to report NetworkReady (the CNI config loaded).
    /// `alive` tells whether containerd is still running, to fail fast when it died.
    pub fn wait_ready(&self, alive: &mut dyn FnMut() -> bool) -> Result<(), String> {
        self.wait_condition("NetworkReady", alive)
    }

    /// Waits for the socket, then for CRI's Status to report `condition` (RuntimeReady,
    /// NetworkReady).
    pub fn wait_condition(
        &self,
        condition: &str,
        alive: &mut dyn FnMut() -> bool,
    ) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = String::from("no socket");
        while Instant::now() < deadline {
            if !alive() {
                return Err(format!("containerd exited:\n{}", self.log_tail()));
            }
            if self.socket().exists() {
                match Cri::connect(&self.socket()).and_then(|c| c.conditions()) {
                    Ok(conds) if conds.get(condition).is_some_and(|(ready, _)| *ready) => {
                        return Ok(())
                    }
                    Ok(conds) => last = format!("{conds:?}"),
                    Err(e) if e.contains("unknown service") => {
                        return Err(format!(
                            "containerd serves no CRI: {e}\n{}",
                            self.log_tail()
                        ))
                    }
                    Err(e) => last = e,
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "CRI not ready in 30 s: {last}\n{}",
            self.log_tail()
        ))
    }

    /// Removes every sandbox through CRI (stop, then remove), as kubelet would on drain.
    pub fn remove_all_pods(&self) -> Result<(), String> {
        let cri = Cri::connect(&self.socket())?;
        let mut errors = Vec::new();
        for (id, _) in cri.list_pods()? {
            if let Err(e) = cri.stop_pod(&id).and_then(|_| cri.remove_pod(&id)) {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    /// IDs of the sandboxes this containerd still has directories for.
    fn sandbox_ids(&self) -> Vec<String> {
        let cri = "io.containerd.grpc.v1.cri/sandboxes";
        let mut ids: Vec<String> = [self.root().join(cri), self.state().join(cri)]
            .iter()
            .filter_map(|d| std::fs::read_dir(d).ok())
            .flatten()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// Everything of this run's network left on the host (see [`host::leftovers`]).
    pub fn leftovers(&self) -> Vec<String> {
        let n = self.network();
        host::leftovers(&n.name, &n.bridge, &self.ipam_dir())
    }

    /// Undoes a run, whoever started it: removes the sandboxes through CRI (so podwire's DEL runs),
    /// stops containerd (PID from the pid file), its shims and the containers they ran, unmounts
    /// and removes what is left, and the dir itself unless `keep_dir`.
    pub fn teardown(&self, keep_dir: bool) {
        let pid = std::fs::read_to_string(self.pid_file())
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok());
        if pid.is_some_and(cmd::alive) {
            if let Err(e) = self.remove_all_pods() {
                eprintln!("podwire e2e: removing sandboxes at teardown: {e}");
            }
        }
        if let Some(pid) = pid {
            terminate(pid, Duration::from_secs(10));
        }
        // Shims outlive containerd by design: kill the containers they ran, then any of ours.
        let runc_root = self.runc_root().join("k8s.io");
        let root = runc_root.to_string_lossy().into_owned();
        if let Ok(list) = try_run("runc", &["--root", &root, "list", "-q"]) {
            for id in list.lines().filter(|l| !l.is_empty()) {
                let _ = try_run("runc", &["--root", &root, "kill", id, "KILL"]);
                let _ = try_run("runc", &["--root", &root, "delete", "--force", id]);
            }
        }
        let sock = self.socket().to_string_lossy().into_owned();
        for pid in cmd::pids_with_cmdline(&["containerd-shim", &sock]) {
            terminate(pid, Duration::from_secs(2));
        }
        // Sandboxes containerd could not remove (it was dead) keep their loopback cache entries.
        for id in self.sandbox_ids() {
            let _ = std::fs::remove_file(host::cache_entry("cni-loopback", &id, "lo"));
        }
        cmd::unmount_below(&self.dir);
        if self.network_file().exists() {
            let n = self.network();
            host::scrub(&n.name, &n.bridge);
        }
        if let Some(baseline) = host::Baseline::load(&self.baseline_file()) {
            baseline.restore();
        }
        if !keep_dir {
            if let Err(e) = std::fs::remove_dir_all(&self.dir) {
                eprintln!("podwire e2e: remove {}: {e}", self.dir.display());
            }
        }
    }
}

/// The tools a containerd run needs: a failure naming the package when one is missing.
pub fn require_tools() {
    require("containerd", "containerd");
    require("ctr", "containerd");
    require("runc", "runc");
    require("nsenter", "util-linux");
}

/// A running private containerd. Dropping it tears the run down ([`Layout::teardown`]), pass or
/// fail.
pub struct Containerd {
    pub layout: Layout,
    pub network: Network,
    child: Option<Child>,
    keep_dir: bool,
}

impl Containerd {
    /// Starts containerd in a fresh private dir with `network` as its only CNI network, imports
    /// the images and waits until CRI reports the network ready.
    pub fn start(network: Network) -> Containerd {
        Self::start_in(&crate::private_dir("podwire-containerd"), network, false)
    }

    /// As [`Containerd::start`] in a given dir; `keep_dir` leaves the dir (logs) on drop.
    pub fn start_in(dir: &Path, network: Network, keep_dir: bool) -> Containerd {
        require_tools();
        let layout = Layout::new(dir);
        layout.prepare(&network);
        let child = spawn(&layout, None);
        let mut c = Containerd {
            layout,
            network,
            child: Some(child),
            keep_dir,
        };
        let child = c.child.as_mut().expect("just started");
        c.layout
            .wait_ready(&mut || matches!(child.try_wait(), Ok(None)))
            .and_then(|_| c.layout.import_images())
            .unwrap_or_else(|e| panic!("{e}"));
        c
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn socket(&self) -> PathBuf {
        self.layout.socket()
    }

    pub fn cri(&self) -> Cri {
        Cri::connect(&self.socket()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// podwire's log (the conflist's `logFile`).
    pub fn plugin_log(&self) -> String {
        std::fs::read_to_string(self.layout.plugin_log()).unwrap_or_default()
    }

    /// Everything of our network left on the host (see [`host::leftovers`]).
    pub fn leftovers(&self) -> Vec<String> {
        self.layout.leftovers()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.layout.teardown(self.keep_dir);
        // Reap it (teardown signalled it by PID).
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
}

/// Starts containerd on `layout` (in the network namespace at `netns` when given: `nsenter`
/// execs it in place, so the PID is containerd's and the mount namespace stays the host's) and
/// notes its PID for the teardown.
fn spawn(layout: &Layout, netns: Option<&Path>) -> Child {
    let log = std::fs::File::create(layout.containerd_log()).expect("containerd log");
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net={}", ns.display())).arg("containerd");
            c
        }
        None => Command::new("containerd"),
    };
    let child = cmd
        .arg("--config")
        .arg(layout.config())
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log fd"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("start containerd: {e}"));
    std::fs::write(layout.pid_file(), child.id().to_string()).expect("write pid file");
    child
}

/// A private containerd running inside a node's network namespace, as a node's own runtime:
/// a pod with `hostNetwork` gets that namespace. Its CNI dirs ([`Layout::cni_bin`],
/// [`Layout::cni_conf`]) start empty (the node is not networked yet, CRI reports no
/// NetworkReady), for a DaemonSet to fill. Dropping it tears the run down, pass or fail.
pub struct NodeContainerd {
    pub layout: Layout,
    child: Option<Child>,
}

impl NodeContainerd {
    /// Starts containerd in `dir` inside the netns at `netns`, imports the pause image and
    /// waits for CRI's RuntimeReady.
    pub fn start(dir: &Path, netns: &Path) -> NodeContainerd {
        require_tools();
        let layout = Layout::new(dir);
        layout.prepare_bare();
        let child = spawn(&layout, Some(netns));
        let mut c = NodeContainerd {
            layout,
            child: Some(child),
        };
        let child = c.child.as_mut().expect("just started");
        c.layout
            .wait_condition("RuntimeReady", &mut || matches!(child.try_wait(), Ok(None)))
            .and_then(|_| {
                c.layout
                    .import_image(&c.layout.images().join("pause.tar"), image::PAUSE_IMAGE)
            })
            .unwrap_or_else(|e| panic!("{e}"));
        c
    }

    pub fn cri(&self) -> Cri {
        Cri::connect(&self.layout.socket()).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for NodeContainerd {
    fn drop(&mut self) {
        self.layout.teardown(false);
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
}

/// containerd's version line, for reports.
pub fn version() -> String {
    run("containerd", &["--version"]).trim().to_string()
}
