//! What is measured: podwire and the reference plugins as processes (same options, same
//! subnet size, own bridge and dataDir each), and the kernel floor in-process.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::scene::Pod;
use crate::spawn::{self, Finished, Running};

/// The interface name every pod gets.
pub const IFNAME: &str = "eth0";

/// One measured operation.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub elapsed: Duration,
    /// CPU time (user + system) spent on it: the plugin process's, or the floor's thread's.
    pub cpu: Duration,
    /// Peak RSS of the plugin process (KiB); `None` in-process.
    pub max_rss_kib: Option<u64>,
}

impl Sample {
    pub fn ms(&self) -> f64 {
        self.elapsed.as_secs_f64() * 1e3
    }
    pub fn cpu_ms(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e3
    }
    /// A finished process's figures.
    pub fn of(out: &Finished) -> Sample {
        Sample {
            elapsed: out.elapsed,
            cpu: out.cpu,
            max_rss_kib: Some(out.max_rss_kib),
        }
    }
}

/// Something that can ADD and DEL a pod's network, timed.
pub trait Subject {
    fn label(&self) -> &'static str;
    fn add(&self, pod: &Pod) -> Sample;
    fn del(&self, pod: &Pod) -> Sample;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `podwire` with its in-process `podwire-ipam`.
    Podwire,
    /// Debian's `bridge` delegating to `host-local`.
    Reference,
}

/// A CNI network served by one plugin binary.
pub struct PluginNet {
    pub flavor: Flavor,
    /// How the report names it ("podwire", "reference", or "baseline" for another podwire build).
    pub label: &'static str,
    pub program: PathBuf,
    pub cni_path: PathBuf,
    pub conf: Vec<u8>,
}

/// The options both plugins get: gateway on the bridge, default route in the pod, no
/// masquerade, default MTU, CNI 1.0.0 (the newest the reference speaks).
pub fn netconf(flavor: Flavor, name: &str, bridge: &str, subnet: &str, data_dir: &Path) -> String {
    let (kind, ipam) = match flavor {
        Flavor::Podwire => ("podwire", "podwire-ipam"),
        Flavor::Reference => ("bridge", "host-local"),
    };
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": name,
        "type": kind,
        "bridge": bridge,
        "isGateway": true,
        "isDefaultGateway": true,
        "ipMasq": false,
        "ipam": {"type": ipam, "subnet": subnet, "dataDir": data_dir},
    })
    .to_string()
}

impl PluginNet {
    pub fn new(
        flavor: Flavor,
        program: &Path,
        cni_path: &Path,
        name: &str,
        bridge: &str,
        subnet: &str,
        data_dir: &Path,
    ) -> PluginNet {
        PluginNet {
            flavor,
            label: match flavor {
                Flavor::Podwire => "podwire",
                Flavor::Reference => "reference",
            },
            program: program.to_path_buf(),
            cni_path: cni_path.to_path_buf(),
            conf: netconf(flavor, name, bridge, subnet, data_dir).into_bytes(),
        }
    }

    /// The same network writing its log (and podwire's per-operation trace lines) to `file`:
    /// for measuring what logging costs.
    pub fn with_log_file(mut self, file: &Path) -> PluginNet {
        let mut v: serde_json::Value = serde_json::from_slice(&self.conf).expect("netconf is JSON");
        v["logFile"] = file.display().to_string().into();
        self.conf = v.to_string().into_bytes();
        self
    }

    fn env(&self, command: &str, pod: &Pod) -> Vec<(String, String)> {
        vec![
            ("CNI_COMMAND".into(), command.into()),
            ("CNI_CONTAINERID".into(), pod.id.clone()),
            ("CNI_NETNS".into(), pod.path.clone()),
            ("CNI_IFNAME".into(), IFNAME.into()),
            ("CNI_PATH".into(), self.cni_path.display().to_string()),
        ]
    }

    pub fn start(&self, command: &str, pod: &Pod) -> Running {
        crate::scene::check_interrupted();
        spawn::start(&self.program, &self.env(command, pod), &self.conf)
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.program.display()))
    }

    /// Runs one command; a failure stops the bench (the figures would be meaningless).
    pub fn call(&self, command: &str, pod: &Pod) -> Finished {
        let out = self
            .start(command, pod)
            .finish()
            .unwrap_or_else(|e| panic!("wait for {}: {e}", self.program.display()));
        if !out.ok() {
            panic!(
                "{} {command} {}: {}",
                self.label(),
                pod.name,
                out.describe()
            );
        }
        out
    }
}

/// The first IPv4 address of an ADD result.
pub fn result_ip(stdout: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(stdout).ok()?;
    v["ips"]
        .as_array()?
        .iter()
        .find_map(|ip| ip["address"].as_str().map(str::to_string))
}

impl Subject for PluginNet {
    fn label(&self) -> &'static str {
        self.label
    }
    fn add(&self, pod: &Pod) -> Sample {
        let out = self.call("ADD", pod);
        if result_ip(&out.stdout).is_none() {
            panic!(
                "{} ADD {}: no IP in {}",
                self.label(),
                pod.name,
                out.describe()
            );
        }
        Sample::of(&out)
    }
    fn del(&self, pod: &Pod) -> Sample {
        Sample::of(&self.call("DEL", pod))
    }
}

/// The cost of a process alone: spawn + exit of `/bin/true` through the same path.
pub struct ProcessFloor;

impl ProcessFloor {
    fn once(&self) -> Sample {
        crate::scene::check_interrupted();
        Sample::of(&spawn::run(Path::new("/bin/true"), &[], b"").expect("spawn /bin/true"))
    }
}

impl Subject for ProcessFloor {
    fn label(&self) -> &'static str {
        "process"
    }
    fn add(&self, _: &Pod) -> Sample {
        self.once()
    }
    fn del(&self, _: &Pod) -> Sample {
        self.once()
    }
}

/// The n-th host address of an IPv4 subnet, e.g. (10.1.0.0/24, 2) → 10.1.0.2.
pub fn nth_host(subnet: &str, n: u32) -> Ipv4Addr {
    let net: kernel::ipnet::Ipv4Net = subnet.parse().expect("valid subnet");
    Ipv4Addr::from(u32::from(net.network()) + n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_flavors_get_the_same_options() {
        let dir = Path::new("/tmp/x");
        let a: serde_json::Value =
            serde_json::from_str(&netconf(Flavor::Podwire, "n", "b0", "10.1.0.0/24", dir)).unwrap();
        let b: serde_json::Value =
            serde_json::from_str(&netconf(Flavor::Reference, "n", "b0", "10.1.0.0/24", dir))
                .unwrap();
        assert_eq!(a["type"], "podwire");
        assert_eq!(b["type"], "bridge");
        assert_eq!(b["ipam"]["type"], "host-local");
        for key in [
            "cniVersion",
            "isGateway",
            "isDefaultGateway",
            "ipMasq",
            "bridge",
        ] {
            assert_eq!(a[key], b[key], "{key}");
        }
        assert_eq!(a["ipam"]["subnet"], b["ipam"]["subnet"]);
        assert_eq!(a.get("mtu"), None);
    }

    #[test]
    fn result_ip_reads_the_first_address() {
        let r = br#"{"cniVersion":"1.0.0","ips":[{"address":"10.1.0.5/24","gateway":"10.1.0.1"}]}"#;
        assert_eq!(result_ip(r).as_deref(), Some("10.1.0.5/24"));
        assert_eq!(result_ip(b"{}"), None);
        assert_eq!(result_ip(b"not json"), None);
    }

    #[test]
    fn nth_host_counts_from_the_network_address() {
        assert_eq!(nth_host("10.1.0.0/23", 257), Ipv4Addr::new(10, 1, 1, 1));
    }
}
