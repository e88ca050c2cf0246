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

    /// Writes the config, the CNI bin dir (podwire + loopback) and the podwire conflist.
    pub fn prepare(&self, network: &Network) {
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
}

/// A running private containerd. Dropping it removes its sandboxes through CRI (so podwire's DEL
/// runs), stops containerd, its shims and their containers by PID, and removes everything.
pub struct Containerd {
    pub layout: Layout,
    pub network: Network,
    child: Option<Child>,
    keep_dir: bool,
    shut_down: bool,
    baseline: host::Baseline,
}

impl Containerd {
    /// Starts containerd in a fresh private dir with `network` as its only CNI network, imports
    /// the pause image and waits until CRI reports the network ready.
    pub fn start(network: Network) -> Containerd {
        Self::start_in(&crate::private_dir("podwire-containerd"), network, false)
    }

    /// As [`Containerd::start`] in a given dir; `keep_dir` leaves the dir (logs) on drop.
    pub fn start_in(dir: &Path, network: Network, keep_dir: bool) -> Containerd {
        require("containerd", "containerd");
        require("ctr", "containerd");
        require("runc", "runc");
        require("nsenter", "util-linux");
        let layout = Layout::new(dir);
        let baseline = host::Baseline::capture();
        // A run killed before its guard ran may have left our bridge or cache entries.
        host::scrub(&network.name, &network.bridge);
        layout.prepare(&network);
        let log = std::fs::File::create(layout.containerd_log()).expect("containerd log");
        let child = Command::new("containerd")
            .arg("--config")
            .arg(layout.config())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start containerd: {e}"));
        let mut c = Containerd {
            layout,
            network,
            child: Some(child),
            keep_dir,
            shut_down: false,
            baseline,
        };
        c.wait_for_socket();
        c.import_images();
        c.wait_network_ready();
        c
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn socket(&self) -> PathBuf {
        self.layout.socket()
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.layout.containerd_log()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn wait_for_socket(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.layout.socket().exists() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "containerd exited ({status}) before serving:\n{}",
                    self.log_tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "containerd did not create {} in 30 s:\n{}",
                self.layout.socket().display(),
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `ctr` against our socket, in CRI's namespace.
    pub fn ctr(&self, args: &[&str]) -> Result<String, String> {
        let sock = self.layout.socket();
        let mut full = vec!["--address", sock.to_str().unwrap(), "--namespace", "k8s.io"];
        full.extend_from_slice(args);
        try_run("ctr", &full)
    }

    /// The pause image (CRI's `sandbox_image`) and busybox, from archives built here.
    fn import_images(&self) {
        let dir = self.layout.images();
        for (archive, name) in [
            (image::pause_archive(&dir), image::PAUSE_IMAGE),
            (image::busybox_archive(&dir), image::BUSYBOX_IMAGE),
        ] {
            self.ctr(&["images", "import", archive.to_str().unwrap()])
                .unwrap_or_else(|e| panic!("import {name}: {e}"));
            let listed = self.ctr(&["images", "ls", "-q"]).unwrap_or_default();
            assert!(
                listed.lines().any(|l| l == name),
                "ctr images import did not register {name}: {listed}"
            );
        }
    }

    /// CRI's Status: NetworkReady turns true once the CNI config has been loaded.
    fn wait_network_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = String::new();
        while Instant::now() < deadline {
            match Cri::connect(&self.socket()).and_then(|c| c.conditions()) {
                Ok(conds) => {
                    if conds.get("NetworkReady").is_some_and(|(ready, _)| *ready) {
                        return;
                    }
                    last = format!("{conds:?}");
                }
                Err(e) if e.contains("unknown service") => {
                    panic!("containerd serves no CRI: {e}\n{}", self.log_tail())
                }
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "CRI never reported NetworkReady: {last}\n{}",
            self.log_tail()
        );
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
        host::leftovers(
            &self.network.name,
            &self.network.bridge,
            &self.layout.ipam_dir(),
        )
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

    /// Stops containerd, its shims and what they run, then removes everything of this run.
    fn shut_down(&mut self) {
        if std::mem::replace(&mut self.shut_down, true) {
            return;
        }
        if self.child.is_some() {
            if let Err(e) = self.remove_all_pods() {
                eprintln!("podwire e2e: removing sandboxes at teardown: {e}");
            }
        }
        if let Some(mut child) = self.child.take() {
            terminate(child.id(), Duration::from_secs(10));
            let _ = child.wait();
        }
        // Shims outlive containerd by design: kill any of ours, and the containers they ran.
        let runc_root = self.layout.runc_root().join("k8s.io");
        let root = runc_root.to_string_lossy().into_owned();
        if let Ok(list) = try_run("runc", &["--root", &root, "list", "-q"]) {
            for id in list.lines().filter(|l| !l.is_empty()) {
                let _ = try_run("runc", &["--root", &root, "kill", id, "KILL"]);
                let _ = try_run("runc", &["--root", &root, "delete", "--force", id]);
            }
        }
        let sock = self.layout.socket().to_string_lossy().into_owned();
        for pid in cmd::pids_with_cmdline(&["containerd-shim", &sock]) {
            terminate(pid, Duration::from_secs(2));
        }
        cmd::unmount_below(&self.layout.dir);
        host::scrub(&self.network.name, &self.network.bridge);
        self.baseline.restore();
        if !self.keep_dir {
            if let Err(e) = std::fs::remove_dir_all(&self.layout.dir) {
                eprintln!("podwire e2e: remove {}: {e}", self.layout.dir.display());
            }
        }
    }

    /// Stops everything now (the guard's work), e.g. before the demo prints its summary.
    pub fn stop(mut self) {
        self.shut_down();
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// containerd's version line, for reports.
pub fn version() -> String {
    run("containerd", &["--version"]).trim().to_string()
}
