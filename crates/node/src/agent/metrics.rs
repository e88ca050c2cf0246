//! The agent's metrics (`/metrics`, Prometheus' text format through `prometheus-client`), every
//! name under `podwire_agent_`. The loop and the controllers count through [`Metrics`]; the
//! HTTP listener's thread encodes them. docs/operations.md lists each one and what to alert on.
//!
//! A new controller counts its reconciles, changes and problems through the same calls as the
//! others (the loop times and counts each controller's pass by its [`super::Controller::name`]);
//! what only it has (NetworkPolicy: policies and set elements in force, packets dropped per
//! policy) it registers with [`Metrics::register`] when it is made.

use crate::peers::{Problem, ProblemKind};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Metric, Registry};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

type L1 = [(&'static str, String); 1];
type L2 = [(&'static str, String); 2];

fn l1(k: &'static str, v: &str) -> L1 {
    [(k, v.to_string())]
}

fn l2(k1: &'static str, v1: &str, k2: &'static str, v2: &str) -> L2 {
    [(k1, v1.to_string()), (k2, v2.to_string())]
}

fn duration_histogram() -> Histogram {
    // 0.5 ms to ~16 s: a pass over a few nodes to one over thousands on a slow kernel.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// The metrics, shared by the loop, the controllers and the listener (cheap to clone).
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Mutex<Registry>,
    reconciles: Family<L2, Counter>,
    duration: Family<L1, Histogram, fn() -> Histogram>,
    changes: Family<L2, Counter>,
    repairs: Family<L2, Counter>,
    write_failures: Family<L1, Counter>,
    peers: Family<L2, Gauge>,
    problems: Family<L2, Gauge>,
    nodes: Gauge,
    watch_restarts: Family<L1, Counter>,
    relists: Family<L1, Counter>,
    kernel_watch_reopens: Counter,
    api_errors: Family<L1, Counter>,
    events: Family<L1, Counter>,
    events_dropped: Counter,
    ready: Gauge,
    last_success: Gauge<f64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut r = Registry::with_prefix("podwire_agent");
        let inner = Inner {
            reconciles: Family::default(),
            duration: Family::new_with_constructor(duration_histogram as fn() -> Histogram),
            changes: Family::default(),
            repairs: Family::default(),
            write_failures: Family::default(),
            peers: Family::default(),
            problems: Family::default(),
            nodes: Gauge::default(),
            watch_restarts: Family::default(),
            relists: Family::default(),
            kernel_watch_reopens: Counter::default(),
            api_errors: Family::default(),
            events: Family::default(),
            events_dropped: Counter::default(),
            ready: Gauge::default(),
            last_success: Gauge::default(),
            registry: Mutex::new(Registry::default()),
        };
        r.register(
            "reconciles",
            "Reconcile passes of each controller, by result (error: it could not do its work)",
            inner.reconciles.clone(),
        );
        r.register(
            "reconcile_duration_seconds",
            "How long one controller's reconcile pass took",
            inner.duration.clone(),
        );
        r.register(
            "changes",
            "Kernel and node changes applied, by controller and kind",
            inner.changes.clone(),
        );
        r.register(
            "kernel_repairs",
            "Changes applied when no Node had changed: something in the kernel was removed or \
             altered and the agent put it back",
            inner.repairs.clone(),
        );
        r.register(
            "kernel_write_failures",
            "Kernel writes that failed (retried on the next pass)",
            inner.write_failures.clone(),
        );
        r.register(
            "peers",
            "Peer pod CIDRs by path: direct, vxlan, or unrouted with the reason",
            inner.peers.clone(),
        );
        r.register(
            "problems",
            "Problems in force after the last pass, by controller and kind",
            inner.problems.clone(),
        );
        r.register("nodes", "Node objects known", inner.nodes.clone());
        r.register(
            "watch_restarts",
            "API watch errors after which the watch was started again, by resource",
            inner.watch_restarts.clone(),
        );
        r.register(
            "watch_relists",
            "Full re-lists after the first one (a broken or expired watch), by resource",
            inner.relists.clone(),
        );
        r.register(
            "kernel_watch_reopens",
            "Times the rtnetlink monitor was opened again after notifications were lost",
            inner.kernel_watch_reopens.clone(),
        );
        r.register(
            "api_errors",
            "Failed Kubernetes API requests, by operation (list, watch, event)",
            inner.api_errors.clone(),
        );
        r.register(
            "events",
            "Kubernetes Events posted on this node's Node, by reason",
            inner.events.clone(),
        );
        r.register(
            "events_dropped",
            "Events not posted: rate-limited past the per-minute cap or the queue full",
            inner.events_dropped.clone(),
        );
        r.register(
            "ready",
            "1 once the first full Node list was seen and the first pass applied",
            inner.ready.clone(),
        );
        r.register(
            "last_success_timestamp_seconds",
            "When the last pass in which every controller did its work ended (Unix time)",
            inner.last_success.clone(),
        );
        *inner.registry.lock().unwrap() = r;
        Metrics(Arc::new(inner))
    }

    /// Registers a controller's own metric under the `podwire_agent_` prefix (the NetworkPolicy
    /// controller's policies and set elements in force, packets dropped per policy). A counter's
    /// name gets `_total` appended.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.registry().register(name, help, metric);
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.0.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The text format (OpenMetrics 1.0, which Prometheus reads).
    pub fn encode(&self) -> String {
        let mut s = String::new();
        encode(&mut s, &self.registry()).expect("writing to a String cannot fail");
        s
    }

    pub fn reconciled(&self, controller: &str, ok: bool, took: Duration) {
        let result = if ok { "ok" } else { "error" };
        self.0
            .reconciles
            .get_or_create(&l2("controller", controller, "result", result))
            .inc();
        self.0
            .duration
            .get_or_create(&l1("controller", controller))
            .observe(took.as_secs_f64());
    }

    pub fn changed(&self, controller: &str, kind: &str, n: usize, repair: bool) {
        let labels = l2("controller", controller, "kind", kind);
        self.0.changes.get_or_create(&labels).inc_by(n as u64);
        if repair {
            self.0.repairs.get_or_create(&labels).inc_by(n as u64);
        }
    }

    pub fn write_failures(&self, controller: &str, n: usize) {
        self.0
            .write_failures
            .get_or_create(&l1("controller", controller))
            .inc_by(n as u64);
    }

    /// The peers after a pass: routed directly, over VXLAN, and unrouted by reason (every
    /// reason present, 0 included, so a series never vanishes under an alert).
    pub fn set_peers(&self, direct: usize, vxlan: usize, problems: &[Problem]) {
        let p = &self.0.peers;
        p.get_or_create(&l2("path", "direct", "reason", ""))
            .set(direct as i64);
        p.get_or_create(&l2("path", "vxlan", "reason", ""))
            .set(vxlan as i64);
        for k in ProblemKind::ALL {
            let n: usize = problems
                .iter()
                .filter(|x| x.kind == k)
                .map(|x| x.unrouted)
                .sum();
            p.get_or_create(&l2("path", "unrouted", "reason", k.label()))
                .set(n as i64);
        }
    }

    /// The problems one controller has after its pass, by kind (every kind, 0 included).
    pub fn set_problems(&self, controller: &str, problems: &[Problem]) {
        for k in ProblemKind::ALL {
            let n = problems.iter().filter(|x| x.kind == k).count();
            self.0
                .problems
                .get_or_create(&l2("controller", controller, "kind", k.label()))
                .set(n as i64);
        }
    }

    /// A problem that is not a peer's, by a kind of the controller's own (`node_setup`).
    pub fn set_problem(&self, controller: &str, kind: &str, n: usize) {
        self.0
            .problems
            .get_or_create(&l2("controller", controller, "kind", kind))
            .set(n as i64);
    }

    pub fn nodes(&self, n: usize) {
        self.0.nodes.set(n as i64);
    }

    pub fn watch_restart(&self, resource: &str) {
        self.0
            .watch_restarts
            .get_or_create(&l1("resource", resource))
            .inc();
    }

    pub fn relist(&self, resource: &str) {
        self.0
            .relists
            .get_or_create(&l1("resource", resource))
            .inc();
    }

    pub fn kernel_watch_reopened(&self) {
        self.0.kernel_watch_reopens.inc();
    }

    pub fn api_error(&self, op: &str) {
        self.0.api_errors.get_or_create(&l1("op", op)).inc();
    }

    pub fn event_posted(&self, reason: &str) {
        self.0.events.get_or_create(&l1("reason", reason)).inc();
    }

    pub fn event_dropped(&self) {
        self.0.events_dropped.inc();
    }

    pub fn ready(&self) {
        self.0.ready.set(1);
    }

    pub fn succeeded_now(&self) {
        let t = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        self.0.last_success.set(t.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let lines: Vec<String> = text.lines().map(String::from).collect();
        let scrape = prometheus_parse::Scrape::parse(lines.into_iter().map(Ok)).unwrap();
        scrape
            .samples
            .into_iter()
            .find(|s| {
                s.metric == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(k).unwrap_or("") == *v)
            })
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
    }

    #[test]
    fn what_is_counted_reads_back_through_a_prometheus_parser() {
        let m = Metrics::new();
        m.reconciled("routing", true, Duration::from_millis(3));
        m.reconciled("routing", false, Duration::from_millis(1));
        m.changed("routing", "route", 4, false);
        m.changed("routing", "route", 1, true);
        let problems = vec![
            Problem::peer(ProblemKind::PodCidrOutsideCluster, "node x: outside"),
            Problem::new(ProblemKind::PodCidrConflict, "claimed twice", 2),
        ];
        m.set_peers(3, 2, &problems);
        m.set_problems("routing", &problems);
        m.nodes(6);
        m.register(
            "policies",
            "NetworkPolicies in force",
            Gauge::<i64>::default(),
        );
        let t = m.encode();
        let reconciles = "podwire_agent_reconciles_total";
        assert_eq!(
            sample(
                &t,
                reconciles,
                &[("controller", "routing"), ("result", "ok")]
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &t,
                reconciles,
                &[("controller", "routing"), ("result", "error")]
            ),
            Some(1.0)
        );
        let changes = "podwire_agent_changes_total";
        assert_eq!(sample(&t, changes, &[("kind", "route")]), Some(5.0));
        let repairs = "podwire_agent_kernel_repairs_total";
        assert_eq!(sample(&t, repairs, &[("kind", "route")]), Some(1.0));
        let peers = "podwire_agent_peers";
        assert_eq!(sample(&t, peers, &[("path", "direct")]), Some(3.0));
        assert_eq!(sample(&t, peers, &[("path", "vxlan")]), Some(2.0));
        let unrouted = |r| sample(&t, peers, &[("path", "unrouted"), ("reason", r)]);
        assert_eq!(unrouted("pod_cidr_outside_cluster"), Some(1.0));
        assert_eq!(unrouted("pod_cidr_conflict"), Some(2.0));
        assert_eq!(unrouted("peer_no_address"), Some(0.0), "zeros are there");
        let problem = |k| sample(&t, "podwire_agent_problems", &[("kind", k)]);
        assert_eq!(problem("pod_cidr_conflict"), Some(1.0));
        assert_eq!(sample(&t, "podwire_agent_nodes", &[]), Some(6.0));
        assert!(t.contains("podwire_agent_reconcile_duration_seconds_bucket"));
        assert!(t.contains("# HELP podwire_agent_policies NetworkPolicies in force"));
        // A later pass with the problem gone sets it back to 0.
        m.set_problems("routing", &[]);
        let t = m.encode();
        assert_eq!(
            sample(
                &t,
                "podwire_agent_problems",
                &[("kind", "pod_cidr_conflict")]
            ),
            Some(0.0)
        );
    }
}
