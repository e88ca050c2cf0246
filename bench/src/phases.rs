//! The measurement loops. Every loop interleaves its subjects (A/B/A/B, the starting subject
//! rotating each step) so that a noisy moment on this small machine hits all of them alike.
//! Namespaces are created before a loop and deleted after it, then the kernel is given time to
//! finish tearing them down, so neither lands in a timed region.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::scene::{settle, Pod, Scene};
use crate::subjects::{result_ip, PluginNet, Sample, Subject};

/// How long to wait at most for namespace teardown between loops.
const SETTLE: Duration = Duration::from_secs(20);

/// The timed ADDs and DELs of one subject, in pod order.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: &'static str,
    pub add: Vec<Sample>,
    pub del: Vec<Sample>,
}

impl Series {
    pub fn add_ms(&self) -> Vec<f64> {
        self.add.iter().map(Sample::ms).collect()
    }
    pub fn add_cpu_ms(&self) -> Vec<f64> {
        self.add.iter().map(Sample::cpu_ms).collect()
    }
    pub fn del_ms(&self) -> Vec<f64> {
        self.del.iter().map(Sample::ms).collect()
    }
    pub fn add_rss_kib(&self) -> Vec<f64> {
        self.add
            .iter()
            .filter_map(|s| s.max_rss_kib)
            .map(|k| k as f64)
            .collect()
    }
    pub fn del_rss_kib(&self) -> Vec<f64> {
        self.del
            .iter()
            .filter_map(|s| s.max_rss_kib)
            .map(|k| k as f64)
            .collect()
    }
}

/// Untimed ADD + DEL of a few pods per subject: bridges created, binaries and dataDirs warm.
pub fn warm_up(scene: &Scene, subjects: &[&dyn Subject], tag: &str, n: usize) {
    for (k, s) in subjects.iter().enumerate() {
        let pods = scene.pods(&format!("{tag}{k}w"), n);
        for p in &pods {
            s.add(p);
        }
        for p in &pods {
            s.del(p);
        }
        scene.drop_pods(&pods);
    }
    settle(SETTLE);
}

/// `n` fresh pods per subject: all ADDs one after the other (the bridge filling up), then all
/// DELs in the same order, interleaved across subjects.
pub fn sequential(scene: &Scene, subjects: &[&dyn Subject], tag: &str, n: usize) -> Vec<Series> {
    let k = subjects.len();
    let pods: Vec<Vec<Pod>> = (0..k)
        .map(|j| scene.pods(&format!("{tag}{j}-"), n))
        .collect();
    let mut out: Vec<Series> = subjects
        .iter()
        .map(|s| Series {
            label: s.label(),
            add: Vec::with_capacity(n),
            del: Vec::with_capacity(n),
        })
        .collect();
    settle(SETTLE);
    for (i, s) in interleaved(n, k) {
        out[s].add.push(subjects[s].add(&pods[s][i]));
    }
    for (i, s) in interleaved(n, k) {
        out[s].del.push(subjects[s].del(&pods[s][i]));
    }
    for p in &pods {
        scene.drop_pods(p);
    }
    settle(SETTLE);
    out
}

/// (step, subject) pairs: every subject once per step, the first one rotating.
fn interleaved(steps: usize, subjects: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..steps).flat_map(move |i| (0..subjects).map(move |j| (i, (i + j) % subjects)))
}

/// One burst of concurrent ADDs.
#[derive(Debug, Clone)]
pub struct Burst {
    pub label: &'static str,
    /// First spawn → last exit.
    pub wall: Duration,
    /// First spawn → last spawn (the harness's share of `wall`).
    pub launch: Duration,
    pub succeeded: usize,
    pub distinct_ips: usize,
    /// The first few failures, verbatim.
    pub failures: Vec<String>,
}

/// `rounds` bursts of `n` ADDs started at once, per network, alternating which goes first. Each
/// burst gets fresh pods and is DELeted (untimed) before the next.
pub fn concurrent(
    scene: &Scene,
    nets: &[&PluginNet],
    tag: &str,
    n: usize,
    rounds: usize,
) -> Vec<Vec<Burst>> {
    let k = nets.len();
    let mut out = vec![Vec::new(); k];
    for r in 0..rounds {
        for j in 0..k {
            let s = (r + j) % k;
            let net = nets[s];
            let pods = scene.pods(&format!("{tag}{s}r{r}-"), n);
            settle(SETTLE);
            let t = Instant::now();
            let running: Vec<_> = pods.iter().map(|p| net.start("ADD", p)).collect();
            let launch = t.elapsed();
            let finished: Vec<_> = running
                .into_iter()
                .map(|r| r.finish().expect("wait for a concurrent ADD"))
                .collect();
            let wall = t.elapsed();
            let mut ips = HashSet::new();
            let mut failures = Vec::new();
            let mut succeeded = 0;
            for f in &finished {
                match (f.ok(), result_ip(&f.stdout)) {
                    (true, Some(ip)) => {
                        succeeded += 1;
                        ips.insert(ip);
                    }
                    _ if failures.len() < 3 => failures.push(f.describe()),
                    _ => {}
                }
            }
            for p in &pods {
                let _ = net.start("DEL", p).finish();
            }
            scene.drop_pods(&pods);
            out[s].push(Burst {
                label: crate::subjects::Subject::label(net),
                wall,
                launch,
                succeeded,
                distinct_ips: ips.len(),
                failures,
            });
        }
    }
    settle(SETTLE);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaving_rotates_the_first_subject() {
        let order: Vec<_> = interleaved(3, 2).collect();
        assert_eq!(order, vec![(0, 0), (0, 1), (1, 1), (1, 0), (2, 0), (2, 1)]);
    }
}
