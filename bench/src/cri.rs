//! Item 7: pod sandbox lifecycle under containerd's CRI, podwire's chain (`podwire`,
//! `podwire-portmap`, `loopback`) against the reference chain (`bridge` + `host-local`, `portmap`,
//! `loopback`), interleaved. The runtime harness (a private containerd, the pause image, a CRI
//! client) belongs to `tests/runtimes`; this drives it through
//! its CLI `podwire-cri` (prepare / wait / runp / stopp / rmp / teardown), one private containerd
//! per conflist, so the bench links no async stack. Each CRI call is one short `podwire-cri`
//! process for both conflists alike; its cost alone is measured too (`ListPodSandbox`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::report::CriFigures;
use crate::subjects::Flavor;

/// Runs one RunPodSandbox + StopPodSandbox + RemovePodSandbox with the network of `flavor`.
pub trait CriRunner {
    fn cycle(&mut self, flavor: Flavor) -> Result<Duration, String>;
}

/// One private containerd whose only CNI network is `flavor`'s conflist.
struct Runtime {
    dir: PathBuf,
    containerd: Option<Child>,
}

/// Two private containerds (podwire's conflist, the reference's), driven with `podwire-cri`.
pub struct ContainerdCri {
    cli: Cli,
    podwire: Runtime,
    reference: Runtime,
    pods: usize,
    /// Median cost of one `podwire-cri` call that does no pod work (ListPodSandbox).
    pub call_overhead_ms: f64,
}

/// The `podwire-cri` CLI and the cargo target dir whose `release/` holds the podwire build to
/// install (it copies `podwire` and `podwire-ipam` from there).
#[derive(Clone)]
pub struct Cli {
    pub program: PathBuf,
    pub target_dir: PathBuf,
}

fn cli_run(cli: &Cli, dir: &Path, args: &[&str]) -> Result<String, String> {
    crate::scene::check_interrupted();
    let out = Command::new(&cli.program)
        .env("CARGO_TARGET_DIR", &cli.target_dir)
        .arg(args[0])
        .arg("--dir")
        .arg(dir)
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", cli.program.display()))?;
    if !out.status.success() {
        return Err(format!(
            "podwire-cri {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The conflist both runtimes get: the options of items 1–6 (no masquerade, no debug log), then
/// each side's portmap plugin, as a node chains it (`loopback` is each side's own too).
fn conflist(flavor: Flavor, name: &str, bridge: &str, subnet: &str, data_dir: &Path) -> String {
    let plugin: serde_json::Value = serde_json::from_str(&crate::subjects::netconf(
        flavor, name, bridge, subnet, data_dir,
    ))
    .expect("netconf is JSON");
    let mut plugin = plugin.as_object().expect("object").clone();
    plugin.remove("cniVersion");
    plugin.remove("name");
    let portmap = match flavor {
        Flavor::Podwire => "podwire-portmap",
        Flavor::Reference => "portmap",
    };
    let portmap = serde_json::json!({"type": portmap, "capabilities": {"portMappings": true}});
    serde_json::json!({"cniVersion": "1.0.0", "name": name, "plugins": [plugin, portmap]})
        .to_string()
}

impl Runtime {
    fn start(
        cli: &Cli,
        root: &Path,
        flavor: Flavor,
        reference_dir: &Path,
        (name, bridge, subnet, gateway): (&str, &str, &str, &str),
    ) -> Result<Runtime, String> {
        let dir = root.join(name);
        cli_run(
            cli,
            &dir,
            &[
                "prepare",
                "--network",
                name,
                "--bridge",
                bridge,
                "--subnet",
                subnet,
                "--gateway",
                gateway,
            ],
        )?;
        let mut rt = Runtime {
            dir: dir.clone(),
            containerd: None,
        };
        // Replace the harness's conflist (masquerade, debug log) with the bench's options.
        let data = dir.join("bench-ipam");
        std::fs::write(
            dir.join("cni/net.d/10-podwire.conflist"),
            conflist(flavor, name, bridge, subnet, &data),
        )
        .map_err(|e| format!("write conflist in {}: {e}", dir.display()))?;
        if flavor == Flavor::Reference {
            // The harness installed podwire's plugins, `loopback` included: the reference's
            // replaces it.
            for p in ["bridge", "host-local", "portmap", "loopback"] {
                std::fs::copy(reference_dir.join(p), dir.join("cni/bin").join(p))
                    .map_err(|e| format!("copy {p} into {}: {e}", dir.display()))?;
            }
        }
        let log = std::fs::File::create(dir.join("containerd.log")).map_err(|e| e.to_string())?;
        let child = Command::new("containerd")
            .arg("--config")
            .arg(dir.join("containerd.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("start containerd: {e}"))?;
        std::fs::write(dir.join("containerd.pid"), child.id().to_string())
            .map_err(|e| e.to_string())?;
        rt.containerd = Some(child);
        cli_run(cli, &dir, &["wait"])?;
        Ok(rt)
    }

    fn stop(&mut self, cli: &Cli) {
        let _ = cli_run(cli, &self.dir, &["teardown"]);
        if let Some(mut c) = self.containerd.take() {
            let _ = c.wait();
        }
    }
}

impl ContainerdCri {
    /// Starts both runtimes (prepared by `cli`, which is `podwire-cri`). In the host netns: call
    /// it after the namespaced loops are done.
    pub fn start(cli: &Cli, root: &Path, reference_dir: &Path) -> Result<ContainerdCri, String> {
        let podwire = Runtime::start(
            cli,
            root,
            Flavor::Podwire,
            reference_dir,
            ("pwbench-cri-pw", "bcripw0", "10.246.0.0/24", "10.246.0.1"),
        )?;
        let mut me = ContainerdCri {
            cli: cli.clone(),
            podwire,
            reference: Runtime {
                dir: PathBuf::new(),
                containerd: None,
            },
            pods: 0,
            call_overhead_ms: f64::NAN,
        };
        me.reference = Runtime::start(
            cli,
            root,
            Flavor::Reference,
            reference_dir,
            ("pwbench-cri-ref", "bcriref0", "10.246.1.0/24", "10.246.1.1"),
        )?;
        let mut calls = Vec::new();
        for _ in 0..5 {
            for rt in [&me.podwire, &me.reference] {
                let t = Instant::now();
                cli_run(&me.cli, &rt.dir, &["pods"])?;
                calls.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        me.call_overhead_ms = crate::stats::median(&calls);
        Ok(me)
    }
}

impl CriRunner for ContainerdCri {
    fn cycle(&mut self, flavor: Flavor) -> Result<Duration, String> {
        self.pods += 1;
        let name = format!("pwbench-{}", self.pods);
        let dir = match flavor {
            Flavor::Podwire => self.podwire.dir.clone(),
            Flavor::Reference => self.reference.dir.clone(),
        };
        let t = Instant::now();
        let id = cli_run(&self.cli, &dir, &["runp", &name])?;
        cli_run(&self.cli, &dir, &["stopp", &id])?;
        cli_run(&self.cli, &dir, &["rmp", &id])?;
        Ok(t.elapsed())
    }
}

impl Drop for ContainerdCri {
    fn drop(&mut self) {
        let cli = self.cli.clone();
        self.podwire.stop(&cli);
        self.reference.stop(&cli);
    }
}

/// `cycles` lifecycles per flavor, A/B/A/B with the first alternating, after one untimed
/// warm-up each (image unpacked, bridge created).
pub fn measure(runner: &mut dyn CriRunner, cycles: usize) -> Result<CriFigures, String> {
    let flavors = [Flavor::Podwire, Flavor::Reference];
    for f in flavors {
        runner.cycle(f)?;
    }
    let mut out = CriFigures::default();
    for i in 0..cycles {
        for j in 0..2 {
            crate::scene::check_interrupted();
            let f = flavors[(i + j) % 2];
            let ms = runner.cycle(f)?.as_secs_f64() * 1e3;
            match f {
                Flavor::Podwire => out.podwire.push(ms),
                Flavor::Reference => out.reference.push(ms),
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake(Vec<Flavor>);

    impl CriRunner for Fake {
        fn cycle(&mut self, f: Flavor) -> Result<Duration, String> {
            self.0.push(f);
            Ok(Duration::from_millis(match f {
                Flavor::Podwire => 100,
                Flavor::Reference => 300,
            }))
        }
    }

    #[test]
    fn cycles_are_interleaved_after_a_warm_up() {
        let mut fake = Fake(Vec::new());
        let figs = measure(&mut fake, 2).unwrap();
        use Flavor::*;
        assert_eq!(
            fake.0,
            vec![Podwire, Reference, Podwire, Reference, Reference, Podwire]
        );
        assert_eq!(figs.podwire, vec![100.0, 100.0]);
        assert_eq!(figs.reference, vec![300.0, 300.0]);
    }
}
