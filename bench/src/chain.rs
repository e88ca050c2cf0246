//! Item 8: the node's whole chain, as a runtime runs it for every pod. containerd's CRI runs the
//! `cni-loopback` network (`loopback`) and then the pod's conflist (main plugin + IPAM, then the
//! portmap plugin); this runs both through podwire's runtime library, the same way for
//!
//! - podwire: `loopback`, `podwire` (in-process `podwire-ipam`), `podwire-portmap`, and
//! - the reference: `loopback`, `bridge` → `host-local`, `portmap` (Debian's, iptables),
//!
//! with no port mapping and with 2 (TCP and UDP, host ports of the pod's own). Then the portmap
//! plugin alone (ADD with 2 mappings, exec'd with the main plugin's real result as prevResult)
//! over 100 pods on one node: its median against the reference's, and how the last pods' ADDs
//! compare with the first ones' (the reference adds iptables chains and rules that every later
//! ADD rewrites; podwire's are elements of one map).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use runtime::{CniConfig, NetworkConfigList, RuntimeConf};
use serde_json::{json, Value};

use crate::floor::KernelFloor;
use crate::scene::{settle, Pod, Scene};
use crate::spawn;
use crate::stats::{median, p90};
use crate::subjects::{netconf, Flavor, Subject, IFNAME};
use crate::table::Table;

/// Pods at each end compared in the portmap growth figure (1–10 vs 91–100).
pub const WINDOW: usize = 10;

/// One side of the comparison: its plugin dir, conflists and portmap binary.
pub(crate) struct Side {
    label: &'static str,
    cni: CniConfig,
    loopback: NetworkConfigList,
    /// The pod network: main plugin + portmap.
    chain: NetworkConfigList,
    /// The main plugin alone (for the portmap-alone runs, which exec portmap themselves).
    main: NetworkConfigList,
    portmap: PathBuf,
    portmap_conf: Value,
    plugin_dir: PathBuf,
    /// The floor's kernel work: the pod's kernel objects made in-process after the no-op chain.
    kernel: Option<KernelFloor>,
}

fn list(name: &str, plugins: Vec<Value>) -> NetworkConfigList {
    let v = json!({"cniVersion": "1.0.0", "name": name, "plugins": plugins});
    NetworkConfigList::from_bytes(v.to_string().as_bytes()).expect("a valid conflist")
}

impl Side {
    pub(crate) fn new(
        flavor: Flavor,
        dir: &Path,
        state: &Path,
        tag: &str,
        bridge: &str,
        subnet: &str,
        log_file: Option<&Path>,
    ) -> Side {
        let (who, portmap) = match flavor {
            Flavor::Podwire => ("pw", "podwire-portmap"),
            Flavor::Reference => ("ref", "portmap"),
        };
        let name = format!("bench-{tag}-{who}");
        let main: Value =
            serde_json::from_str(&netconf(flavor, &name, bridge, subnet, &state.join(who)))
                .expect("netconf is JSON");
        let mut plugin = main.clone();
        if let (Flavor::Podwire, Some(f)) = (flavor, log_file) {
            // Each ADD's timed steps (`--log-file`): where the chain's time goes.
            plugin["logFile"] = f.display().to_string().into();
        }
        for k in ["cniVersion", "name"] {
            plugin.as_object_mut().unwrap().remove(k);
        }
        let pm = json!({"type": portmap, "capabilities": {"portMappings": true}});
        Side {
            label: match flavor {
                Flavor::Podwire => "podwire",
                Flavor::Reference => "reference",
            },
            cni: CniConfig::new(vec![dir.to_path_buf()])
                .with_cache_dir(state.join(format!("cache-{who}"))),
            loopback: list("cni-loopback", vec![json!({"type": "loopback"})]),
            chain: list(&name, vec![plugin.clone(), pm]),
            main: list(&name, vec![plugin]),
            portmap: dir.join(portmap),
            portmap_conf: json!({"cniVersion": "1.0.0", "name": name, "type": portmap}),
            plugin_dir: dir.to_path_buf(),
            kernel: None,
        }
    }

    fn label(&self) -> &'static str {
        self.label
    }

    /// The main plugin's ADD for `pod`; its result, as a portmap call's prevResult.
    pub(crate) fn add_main(&self, pod: &Pod) -> Value {
        let r = self
            .cni
            .add_network_list(&self.main, &rt(pod, IFNAME, None))
            .unwrap_or_else(|e| panic!("{} ADD {}: {e}", self.label(), pod.name));
        r.to_value(&r.cni_version).expect("result serialises")
    }

    pub(crate) fn del_main(&self, pod: &Pod) {
        self.cni
            .del_network_list(&self.main, &rt(pod, IFNAME, None))
            .unwrap_or_else(|e| panic!("{} DEL: {e}", self.label()));
    }

    /// The floor: the same runtime calls and plugin execs, each plugin `cni-noop-plugin` (built
    /// beside podwire, static like the plugins), which does nothing; then the pod's kernel
    /// objects (item 1's kernel floor: veth pair on a bridge, address, default route) made
    /// in-process. What no chain of exec'd plugins can go below.
    fn floor(dir: &Path, state: &Path, bridge: &str, subnet: &str) -> Side {
        let noop = || json!({"type": "cni-noop-plugin"});
        Side {
            label: "floor",
            cni: CniConfig::new(vec![dir.to_path_buf()]).with_cache_dir(state.join("cache-floor")),
            loopback: list("cni-loopback", vec![noop()]),
            chain: list("bench-floor", vec![noop(), noop()]),
            main: list("bench-floor", vec![noop()]),
            portmap: dir.join("cni-noop-plugin"),
            portmap_conf: json!({}),
            plugin_dir: dir.to_path_buf(),
            kernel: Some(KernelFloor::new(bridge, subnet)),
        }
    }
}

/// The 2 mappings of pod `i` of a run: TCP and UDP on host ports of its own.
fn mappings(base: u16, i: usize) -> Value {
    let port = base + i as u16;
    json!([{"hostPort": port, "containerPort": 80, "protocol": "tcp"},
           {"hostPort": port, "containerPort": 53, "protocol": "udp"}])
}

fn rt(pod: &Pod, ifname: &str, ports: Option<Value>) -> RuntimeConf {
    let mut r = RuntimeConf {
        container_id: pod.id.clone(),
        netns: pod.path.clone(),
        ifname: ifname.into(),
        ..Default::default()
    };
    if let Some(p) = ports {
        r.capability_args.insert("portMappings".into(), p);
    }
    r
}

/// Figures of one run, per side (podwire first), in ms.
#[derive(Debug, Clone, Default)]
pub struct ChainFigures {
    pub pods: usize,
    /// [no mapping, 2 mappings][podwire, reference, floor]: chain ADD (loopback + pod network).
    pub add: [[Vec<f64>; 3]; 2],
    pub del: [[Vec<f64>; 3]; 2],
    /// [podwire, reference]: portmap ADD alone, with 2 mappings, in pod order on one node.
    pub portmap_add: [Vec<f64>; 2],
    /// The same ADDs' CPU time.
    pub portmap_cpu: [Vec<f64>; 2],
    /// With `--log-file`: podwire's own ADD in the no-mapping case, step by step, from its
    /// trace lines: (step, median µs, 90th percentile µs), the whole operation first.
    pub steps: Vec<(String, f64, f64)>,
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let out = f();
    (out, t.elapsed().as_secs_f64() * 1e3)
}

/// Runs item 8 inside the scene's node netns with `n` pods per side and case.
/// With `log_file`, podwire's main plugin logs each operation's timed steps there.
pub fn measure(
    scene: &Scene,
    podwire_dir: &Path,
    reference_dir: &Path,
    n: usize,
    log_file: Option<&Path>,
) -> ChainFigures {
    let state = scene.root().join("chain");
    let mut f = ChainFigures {
        pods: n,
        ..Default::default()
    };
    for (case, with_ports) in [(0, false), (1, true)] {
        let sides = [
            Side::new(
                Flavor::Podwire,
                podwire_dir,
                &state,
                &format!("ch{case}"),
                &format!("bchp{case}"),
                &format!("10.246.{}.0/24", 2 * case),
                log_file,
            ),
            Side::new(
                Flavor::Reference,
                reference_dir,
                &state,
                &format!("ch{case}"),
                &format!("bchr{case}"),
                &format!("10.246.{}.0/24", 2 * case + 1),
                log_file,
            ),
            Side::floor(
                podwire_dir,
                &state,
                &format!("bchf{case}"),
                &format!("10.246.{}.0/24", 6 + case),
            ),
        ];
        let base = 20000 + 1000 * case as u16;
        let pods: Vec<Vec<Pod>> = (0..3)
            .map(|s| scene.pods(&format!("ch{case}s{s}-"), n))
            .collect();
        warm(scene, &sides, &format!("ch{case}w"), base + 900, with_ports);
        settle(Duration::from_secs(20));
        for (i, s) in interleaved(n, 3) {
            let side = &sides[s];
            let ports = with_ports.then(|| mappings(base, i));
            let ((), ms) = timed(|| add_chain(side, &pods[s][i], ports));
            f.add[case][s].push(ms);
        }
        for (i, s) in interleaved(n, 3) {
            let side = &sides[s];
            let ports = with_ports.then(|| mappings(base, i));
            let ((), ms) = timed(|| del_chain(side, &pods[s][i], ports));
            f.del[case][s].push(ms);
        }
        for p in &pods {
            scene.drop_pods(p);
        }
        settle(Duration::from_secs(20));
    }

    // The portmap plugin alone, 2 mappings per pod, pods accumulating on one node.
    let sides = [
        Side::new(
            Flavor::Podwire,
            podwire_dir,
            &state,
            "chpm",
            "bchp2",
            "10.246.4.0/24",
            log_file,
        ),
        Side::new(
            Flavor::Reference,
            reference_dir,
            &state,
            "chpm",
            "bchr2",
            "10.246.5.0/24",
            log_file,
        ),
    ];
    let base = 23000;
    let pods: Vec<Vec<Pod>> = (0..2)
        .map(|s| scene.pods(&format!("chpms{s}-"), n))
        .collect();
    let mut prev: [Vec<Value>; 2] = Default::default();
    for (s, side) in sides.iter().enumerate() {
        for p in &pods[s] {
            prev[s].push(side.add_main(p));
        }
    }
    settle(Duration::from_secs(20));
    for (i, s) in interleaved(n, 2) {
        let out = portmap_call(
            &sides[s],
            "ADD",
            &pods[s][i],
            &prev[s][i],
            mappings(base, i),
        );
        f.portmap_add[s].push(out.elapsed.as_secs_f64() * 1e3);
        f.portmap_cpu[s].push(out.cpu.as_secs_f64() * 1e3);
    }
    for (i, s) in interleaved(n, 2) {
        portmap_call(
            &sides[s],
            "DEL",
            &pods[s][i],
            &prev[s][i],
            mappings(base, i),
        );
        sides[s].del_main(&pods[s][i]);
    }
    for p in &pods {
        scene.drop_pods(p);
    }
    settle(Duration::from_secs(20));
    if let Some(log) = log_file {
        f.steps = step_times(log, "-ch0s0-");
    }
    f
}

/// Median and 90th percentile of each step of the ADDs traced in `log` whose container ID
/// contains `id_part`, in the order the steps run; "whole ADD" first.
fn step_times(log: &Path, id_part: &str) -> Vec<(String, f64, f64)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut steps: Vec<(String, Vec<f64>)> = vec![("whole ADD".into(), Vec::new())];
    let ops = text
        .lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["command"] == "ADD")
        .filter(|v| {
            v["containerID"]
                .as_str()
                .is_some_and(|c| c.contains(id_part))
        });
    for op in ops {
        steps[0]
            .1
            .push(op["durationUs"].as_f64().unwrap_or(f64::NAN));
        for s in op["steps"].as_array().into_iter().flatten() {
            let (Some(name), Some(us)) = (s["step"].as_str(), s["durationUs"].as_f64()) else {
                continue;
            };
            match steps.iter_mut().find(|(n, _)| n == name) {
                Some((_, v)) => v.push(us),
                None => steps.push((name.to_string(), vec![us])),
            }
        }
    }
    steps
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(n, v)| (n, median(&v), p90(&v)))
        .collect()
}

/// (pod, side) pairs, every side once per pod, the first one rotating.
fn interleaved(n: usize, sides: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..n).flat_map(move |i| (0..sides).map(move |j| (i, (i + j) % sides)))
}

/// Untimed: a few pods through each side so binaries, bridges and tables are warm.
fn warm(scene: &Scene, sides: &[Side], tag: &str, base: u16, with_ports: bool) {
    for (s, side) in sides.iter().enumerate() {
        let pods = scene.pods(&format!("{tag}{s}-"), 3);
        for (i, p) in pods.iter().enumerate() {
            add_chain(side, p, with_ports.then(|| mappings(base, i)));
        }
        for (i, p) in pods.iter().enumerate() {
            del_chain(side, p, with_ports.then(|| mappings(base, i)));
        }
        scene.drop_pods(&pods);
    }
}

fn add_chain(side: &Side, pod: &Pod, ports: Option<Value>) {
    side.cni
        .add_network_list(&side.loopback, &rt(pod, "lo", None))
        .unwrap_or_else(|e| panic!("{} loopback ADD {}: {e}", side.label(), pod.name));
    side.cni
        .add_network_list(&side.chain, &rt(pod, IFNAME, ports))
        .unwrap_or_else(|e| panic!("{} chain ADD {}: {e}", side.label(), pod.name));
    if let Some(k) = &side.kernel {
        k.add(pod);
    }
}

fn del_chain(side: &Side, pod: &Pod, ports: Option<Value>) {
    if let Some(k) = &side.kernel {
        k.del(pod);
    }
    side.cni
        .del_network_list(&side.chain, &rt(pod, IFNAME, ports))
        .unwrap_or_else(|e| panic!("{} chain DEL {}: {e}", side.label(), pod.name));
    side.cni
        .del_network_list(&side.loopback, &rt(pod, "lo", None))
        .unwrap_or_else(|e| panic!("{} loopback DEL {}: {e}", side.label(), pod.name));
}

/// One exec of the portmap plugin as a runtime chains it: prevResult and runtimeConfig in.
pub(crate) fn portmap_call(
    side: &Side,
    command: &str,
    pod: &Pod,
    prev: &Value,
    ports: Value,
) -> spawn::Finished {
    let mut conf = side.portmap_conf.clone();
    conf["prevResult"] = prev.clone();
    conf["runtimeConfig"] = json!({"portMappings": ports});
    let env = [
        ("CNI_COMMAND", command),
        ("CNI_CONTAINERID", pod.id.as_str()),
        ("CNI_NETNS", pod.path.as_str()),
        ("CNI_IFNAME", IFNAME),
        ("CNI_PATH", &side.plugin_dir.display().to_string()),
        ("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let out = spawn::run(&side.portmap, &env, conf.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("spawn {}: {e}", side.portmap.display()));
    if !out.ok() {
        panic!(
            "{} portmap {command} {}: {}",
            side.label(),
            pod.name,
            out.describe()
        );
    }
    out
}

fn r2(a: f64, b: f64) -> String {
    format!("{:.2}x", a / b)
}

impl ChainFigures {
    /// Median of the last `WINDOW` over the first `WINDOW` portmap ADDs of side `s`.
    pub fn portmap_growth(&self, s: usize) -> f64 {
        let v = &self.portmap_add[s];
        let w = WINDOW.min(v.len() / 2).max(1);
        median(&v[v.len() - w..]) / median(&v[..w])
    }

    pub fn table(&self) -> Table {
        let mut t = Table::new(&[
            "whole chain, per pod (median ms)",
            "podwire",
            "reference",
            "ratio",
            "target",
            "floor",
            "floor / reference",
            "ratio above floor",
        ]);
        for (case, what) in [(0, "no mapping"), (1, "2 mappings")] {
            for (op, v, target) in [
                ("ADD", &self.add[case], "≤ 0.20x"),
                ("DEL", &self.del[case], "≤ 0.80x"),
            ] {
                let (a, b, fl) = (median(&v[0]), median(&v[1]), median(&v[2]));
                t.row(vec![
                    format!("chain {op}, {what}"),
                    format!("{a:.2}"),
                    format!("{b:.2}"),
                    r2(a, b),
                    target.into(),
                    format!("{fl:.2}"),
                    r2(fl, b),
                    r2(a - fl, b - fl),
                ]);
            }
        }
        let (a, b) = (median(&self.portmap_add[0]), median(&self.portmap_add[1]));
        t.row(vec![
            "portmap ADD alone, 2 mappings".into(),
            format!("{a:.2}"),
            format!("{b:.2}"),
            r2(a, b),
            "≤ 0.15x".into(),
        ]);
        let (a, b) = (median(&self.portmap_cpu[0]), median(&self.portmap_cpu[1]));
        t.row(vec![
            "  its CPU time".into(),
            format!("{a:.2}"),
            format!("{b:.2}"),
            r2(a, b),
            String::new(),
        ]);
        let w = WINDOW.min(self.pods / 2).max(1);
        t.row(vec![
            format!(
                "portmap ADD, pods {}–{} over 1–{w}",
                self.pods - w + 1,
                self.pods
            ),
            format!("{:.2}x", self.portmap_growth(0)),
            format!("{:.2}x", self.portmap_growth(1)),
            String::new(),
            "podwire ≤ 1.20x".into(),
        ]);
        t
    }

    /// The report's section (Markdown).
    pub fn markdown(&self) -> String {
        format!(
            "\n## 8. The whole node chain ({} pods per case)\n\n\
             `loopback` then the pod network (main plugin + IPAM, then the portmap plugin) through \
             podwire's runtime library, as containerd's CRI runs them for every pod: podwire's \
             `loopback`, `podwire` and `podwire-portmap` against Debian's `loopback`, `bridge` → \
             `host-local` and `portmap`. \"2 mappings\": a TCP and a UDP host port per pod. The \
             portmap rows exec the portmap plugin alone with the main plugin's result, pods \
             accumulating on one node (`podwire-bench --only chain`). \"floor\": the same runtime \
             calls with every plugin a static `cni-noop-plugin` (three execs and two result-cache \
             writes), plus the pod's kernel objects made in-process (item 1's kernel floor): \
             what no chain of exec'd plugins can go below, so floor / reference is the best \
             ratio any such chain could show on this machine. \"ratio above floor\" compares \
             what the plugins themselves add.\n\n{}",
            self.pods,
            self.table().markdown()
        ) + &self.steps_markdown()
    }

    fn steps_markdown(&self) -> String {
        if self.steps.is_empty() {
            return String::new();
        }
        let mut t = Table::new(&["podwire ADD step", "median µs", "p90 µs"]);
        for (step, med, p90) in &self.steps {
            t.row(vec![step.clone(), format!("{med:.0}"), format!("{p90:.0}")]);
        }
        format!(
            "\nWhere podwire's own ADD spends its time in the no-mapping case, from its trace \
             lines (`--log-file`; the steps run in this order, the whole operation first):\n\n{}",
            t.markdown()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_times_take_the_timed_pods_adds_only() {
        let log = std::env::temp_dir().join(format!("podwire-chain-steps-{}", std::process::id()));
        let op = |cmd: &str, id: &str, total: u32, veth: u32| {
            json!({"command": cmd, "containerID": id, "durationUs": total,
                   "steps": [{"step": "parse", "durationUs": 10}, {"step": "veth", "durationUs": veth}]})
            .to_string()
        };
        let lines = [
            "2026-12-02T05:00:00Z info podwire ADD x/eth0: added".to_string(),
            op("ADD", "p-ch0s0-1", 1000, 300),
            op("ADD", "p-ch0s0-2", 1200, 500),
            op("ADD", "p-ch0s0-3", 1100, 400),
            op("ADD", "p-ch0w0-1", 9000, 9000), // warm-up
            op("DEL", "p-ch0s0-1", 9000, 9000),
            op("ADD", "p-ch1s0-1", 9000, 9000), // the 2-mapping case
        ];
        std::fs::write(&log, lines.join("\n")).unwrap();
        let got = step_times(&log, "-ch0s0-");
        std::fs::remove_file(&log).unwrap();
        assert_eq!(
            got,
            vec![
                ("whole ADD".to_string(), 1100.0, 1200.0),
                ("parse".to_string(), 10.0, 10.0),
                ("veth".to_string(), 400.0, 500.0),
            ]
        );
    }

    #[test]
    fn no_log_no_steps_section() {
        assert!(ChainFigures::default().steps_markdown().is_empty());
        assert!(step_times(Path::new("/nonexistent/podwire.log"), "-ch0s0-").is_empty());
    }
}
