//! Podman with a private config: CNI backend on a private plugin and config dir holding a podwire
//! network, private storage root and run root, a busybox image made with `podman import`. Podman
//! reads only these files (`CONTAINERS_CONF`, `CONTAINERS_STORAGE_CONF`), never the system's.

use crate::cmd::{self, require, terminate};
use crate::conflist::Network;
use crate::{binaries, host, image};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The image `podman import` makes from Debian's busybox-static.
pub use crate::image::BUSYBOX_IMAGE;

pub struct Podman {
    pub dir: PathBuf,
    pub network: Network,
    shut_down: bool,
    baseline: host::Baseline,
}

impl Podman {
    pub fn cni_bin(&self) -> PathBuf {
        self.dir.join("cni/bin")
    }
    pub fn cni_conf(&self) -> PathBuf {
        self.dir.join("cni/net.d")
    }
    pub fn ipam_dir(&self) -> PathBuf {
        self.dir.join("ipam")
    }
    pub fn plugin_log_path(&self) -> PathBuf {
        self.dir.join("podwire.log")
    }

    /// containers.conf for these machines: runc (crun refuses the cgroup layout), cgroupfs and a
    /// file event log (no systemd), explicit ulimits, the CNI backend on private dirs.
    pub fn containers_conf(&self) -> String {
        let p = |p: PathBuf| p.to_string_lossy().into_owned();
        format!(
            r#"# Podman for podwire's runtime suite: private everything.
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "{tmp}"

[network]
network_backend = "cni"
cni_plugin_dirs = ["{bin}"]
network_config_dir = "{conf}"
"#,
            tmp = p(self.dir.join("tmp")),
            bin = p(self.cni_bin()),
            conf = p(self.cni_conf()),
        )
    }

    pub fn storage_conf(&self) -> String {
        format!(
            "[storage]\ndriver = \"overlay\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            self.dir.join("storage").display(),
            self.dir.join("run").display()
        )
    }

    /// Writes the config and the podwire network, then imports the busybox image.
    pub fn new(network: Network) -> Podman {
        require("podman", "podman");
        require("runc", "runc");
        require("conmon", "conmon");
        let dir = crate::private_dir("podwire-podman");
        let baseline = host::Baseline::capture();
        host::scrub(&network.name, &network.bridge);
        let p = Podman {
            dir,
            network,
            shut_down: false,
            baseline,
        };
        for d in [p.cni_conf(), p.ipam_dir(), p.dir.join("tmp")] {
            std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        }
        binaries::install_cni_bin_dir(&p.cni_bin());
        let conflist = p.network.conflist(&p.ipam_dir(), &p.plugin_log_path());
        std::fs::write(
            p.cni_conf().join(format!("{}.conflist", p.network.name)),
            serde_json::to_string_pretty(&conflist).expect("conflist JSON"),
        )
        .expect("write conflist");
        std::fs::write(p.dir.join("containers.conf"), p.containers_conf()).expect("write conf");
        std::fs::write(p.dir.join("storage.conf"), p.storage_conf()).expect("write conf");
        let rootfs = image::busybox_rootfs(&p.dir.join("images"));
        p.podman(&["import", rootfs.to_str().unwrap(), BUSYBOX_IMAGE])
            .unwrap_or_else(|e| panic!("podman import: {e}"));
        p
    }

    /// Runs `podman args` against the private config; stdout, or the error with both streams.
    pub fn podman(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("podman")
            .args(args)
            .env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", self.dir.join("storage.conf"))
            .env(
                "CONTAINERS_REGISTRIES_CONF",
                self.dir.join("registries.conf"),
            )
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("podman: cannot start: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(format!(
                "`podman {}` failed ({}): {}{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            ))
        }
    }

    /// `podman run -d` of the busybox image on the podwire network, sleeping; returns its ID.
    pub fn run_sleeper(&self, name: &str) -> Result<String, String> {
        self.podman(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            &self.network.name,
            "--cap-add",
            "NET_RAW",
            BUSYBOX_IMAGE,
            "sleep",
            "600",
        ])
    }

    /// The address Podman recorded for a container on our network.
    pub fn ip_of(&self, name: &str) -> Result<String, String> {
        let format = format!(
            "{{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}",
            self.network.name
        );
        self.podman(&["inspect", "--format", &format, name])
    }

    pub fn plugin_log(&self) -> String {
        std::fs::read_to_string(self.plugin_log_path()).unwrap_or_default()
    }

    pub fn leftovers(&self) -> Vec<String> {
        host::leftovers(&self.network.name, &self.network.bridge, &self.ipam_dir())
    }

    fn shut_down(&mut self) {
        if std::mem::replace(&mut self.shut_down, true) {
            return;
        }
        if let Err(e) = self.podman(&["rm", "--all", "--force", "--time", "0"]) {
            eprintln!("podwire e2e: podman rm at teardown: {e}");
        }
        // conmon outlives a failed podman: ours carry our dir in their command line.
        let dir = self.dir.to_string_lossy().into_owned();
        for pid in cmd::pids_with_cmdline(&["conmon", &dir]) {
            terminate(pid, Duration::from_secs(2));
        }
        cmd::unmount_below(&self.dir);
        host::scrub(&self.network.name, &self.network.bridge);
        self.baseline.restore();
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("podwire e2e: remove {}: {e}", self.dir.display());
        }
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// The podwire network's conflist as Podman sees it (`podman network inspect`).
pub fn inspect_network(p: &Podman) -> Result<String, String> {
    p.podman(&["network", "inspect", &p.network.name])
}
