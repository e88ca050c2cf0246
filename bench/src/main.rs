//! `podwire-bench`: podwire against the reference plugins and the kernel floor, in one run.
//! Run through `scripts/bench.sh` (builds, installs the reference plugins, runs the IPAM
//! benchmark, then this); as root.

use std::path::{Path, PathBuf};
use std::time::Instant;

use bench::floor::KernelFloor;
use bench::ipam_alloc::IpamAlloc;
use bench::machine::Machine;
use bench::phases;
use bench::report::{Params, Report, BASELINE};
use bench::scene::{self, Scene};
use bench::subjects::{Flavor, PluginNet, ProcessFloor, Subject};

const USAGE: &str = "\
usage: podwire-bench [options]   (as root)
  --podwire PATH        the podwire plugin binary (default: beside this binary)
  --reference-dir DIR   Debian's reference plugins (default: /usr/lib/cni)
  --out-dir DIR         write DIR/benchmarks.md and DIR/benchmarks.svg
  --ipam-bench PROGRAM  podwire-ipam's alloc benchmark binary, run last (item 5): its thousands
                        of file creations and deletions must not precede the other items
  --ipam-alloc FILE     or: its output, from an earlier `cargo bench -p podwire-ipam --bench alloc`
  --baseline PATH       another podwire build (e.g. before a change) measured beside podwire in
                        the sequential, growth and burst runs, for before/after figures on a
                        noisy machine
  --version-label TEXT  what podwire build this is, for the report (e.g. a git commit)
  --log-file FILE       podwire's networks (and the baseline's) log to FILE: what logging and
                        the per-operation trace lines cost, and (item 8) where podwire's
                        share of the chain goes, step by step
  --pods N              sequential pods per plugin (default 100)
  --growth N            pods on one bridge for the growth run (default 250)
  --burst N             ADDs started at once (default 50)
  --rounds N            rounds of the concurrent burst (default 3)
  --only LIST           run only these of seq,growth,burst,cri,chain,range (e.g. --only seq
                        for a quick before/after check with --baseline; --only chain for item 8,
                        the whole node chain with loopback and portmap; --only range for item
                        9, podwire-portmap with a 5,000-port range)
  --range-rounds N      ADD + DEL rounds of the 5,000-port range (default 7)
  --cri-cli PATH        tests/runtimes' podwire-cri, for item 7 (default: beside this binary)
  --cri-cycles N        pod lifecycles per conflist under containerd (default 10)
  --growth-rounds N     how many times the growth run is repeated (default 2: 20 ADDs per window)
  --quick               a small run to try the setup (20 pods, growth 40, burst 10, 1 round)";

const PHASES: [&str; 6] = ["seq", "growth", "burst", "chain", "range", "cri"];

struct Options {
    range_rounds: usize,
    podwire: PathBuf,
    reference_dir: PathBuf,
    out_dir: Option<PathBuf>,
    ipam_alloc: Option<PathBuf>,
    ipam_bench: Option<PathBuf>,
    baseline: Option<PathBuf>,
    log_file: Option<PathBuf>,
    only: Vec<String>,
    growth_rounds: usize,
    cri_cli: PathBuf,
    cri_cycles: usize,
    label: String,
    pods: usize,
    growth: usize,
    burst: usize,
    rounds: usize,
}

fn parse_args() -> Result<Options, String> {
    let beside = |name: &str| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join(name)))
            .unwrap_or_else(|| PathBuf::from(name))
    };
    let mut o = Options {
        podwire: beside("podwire"),
        reference_dir: PathBuf::from("/usr/lib/cni"),
        out_dir: None,
        ipam_alloc: None,
        ipam_bench: None,
        baseline: None,
        log_file: None,
        only: PHASES.map(String::from).to_vec(),
        range_rounds: bench::range::ROUNDS,
        growth_rounds: 2,
        cri_cli: beside("podwire-cri"),
        cri_cycles: 10,
        label: String::new(),
        pods: 100,
        growth: 250,
        burst: 50,
        rounds: 3,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{a} needs a value"));
        let number = |v: String| -> Result<usize, String> {
            v.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{a} wants a positive number, not {v:?}"))
        };
        match a.as_str() {
            "--podwire" => o.podwire = value()?.into(),
            "--reference-dir" => o.reference_dir = value()?.into(),
            "--out-dir" => o.out_dir = Some(value()?.into()),
            "--ipam-alloc" => o.ipam_alloc = Some(value()?.into()),
            "--ipam-bench" => o.ipam_bench = Some(value()?.into()),
            "--baseline" => o.baseline = Some(value()?.into()),
            "--log-file" => o.log_file = Some(value()?.into()),
            "--version-label" => o.label = value()?,
            "--pods" => o.pods = number(value()?)?,
            "--growth" => o.growth = number(value()?)?,
            "--burst" => o.burst = number(value()?)?,
            "--rounds" => o.rounds = number(value()?)?,
            "--only" => {
                o.only = value()?.split(',').map(str::to_string).collect();
                if let Some(bad) = o.only.iter().find(|p| !PHASES.contains(&p.as_str())) {
                    return Err(format!(
                        "--only: unknown phase {bad:?} ({})",
                        PHASES.join(", ")
                    ));
                }
            }
            "--growth-rounds" => o.growth_rounds = number(value()?)?,
            "--range-rounds" => o.range_rounds = number(value()?)?,
            "--cri-cli" => o.cri_cli = value()?.into(),
            "--cri-cycles" => o.cri_cycles = number(value()?)?,
            "--quick" => {
                o.pods = 20;
                o.growth = 40;
                o.burst = 10;
                o.rounds = 1;
                o.growth_rounds = 1;
                o.cri_cycles = 3;
                o.range_rounds = 2;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown option {other:?}\n{USAGE}")),
        }
    }
    if o.pods > 250 || o.growth > 500 || o.burst > 250 {
        return Err(
            "at most 250 sequential pods (a /24), 500 growth pods (a /23), 250 in a burst".into(),
        );
    }
    Ok(o)
}

fn require(path: &Path, hint: &str) -> Result<(), String> {
    if path.is_file() {
        Ok(())
    } else {
        Err(format!("{} is missing: {hint}", path.display()))
    }
}

fn main() {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("podwire-bench: {e}");
            std::process::exit(2);
        }
    };
    let bridge = o.reference_dir.join("bridge");
    let checks = [
        require(
            &o.podwire,
            "build it with `cargo build --release -p podwire-bridge`",
        ),
        require(&bridge, "apt-get install containernetworking-plugins"),
        require(
            &o.reference_dir.join("host-local"),
            "apt-get install containernetworking-plugins",
        ),
    ];
    if let Some(Err(e)) = checks.into_iter().find(Result::is_err) {
        eprintln!("podwire-bench: {e}");
        std::process::exit(1);
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("podwire-bench: needs root (network namespaces, bridges)");
        std::process::exit(1);
    }
    let ipam = o.ipam_alloc.as_ref().and_then(|p| {
        let text = std::fs::read_to_string(p)
            .map_err(|e| eprintln!("podwire-bench: {}: {e} (item 5 left out)", p.display()))
            .ok()?;
        let parsed = IpamAlloc::parse(&text);
        if parsed.is_none() {
            eprintln!(
                "podwire-bench: {} has no alloc table (item 5 left out)",
                p.display()
            );
        }
        parsed
    });

    scene::install_signal_handlers();
    let started = Instant::now();
    let mut report = run(&o, &bridge, ipam, started);
    bench::spawn::remove_launcher();
    if let Some(program) = &o.ipam_bench {
        log(
            started,
            "5. IPAM alone (last: its file churn would tax the other items)",
        );
        report.ipam = run_ipam_bench(program);
        report.elapsed = started.elapsed();
    }
    print!("{}", report.text());
    if let Some(dir) = &o.out_dir {
        let write = |name: &str, body: String| {
            let path = dir.join(name);
            std::fs::write(&path, body).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
            println!("wrote {}", path.display());
        };
        write("benchmarks.md", report.markdown());
        write(
            "benchmarks.svg",
            bench::svg::chart(
                &format!(
                    "podwire vs reference vs kernel floor — {}",
                    report.machine.one_line()
                ),
                &report.seq,
                &report.growth,
                report.params.growth_pods,
            ),
        );
    }
}

fn log(started: Instant, what: &str) {
    eprintln!("[{:6.1} s] {what}", started.elapsed().as_secs_f64());
}

fn run(o: &Options, bridge: &Path, ipam: Option<IpamAlloc>, started: Instant) -> Report {
    let machine = Machine::describe(&o.label);
    let scene = Scene::new().unwrap_or_else(|e| panic!("set up the node netns: {e}"));
    let data = |name: &str| scene.root().join(name);
    let net = |flavor: Flavor, tag: &str, bridge_name: &str, subnet: &str| {
        let program = match flavor {
            Flavor::Podwire => o.podwire.as_path(),
            Flavor::Reference => bridge,
        };
        let who = match flavor {
            Flavor::Podwire => "pw",
            Flavor::Reference => "ref",
        };
        let n = PluginNet::new(
            flavor,
            program,
            &o.reference_dir,
            &format!("bench-{tag}-{who}"),
            bridge_name,
            subnet,
            &data(who),
        );
        match (&o.log_file, flavor) {
            (Some(f), Flavor::Podwire) => n.with_log_file(f),
            _ => n,
        }
    };

    let wants = |phase: &str| o.only.iter().any(|p| p == phase);
    let baseline = |tag: &str, bridge_name: &str, subnet: &str| {
        o.baseline.as_ref().map(|program| {
            let mut b = PluginNet::new(
                Flavor::Podwire,
                program,
                &o.reference_dir,
                &format!("bench-{tag}-base"),
                bridge_name,
                subnet,
                &data("base"),
            );
            b.label = BASELINE;
            match &o.log_file {
                Some(f) => b.with_log_file(f),
                None => b,
            }
        })
    };

    // 1, 4, 6: sequential ADD/DEL, peak RSS, kernel floor and a bare process, interleaved.
    let mut seq = Vec::new();
    if wants("seq") {
        let pw = net(Flavor::Podwire, "seq", "bpw0", "10.240.0.0/24");
        let rf = net(Flavor::Reference, "seq", "bref0", "10.241.0.0/24");
        let floor = KernelFloor::new("bfl0", "10.242.0.0/24");
        let base = baseline("seq", "bbase0", "10.245.0.0/24");
        let mut subjects: Vec<&dyn Subject> = vec![&pw, &rf, &floor, &ProcessFloor];
        subjects.extend(base.as_ref().map(|b| b as &dyn Subject));
        log(started, "warm-up");
        phases::warm_up(&scene, &subjects, "w", 3);
        log(
            started,
            &format!("1. sequential ADD/DEL, {} pods each", o.pods),
        );
        seq = phases::sequential(&scene, &subjects, "s", o.pods);
    }

    // 2: growth on a /23, same size for both; repeated on fresh bridges, rounds concatenated.
    let mut growth: Vec<bench::phases::Series> = Vec::new();
    if wants("growth") {
        for r in 0..o.growth_rounds {
            let subnet = |k: usize| format!("10.243.{}.0/23", 8 * r + 2 * k);
            let tag = format!("grow{r}");
            let pw = net(Flavor::Podwire, &tag, &format!("bpw1r{r}"), &subnet(0));
            let rf = net(Flavor::Reference, &tag, &format!("bref1r{r}"), &subnet(1));
            let floor = KernelFloor::new(&format!("bfl1r{r}"), &subnet(2));
            // The bare process too: what the environment alone does to a timed region as the
            // bridges fill up (background kernel work lands on whatever runs).
            let base = baseline(&tag, &format!("bbase1r{r}"), &subnet(3));
            let mut subjects: Vec<&dyn Subject> = vec![&pw, &rf, &floor, &ProcessFloor];
            subjects.extend(base.as_ref().map(|b| b as &dyn Subject));
            log(
                started,
                &format!(
                    "2. growth, {} pods on one bridge each (round {} of {})",
                    o.growth,
                    r + 1,
                    o.growth_rounds
                ),
            );
            let round = phases::sequential(&scene, &subjects, &format!("g{r}-"), o.growth);
            if growth.is_empty() {
                growth = round;
            } else {
                for (all, s) in growth.iter_mut().zip(round) {
                    all.add.extend(s.add);
                    all.del.extend(s.del);
                }
            }
        }
    }

    // 3: bursts of concurrent ADDs.
    let mut bursts = Vec::new();
    if wants("burst") {
        let pw = net(Flavor::Podwire, "burst", "bpw2", "10.244.0.0/24");
        let rf = net(Flavor::Reference, "burst", "bref2", "10.244.1.0/24");
        let base = baseline("burst", "bbase2", "10.244.2.0/24");
        let mut nets = vec![&pw, &rf];
        nets.extend(base.as_ref());
        log(
            started,
            &format!("3. {} ADDs at once, {} rounds each", o.burst, o.rounds),
        );
        bursts = phases::concurrent(&scene, &nets, "c", o.burst, o.rounds);
    }

    // 8: the whole node chain (loopback, main + IPAM, portmap) and the portmap plugin alone.
    let chain = wants("chain").then(|| {
        log(
            started,
            &format!("8. the whole node chain, {} pods per case", o.pods),
        );
        let dir = o.podwire.parent().unwrap_or(Path::new("."));
        bench::chain::measure(&scene, dir, &o.reference_dir, o.pods, o.log_file.as_deref())
    });

    // 9: podwire-portmap alone with a 5,000-port range.
    let range = wants("range").then(|| {
        log(
            started,
            &format!(
                "9. a {}-port range, {} ADD + DEL rounds",
                bench::range::PORTS,
                o.range_rounds
            ),
        );
        let dir = o.podwire.parent().unwrap_or(Path::new("."));
        bench::range::measure(&scene, dir, o.range_rounds)
    });

    // The thread leaves the node netns here: containerd runs in the host's, as on a node.
    drop(scene);

    // 7: under containerd's CRI, through the tests/runtimes harness.
    let cri = if !wants("cri") {
        Err("not asked for (--only)".to_string())
    } else if !o.cri_cli.is_file() {
        Err(format!(
            "{} is missing (cargo build --release -p podwire-runtime-tests)",
            o.cri_cli.display()
        ))
    } else {
        log(
            started,
            &format!("7. CRI pod lifecycles, {} per conflist", o.cri_cycles),
        );
        let root =
            std::env::temp_dir().join(format!("{}{}-cri", scene::PREFIX, std::process::id()));
        // podwire-cri installs the podwire build from <target>/release: the one measured above.
        let target_dir = o
            .podwire
            .parent()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let cli = bench::cri::Cli {
            program: o.cri_cli.clone(),
            target_dir,
        };
        let figures = bench::cri::ContainerdCri::start(&cli, &root, &o.reference_dir).and_then(
            |mut runner| {
                let mut f = bench::cri::measure(&mut runner, o.cri_cycles)?;
                f.call_overhead_ms = runner.call_overhead_ms;
                Ok(f)
            },
        );
        let _ = std::fs::remove_dir_all(&root);
        figures
    };
    log(started, "done");

    Report {
        machine,
        date: date(),
        params: Params {
            pods: o.pods,
            growth_pods: o.growth,
            growth_window: 10,
            growth_rounds: o.growth_rounds,
            burst: o.burst,
            rounds: o.rounds,
        },
        seq,
        growth,
        bursts,
        ipam,
        cri,
        chain,
        range,
        elapsed: started.elapsed(),
    }
}

/// Runs podwire-ipam's alloc benchmark (as `cargo bench` would: with `--bench`), shows its
/// output, and reads its table back.
fn run_ipam_bench(program: &Path) -> Option<IpamAlloc> {
    let out = std::process::Command::new(program)
        .arg("--bench")
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| {
            eprintln!(
                "podwire-bench: {}: {e} (item 5 left out)",
                program.display()
            )
        })
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    print!("{text}");
    let parsed = IpamAlloc::parse(&text);
    if !out.status.success() || parsed.is_none() {
        eprintln!(
            "podwire-bench: {} failed ({}) or printed no alloc table (item 5 left out)",
            program.display(),
            out.status
        );
        return None;
    }
    parsed
}

fn date() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
