//! Turning a run into the table of medians and ratios, the target checks, and
//! `docs/benchmarks.md`.

use std::time::Duration;

use crate::ipam_alloc::IpamAlloc;
use crate::machine::Machine;
use crate::phases::{Burst, Series};
use crate::stats::{median, Summary};
use crate::table::Table;

pub const PODWIRE: &str = "podwire";
pub const REFERENCE: &str = "reference";
pub const FLOOR: &str = "kernel floor";
pub const PROCESS: &str = "process";
pub const BASELINE: &str = "baseline";

/// How much was measured.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    pub pods: usize,
    pub growth_pods: usize,
    /// Pods at each end of the growth run that are compared (10: pods 1–10 vs 241–250).
    pub growth_window: usize,
    /// How many times the growth run was repeated (each window pools every round).
    pub growth_rounds: usize,
    pub burst: usize,
    pub rounds: usize,
}

/// Item 7: RunPodSandbox + StopPodSandbox + RemovePodSandbox under containerd, per cycle (ms).
#[derive(Debug, Clone, Default)]
pub struct CriFigures {
    pub podwire: Vec<f64>,
    pub reference: Vec<f64>,
    /// What one harness call costs with no pod work (three of them are in each cycle).
    pub call_overhead_ms: f64,
}

pub struct Report {
    pub machine: Machine,
    pub date: String,
    pub params: Params,
    /// podwire, reference, kernel floor, process.
    pub seq: Vec<Series>,
    /// podwire, reference, kernel floor.
    pub growth: Vec<Series>,
    /// [podwire, reference][round].
    pub bursts: Vec<Vec<Burst>>,
    pub ipam: Option<IpamAlloc>,
    /// Why item 7 was not measured, when it was not.
    pub cri: Result<CriFigures, String>,
    /// Item 8, when measured.
    pub chain: Option<crate::chain::ChainFigures>,
    /// Item 9, when measured.
    pub range: Option<crate::range::RangeFigures>,
    pub elapsed: Duration,
}

/// One target of the issue, checked.
#[derive(Debug, Clone)]
pub struct Check {
    pub target: String,
    pub measured: String,
    pub met: bool,
}

fn ms(v: f64) -> String {
    if v.is_nan() {
        "—".into()
    } else if v < 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.1}")
    }
}

fn ratio(a: f64, b: f64) -> String {
    let r = a / b;
    if r.is_finite() {
        format!("{r:.2}×")
    } else {
        "—".into()
    }
}

fn mib(kib: f64) -> String {
    if kib.is_nan() {
        "—".into()
    } else {
        format!("{:.1}", kib / 1024.0)
    }
}

fn find<'a>(v: &'a [Series], label: &str) -> Option<&'a Series> {
    v.iter().find(|s| s.label == label)
}

/// Median ADD latency of pods `range` (0-based) of a growth run of `n` pods per round, over
/// every round (rounds are concatenated in `s.add`).
fn window_median(s: &Series, n: usize, range: std::ops::Range<usize>) -> f64 {
    window_median_of(&s.add_ms(), n, range)
}

fn window_median_of(add: &[f64], n: usize, range: std::ops::Range<usize>) -> f64 {
    let picked: Vec<f64> = add
        .iter()
        .enumerate()
        .filter(|(k, _)| range.contains(&(k % n.max(1))))
        .map(|(_, v)| *v)
        .collect();
    median(&picked)
}

impl Report {
    fn growth_ranges(&self) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let n = self.params.growth_pods;
        let w = self.params.growth_window.min(n);
        (0..w, n - w..n)
    }

    /// (first window median, last window median) of a growth series.
    pub fn growth_of(&self, label: &str) -> Option<(f64, f64)> {
        let s = find(&self.growth, label)?;
        let (a, b) = self.growth_ranges();
        let n = self.params.growth_pods;
        Some((window_median(s, n, a), window_median(s, n, b)))
    }

    /// The same for the ADDs' CPU time.
    pub fn growth_cpu_of(&self, label: &str) -> Option<(f64, f64)> {
        let s = find(&self.growth, label)?;
        let (a, b) = self.growth_ranges();
        let n = self.params.growth_pods;
        let cpu = s.add_cpu_ms();
        Some((window_median_of(&cpu, n, a), window_median_of(&cpu, n, b)))
    }

    fn cpu_median(&self, label: &str) -> f64 {
        find(&self.seq, label).map_or(f64::NAN, |s| median(&s.add_cpu_ms()))
    }

    fn burst_wall_median(&self, label: &str) -> f64 {
        let walls: Vec<f64> = self
            .bursts
            .iter()
            .flatten()
            .filter(|b| b.label == label)
            .map(|b| b.wall.as_secs_f64() * 1e3)
            .collect();
        median(&walls)
    }

    fn burst_worst_ips(&self, label: &str) -> Option<usize> {
        self.bursts
            .iter()
            .flatten()
            .filter(|b| b.label == label)
            .map(|b| b.distinct_ips.min(b.succeeded))
            .min()
    }

    fn summary(&self, label: &str, del: bool) -> Summary {
        match find(&self.seq, label) {
            Some(s) => Summary::of(&if del { s.del_ms() } else { s.add_ms() }),
            None => Summary::of(&[]),
        }
    }

    fn rss(&self, label: &str, del: bool) -> f64 {
        match find(&self.seq, label) {
            Some(s) => median(&if del {
                s.del_rss_kib()
            } else {
                s.add_rss_kib()
            }),
            None => f64::NAN,
        }
    }

    /// The issue's targets, each with what was measured.
    pub fn checks(&self) -> Vec<Check> {
        let mut out = Vec::new();
        let add = (self.summary(PODWIRE, false), self.summary(REFERENCE, false));
        out.push(Check {
            target: "ADD median ≤ 0.25 × reference".into(),
            measured: format!(
                "{} ({} vs {} ms)",
                ratio(add.0.median, add.1.median),
                ms(add.0.median),
                ms(add.1.median)
            ),
            met: add.0.median <= 0.25 * add.1.median,
        });
        let del = (self.summary(PODWIRE, true), self.summary(REFERENCE, true));
        out.push(Check {
            target: "DEL median ≤ 1.0 × reference".into(),
            measured: format!(
                "{} ({} vs {} ms)",
                ratio(del.0.median, del.1.median),
                ms(del.0.median),
                ms(del.1.median)
            ),
            met: del.0.median <= del.1.median,
        });
        if let Some((first, last)) = self.growth_of(PODWIRE) {
            let (a, b) = self.growth_ranges();
            out.push(Check {
                target: format!(
                    "growth: ADD median of pods {}–{} ≤ 1.1 × pods {}–{}",
                    b.start + 1,
                    b.end,
                    a.start + 1,
                    a.end
                ),
                measured: format!("{} ({} → {} ms)", ratio(last, first), ms(first), ms(last)),
                met: last <= 1.1 * first,
            });
        }
        let (pw, rf) = (
            self.burst_wall_median(PODWIRE),
            self.burst_wall_median(REFERENCE),
        );
        out.push(Check {
            target: format!(
                "{} concurrent ADDs: wall time ≤ 0.33 × reference",
                self.params.burst
            ),
            measured: format!("{} ({} vs {} ms)", ratio(pw, rf), ms(pw), ms(rf)),
            met: pw <= 0.33 * rf,
        });
        let ips = self.burst_worst_ips(PODWIRE).unwrap_or(0);
        out.push(Check {
            target: format!(
                "{} concurrent ADDs: {} distinct IPs in every round",
                self.params.burst, self.params.burst
            ),
            measured: format!("{ips} (fewest in a round)"),
            met: ips == self.params.burst,
        });
        for (what, del) in [("ADD", false), ("DEL", true)] {
            let (p, r) = (self.rss(PODWIRE, del), self.rss(REFERENCE, del));
            out.push(Check {
                target: format!("peak RSS of one {what} ≤ 0.5 × reference"),
                measured: format!("{} ({} vs {} MiB)", ratio(p, r), mib(p), mib(r)),
                met: p <= 0.5 * r,
            });
        }
        out
    }

    /// The table of medians and ratios (terminal and docs).
    pub fn table(&self) -> Table {
        let mut t = Table::new(&[
            "measure",
            "podwire",
            "reference",
            "kernel floor",
            "podwire / reference",
            "podwire / floor",
        ]);
        let n = self.params.pods;
        for (what, del) in [("ADD", false), ("DEL", true)] {
            let (p, r, f) = (
                self.summary(PODWIRE, del),
                self.summary(REFERENCE, del),
                self.summary(FLOOR, del),
            );
            for (stat, get) in [
                ("median", (|s: &Summary| s.median) as fn(&Summary) -> f64),
                ("p90", |s: &Summary| s.p90),
                ("max", |s: &Summary| s.max),
            ] {
                t.row(vec![
                    format!("1. {what} {stat}, {n} pods sequential (ms)"),
                    ms(get(&p)),
                    ms(get(&r)),
                    ms(get(&f)),
                    ratio(get(&p), get(&r)),
                    ratio(get(&p), get(&f)),
                ]);
            }
        }
        let (p, r, f) = (
            self.cpu_median(PODWIRE),
            self.cpu_median(REFERENCE),
            self.cpu_median(FLOOR),
        );
        t.row(vec![
            format!("1. ADD CPU time (user + sys), median, {n} pods (ms)"),
            ms(p),
            ms(r),
            ms(f),
            ratio(p, r),
            ratio(p, f),
        ]);
        if find(&self.seq, BASELINE).is_some() {
            for (what, del) in [("ADD", false), ("DEL", true)] {
                let (p, b) = (self.summary(PODWIRE, del), self.summary(BASELINE, del));
                t.row(vec![
                    format!(
                        "1. {what} median: podwire / baseline build ({} ms)",
                        ms(b.median)
                    ),
                    ms(p.median),
                    String::new(),
                    String::new(),
                    format!("{} of baseline", ratio(p.median, b.median)),
                    String::new(),
                ]);
            }
        }
        let (a, b) = self.growth_ranges();
        let g = |l: &str| self.growth_of(l).unwrap_or((f64::NAN, f64::NAN));
        let (gp, gr, gf) = (g(PODWIRE), g(REFERENCE), g(FLOOR));
        t.row(vec![
            format!(
                "2. ADD median, pods {}–{} of {} (ms)",
                a.start + 1,
                a.end,
                self.params.growth_pods
            ),
            ms(gp.0),
            ms(gr.0),
            ms(gf.0),
            ratio(gp.0, gr.0),
            ratio(gp.0, gf.0),
        ]);
        t.row(vec![
            format!("2. ADD median, pods {}–{} (ms)", b.start + 1, b.end),
            ms(gp.1),
            ms(gr.1),
            ms(gf.1),
            ratio(gp.1, gr.1),
            ratio(gp.1, gf.1),
        ]);
        t.row(vec![
            "2. growth (last / first)".into(),
            ratio(gp.1, gp.0),
            ratio(gr.1, gr.0),
            ratio(gf.1, gf.0),
            String::new(),
            String::new(),
        ]);
        if let Some(gb) = self.growth_of(BASELINE) {
            t.row(vec![
                format!(
                    "2. growth: podwire / baseline build ({} → {} ms, {})",
                    ms(gb.0),
                    ms(gb.1),
                    ratio(gb.1, gb.0)
                ),
                ratio(gp.1, gp.0),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]);
        }
        let c = |l: &str| self.growth_cpu_of(l).unwrap_or((f64::NAN, f64::NAN));
        let (cp, cr, cf) = (c(PODWIRE), c(REFERENCE), c(FLOOR));
        t.row(vec![
            format!(
                "2. ADD CPU time, pods {}–{} → {}–{} (ms)",
                a.start + 1,
                a.end,
                b.start + 1,
                b.end
            ),
            format!("{} → {}", ms(cp.0), ms(cp.1)),
            format!("{} → {}", ms(cr.0), ms(cr.1)),
            format!("{} → {}", ms(cf.0), ms(cf.1)),
            String::new(),
            String::new(),
        ]);
        t.row(vec![
            "2. CPU time growth (last / first)".into(),
            ratio(cp.1, cp.0),
            ratio(cr.1, cr.0),
            ratio(cf.1, cf.0),
            String::new(),
            String::new(),
        ]);
        let pr = g(PROCESS);
        t.row(vec![
            format!(
                "2. a process alone beside them, pods {}–{} → {}–{} (ms)",
                a.start + 1,
                a.end,
                b.start + 1,
                b.end
            ),
            String::new(),
            String::new(),
            format!("{} → {} ({})", ms(pr.0), ms(pr.1), ratio(pr.1, pr.0)),
            String::new(),
            String::new(),
        ]);
        let (pw, rf) = (
            self.burst_wall_median(PODWIRE),
            self.burst_wall_median(REFERENCE),
        );
        t.row(vec![
            format!(
                "3. {} ADDs at once: wall, median of {} (ms)",
                self.params.burst, self.params.rounds
            ),
            ms(pw),
            ms(rf),
            String::new(),
            ratio(pw, rf),
            String::new(),
        ]);
        let base = self.burst_wall_median(BASELINE);
        if !base.is_nan() {
            t.row(vec![
                format!("3. wall: podwire / baseline build ({} ms)", ms(base)),
                ms(pw),
                String::new(),
                String::new(),
                format!("{} of baseline", ratio(pw, base)),
                String::new(),
            ]);
        }
        let ips = |l: &str| {
            self.burst_worst_ips(l)
                .map(|n| n.to_string())
                .unwrap_or_default()
        };
        t.row(vec![
            "3. distinct IPs (fewest in a round)".into(),
            ips(PODWIRE),
            ips(REFERENCE),
            String::new(),
            String::new(),
            String::new(),
        ]);
        for (what, del) in [("ADD", false), ("DEL", true)] {
            let (p, r) = (self.rss(PODWIRE, del), self.rss(REFERENCE, del));
            t.row(vec![
                format!("4. peak RSS of one {what}, median (MiB)"),
                mib(p),
                mib(r),
                String::new(),
                ratio(p, r),
                String::new(),
            ]);
        }
        if let Some(ipam) = &self.ipam {
            let exec = ipam.row("podwire-ipam (exec)");
            let inproc = ipam.row("podwire-ipam (in-process)");
            let hl = ipam.row("host-local");
            for (i, n) in ipam.checkpoints.iter().enumerate() {
                let get = |r: Option<&crate::ipam_alloc::Row>| {
                    r.and_then(|r| r.ms.get(i).copied()).unwrap_or(f64::NAN)
                };
                t.row(vec![
                    format!("5. IPAM ADD+DEL at the {n}. of a /20 (ms): exec [in-process]"),
                    format!("{} [{}]", ms(get(exec)), ms(get(inproc))),
                    ms(get(hl)),
                    String::new(),
                    format!(
                        "{} [{}]",
                        ratio(get(exec), get(hl)),
                        ratio(get(inproc), get(hl))
                    ),
                    String::new(),
                ]);
            }
        } else {
            t.row(vec![
                "5. IPAM ADD+DEL (crates/ipam/benches/alloc.rs)".into(),
                "not run".into(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]);
        }
        let proc_ms = self.summary(PROCESS, false).median;
        t.row(vec![
            "6. a process alone: /bin/true spawn → exit, median (ms)".into(),
            String::new(),
            String::new(),
            ms(proc_ms),
            String::new(),
            String::new(),
        ]);
        match &self.cri {
            Ok(c) => {
                let (p, r) = (median(&c.podwire), median(&c.reference));
                t.row(vec![
                    format!(
                        "7. CRI RunPodSandbox+Stop+Remove, median of {} (ms)",
                        c.podwire.len()
                    ),
                    ms(p),
                    ms(r),
                    String::new(),
                    ratio(p, r),
                    String::new(),
                ]);
            }
            Err(_) => t.row(vec![
                "7. CRI RunPodSandbox+Stop+Remove".into(),
                "not run".into(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]),
        }
        t
    }

    /// The growth target next to what the kernel alone does in the same run: the floor is the
    /// same kernel work with no plugin at all, so no plugin can grow less than it does.
    fn growth_context(&self) -> String {
        let (Some(p), Some(f)) = (self.growth_of(PODWIRE), self.growth_of(FLOOR)) else {
            return String::new();
        };
        let cpu = |l: &str| {
            self.growth_cpu_of(l)
                .map_or(String::from("—"), |(a, b)| ratio(b, a))
        };
        let bare = self
            .growth_of(PROCESS)
            .map_or(String::from("—"), |(a, b)| ratio(b, a));
        format!(
            "\nGrowth in context: the kernel floor, the same kernel objects made in-process with no plugin \
             logic, grew {} in this run (podwire {}). In CPU time podwire grew {}, the floor {}; a bare \
             process beside them {}. What grows is kernel work: attaching a port walks every port of the \
             bridge, kernel workers flood each new pod's IPv6 multicast to every port and hold the RTNL \
             lock while they do, and the ADD waits for it (profile: [growth.md](growth.md)).\n",
            ratio(f.1, f.0),
            ratio(p.1, p.0),
            cpu(PODWIRE),
            cpu(FLOOR),
            bare,
        )
    }

    fn checks_table(&self) -> Table {
        let mut t = Table::new(&["target", "measured", "met"]);
        for c in self.checks() {
            t.row(vec![
                c.target,
                c.measured,
                if c.met { "yes" } else { "NO" }.into(),
            ]);
        }
        t
    }

    /// What the terminal shows.
    pub fn text(&self) -> String {
        let mut s = format!(
            "podwire vs reference (bridge + host-local) vs kernel floor — {}\n\n",
            self.machine.one_line()
        );
        s.push_str(&self.table().text());
        s.push('\n');
        s.push_str(&self.checks_table().text());
        if let Err(why) = &self.cri {
            s.push_str(&format!("\n7. CRI not measured: {why}\n"));
        }
        if let Some(c) = &self.chain {
            s.push_str(&format!(
                "\n8. the whole node chain, {} pods per case\n",
                c.pods
            ));
            s.push_str(&c.table().text());
        }
        if let Some(r) = &self.range {
            s.push_str("\n9. a 5,000-port range\n");
            s.push_str(&r.table().text());
        }
        s.push_str(&format!(
            "\n(run took {:.0} s)\n",
            self.elapsed.as_secs_f64()
        ));
        s
    }

    /// `docs/benchmarks.md`.
    pub fn markdown(&self) -> String {
        let m = &self.machine;
        let p = &self.params;
        let mut s = String::new();
        s.push_str("# Benchmarks\n\n");
        s.push_str(
            "podwire against Debian's reference plugins (`bridge` + `host-local`) and against the kernel \
             floor, measured side by side in one run. These machines are small and noisy, so a figure only \
             means something next to its peer from the same run: read the ratios.\n\n",
        );
        s.push_str(&format!(
            "Generated by `sudo ./scripts/bench.sh` on {} (the run took {:.0} s). Do not edit: rerun.\n\n",
            self.date,
            self.elapsed.as_secs_f64()
        ));
        s.push_str("| machine | |\n| --- | --- |\n");
        for (k, v) in [
            ("CPU", format!("{} × {}", m.cpus, m.cpu)),
            ("memory", m.memory.clone()),
            ("kernel", format!("Linux {}", m.kernel)),
            ("OS", m.os.clone()),
            ("reference plugins", m.reference.clone()),
            ("podwire", m.podwire.clone()),
            ("compiler", m.rustc.clone()),
        ] {
            s.push_str(&format!("| {k} | {v} |\n"));
        }
        s.push_str("\n## Results\n\n");
        s.push_str(&self.table().markdown());
        s.push_str("\n## Targets\n\n");
        s.push_str(&self.checks_table().markdown());
        s.push_str(&self.growth_context());
        if let Some(c) = &self.chain {
            s.push_str(&c.markdown());
        }
        if let Some(r) = &self.range {
            s.push_str(&r.markdown());
        }
        s.push_str("\n![ADD and DEL latency distributions, and ADD latency as the bridge fills up](benchmarks.svg)\n");
        s.push_str(&format!("\n## {} ADDs at once, per round\n\n", p.burst));
        let mut bt = Table::new(&[
            "round",
            "plugin",
            "wall (ms)",
            "launch spread (ms)",
            "succeeded",
            "distinct IPs",
        ]);
        for (r, _) in self.bursts.first().into_iter().flatten().enumerate() {
            for series in &self.bursts {
                if let Some(b) = series.get(r) {
                    bt.row(vec![
                        (r + 1).to_string(),
                        b.label.to_string(),
                        ms(b.wall.as_secs_f64() * 1e3),
                        ms(b.launch.as_secs_f64() * 1e3),
                        b.succeeded.to_string(),
                        b.distinct_ips.to_string(),
                    ]);
                }
            }
        }
        s.push_str(&bt.markdown());
        let failures: Vec<&String> = self
            .bursts
            .iter()
            .flatten()
            .flat_map(|b| &b.failures)
            .collect();
        if !failures.is_empty() {
            s.push_str("\nFailures (first few):\n\n");
            for f in failures.iter().take(6) {
                s.push_str(&format!("- `{}`\n", f.replace('`', "'")));
            }
        }
        s.push_str("\n## IPAM alone\n\n");
        match &self.ipam {
            Some(i) => s.push_str(&format!(
                "From podwire-ipam's own benchmark (`crates/ipam/benches/alloc.rs`, run after every other item, so that its \
                 thousands of created and deleted files cannot slow the others' file systems), \
                 which interleaves podwire-ipam (exec'd, and in-process as the bridge plugin uses it) with \
                 host-local in its run:\n\n```text\n{}\n```\n",
                i.raw
            )),
            None => s.push_str("Not run in this run (`podwire-bench` was given neither `--ipam-bench` nor `--ipam-alloc`).\n"),
        }
        s.push_str("\n## Under containerd's CRI\n\n");
        match &self.cri {
            Ok(c) => s.push_str(&format!(
                "RunPodSandbox + StopPodSandbox + RemovePodSandbox, one private containerd ({}) per conflist \
                 (the same plugin options as above), {} cycles each, interleaved after a warm-up: podwire \
                 median {} ms, reference median {} ms ({}). Each call is one `podwire-cri` process (the \
                 tests/runtimes harness's CLI); one such call with no pod work costs {} ms, three per cycle, \
                 alike for both.\n",
                self.machine.containerd,
                c.podwire.len(),
                ms(median(&c.podwire)),
                ms(median(&c.reference)),
                ratio(median(&c.podwire), median(&c.reference)),
                ms(c.call_overhead_ms)
            )),
            Err(why) => s.push_str(&format!("Not measured in this run: {why}\n")),
        }
        s.push_str(&format!(
            "\n## Method\n\n\
             - Every plugin process is spawned directly by `podwire-bench` (`bench/`), from a thread that sits in a \
               throwaway \"node\" netns, so the child starts there (no `ip netns exec`, which adds ≈4 ms of mount \
               work per call). Time is spawn → exit; the config is in the stdin pipe before the clock starts. Peak \
               RSS is `ru_maxrss` from `wait4` (for the reference, the larger of `bridge` and the `host-local` it \
               runs).\n\
             - Both plugins: CNI 1.0.0, their own bridge and `dataDir`, subnets of the same size, `isGateway` and \
               `isDefaultGateway` true, `ipMasq` false, default MTU. podwire uses its in-process `podwire-ipam`; the \
               reference `bridge` execs `host-local`.\n\
             - Each pod is a fresh netns created before the timed loop and deleted after it; the run waits for the \
               kernel to finish tearing namespaces down before the next loop.\n\
             - Loops interleave the subjects A/B/A/B with the first one rotating. 1: {pods} pods each, all ADDs then \
               all DELs. 2: {gp} pods each on one bridge (/23), {gr} rounds on fresh bridges; each window pools every round. 3: {burst} ADDs started at once, {rounds} rounds each. \
               6: the kernel floor does the same kernel work in-process with the `kernel` crate (open the pod netns, \
               veth pair with the peer born in it and the host end on the bridge and up in one request, eth0 up, \
               address, default route; DEL deletes eth0), interleaved with the plugins in 1 and 2.\n\
             - CPU time is the plugin process's user + system time from `wait4` (the floor: its thread's CPU \
               time). It includes the kernel's work inside the plugin's system calls and lock spinning, not time \
               spent asleep (waiting for the RTNL lock, or for a CPU). In 2, `/bin/true` is spawned between the \
               plugins' ADDs: how much a timed region grows from the environment alone (kernel workers and \
               softirqs busy with the pods already there) as the bridges fill up.\n",
            pods = p.pods,
            gp = p.growth_pods,
            gr = p.growth_rounds,
            burst = p.burst,
            rounds = p.rounds,
        ));
        s
    }
}
