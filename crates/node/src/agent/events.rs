//! Problems a person must act on, as Kubernetes Events on this node's Node object, so `kubectl
//! describe node` shows them (reason `PodCIDROutsideCluster`, `PeerNotRoutable`…).
//!
//! core/v1 Events, as kubelet writes its own about a Node: in the `default` namespace, the
//! involved object `v1/Node` named after the node with the node's name as its uid (kubectl
//! looks for both that and the real uid). A problem that lasts is one Event whose `count` and
//! `lastTimestamp` move (a PATCH), as client-go's recorder does, not one object per pass:
//!
//! - the same (reason, message) is posted at most once per [`Limiter::every`] (5 min);
//! - at most [`Limiter::per_minute`] Events leave in any minute (a cluster-wide problem seen by
//!   every agent, or a node with many bad peers, cannot flood the API server); what is held back
//!   is counted in `podwire_agent_events_dropped_total` and is tried again at its next sighting;
//! - after an hour (the API server's default Event TTL) a problem still there gets a new Event.
//!
//! The loop only queues ([`Events::warn`]); a task on the agent's runtime writes them, so a slow
//! API server never holds up a pass. RBAC: `create` and `patch` on `events`, nothing more.

use super::log;
use super::metrics::Metrics;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Who the Events say they come from (`source.component`, `reportingComponent`).
pub const COMPONENT: &str = "podwire-agent";
/// Where Events about cluster-scoped objects live.
const NAMESPACE: &str = "default";
/// The API server's limits on an Event's message.
const MAX_MESSAGE: usize = 1024;
const QUEUE: usize = 64;
/// How long a posted Event is counted on rather than replaced by a new one.
const EVENT_LIFE: Duration = Duration::from_secs(3600);

/// Which Events may leave now (pure: the caller gives the time).
#[derive(Debug)]
pub struct Limiter {
    /// The same (reason, message) at most once per this.
    pub every: Duration,
    /// At most this many Events in any minute.
    pub per_minute: usize,
    last: HashMap<(String, String), Instant>,
    recent: std::collections::VecDeque<Instant>,
}

/// What the limiter decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Send,
    /// Posted less than `every` ago: counted by the Event already there.
    Repeat,
    /// Over the per-minute cap.
    Capped,
}

impl Default for Limiter {
    fn default() -> Limiter {
        Limiter::new(Duration::from_secs(300), 10)
    }
}

impl Limiter {
    pub fn new(every: Duration, per_minute: usize) -> Limiter {
        Limiter {
            every,
            per_minute,
            last: HashMap::new(),
            recent: Default::default(),
        }
    }

    pub fn check(&mut self, reason: &str, message: &str, now: Instant) -> Verdict {
        let key = (reason.to_string(), message.to_string());
        if self
            .last
            .get(&key)
            .is_some_and(|t| now.saturating_duration_since(*t) < self.every)
        {
            return Verdict::Repeat;
        }
        let minute = Duration::from_secs(60);
        while self
            .recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= minute)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= self.per_minute {
            return Verdict::Capped;
        }
        self.recent.push_back(now);
        let every = self.every;
        self.last
            .retain(|_, t| now.saturating_duration_since(*t) < every);
        self.last.insert(key, now);
        Verdict::Send
    }
}

struct Note {
    reason: String,
    message: String,
}

/// The Events sink (cheap to clone). Until [`Events::connect`] is called (or with no API
/// client, in tests), Events are only rate-limited and counted.
#[derive(Clone)]
pub struct Events {
    limiter: Arc<Mutex<Limiter>>,
    tx: Arc<Mutex<Option<mpsc::Sender<Note>>>>,
    metrics: Metrics,
}

impl Events {
    pub fn new(metrics: Metrics) -> Events {
        Events {
            limiter: Arc::new(Mutex::new(Limiter::default())),
            tx: Arc::new(Mutex::new(None)),
            metrics,
        }
    }

    /// A Warning Event on this node's Node: `reason` in PascalCase, `message` for a person.
    pub fn warn(&self, reason: &str, message: &str) {
        let verdict = self
            .limiter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .check(reason, message, Instant::now());
        match verdict {
            Verdict::Repeat => {}
            Verdict::Capped => self.metrics.event_dropped(),
            Verdict::Send => {
                let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
                let Some(tx) = tx.as_ref() else { return };
                let note = Note {
                    reason: reason.to_string(),
                    message: truncate(message, MAX_MESSAGE),
                };
                if tx.try_send(note).is_err() {
                    self.metrics.event_dropped();
                }
            }
        }
    }

    /// Starts the task that writes Events for `node` (on the caller's tokio runtime).
    pub fn connect(&self, client: kube::Client, node: &str) {
        let (tx, rx) = mpsc::channel(QUEUE);
        *self.tx.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        let w = Writer {
            api: Api::namespaced(client, NAMESPACE),
            node: node.to_string(),
            posted: HashMap::new(),
            metrics: self.metrics.clone(),
        };
        tokio::spawn(w.run(rx));
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max - 3;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

struct Posted {
    name: String,
    count: i32,
    first: Instant,
}

struct Writer {
    api: Api<Event>,
    node: String,
    /// (reason, message) → the Event that counts it.
    posted: HashMap<(String, String), Posted>,
    metrics: Metrics,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Note>) {
        while let Some(n) = rx.recv().await {
            match self.post(&n).await {
                Ok(()) => self.metrics.event_posted(&n.reason),
                Err(e) => {
                    self.metrics.api_error("event");
                    log(&format!(
                        "event {} on node {}: {e} (the service account needs create and patch \
                         on events)",
                        n.reason, self.node
                    ));
                }
            }
        }
    }

    async fn post(&mut self, n: &Note) -> Result<(), kube::Error> {
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        self.posted.retain(|_, p| p.first.elapsed() < EVENT_LIFE);
        let key = (n.reason.clone(), n.message.clone());
        if let Some(p) = self.posted.get_mut(&key) {
            let patch = serde_json::json!({"count": p.count + 1, "lastTimestamp": now});
            match self
                .api
                .patch(&p.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    p.count += 1;
                    return Ok(());
                }
                // Gone (expired, deleted): a new one below.
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let name = format!(
            "{}.{:x}",
            self.node,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        );
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(NAMESPACE.into()),
                ..Default::default()
            },
            involved_object: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Node".into()),
                name: Some(self.node.clone()),
                // As kubelet's Node events: kubectl describe node looks for this uid too.
                uid: Some(self.node.clone()),
                ..Default::default()
            },
            reason: Some(n.reason.clone()),
            message: Some(n.message.clone()),
            type_: Some("Warning".into()),
            count: Some(1),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            source: Some(EventSource {
                component: Some(COMPONENT.into()),
                host: Some(self.node.clone()),
            }),
            reporting_component: Some(COMPONENT.into()),
            reporting_instance: Some(self.node.clone()),
            ..Default::default()
        };
        self.api.create(&PostParams::default(), &event).await?;
        self.posted.insert(
            key,
            Posted {
                name,
                count: 1,
                first: Instant::now(),
            },
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_problem_is_posted_once_per_period_and_a_flood_is_capped() {
        let mut l = Limiter::new(Duration::from_secs(300), 3);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(
            l.check("PodCIDROutsideCluster", "node a", at(0)),
            Verdict::Send
        );
        assert_eq!(
            l.check("PodCIDROutsideCluster", "node a", at(5)),
            Verdict::Repeat
        );
        assert_eq!(
            l.check("PodCIDROutsideCluster", "node b", at(5)),
            Verdict::Send
        );
        assert_eq!(l.check("PeerNotRoutable", "node a", at(6)), Verdict::Send);
        assert_eq!(
            l.check("PeerNotRoutable", "node c", at(7)),
            Verdict::Capped,
            "a fourth in one minute"
        );
        // A minute on, room again; the one held back goes at its next sighting.
        assert_eq!(l.check("PeerNotRoutable", "node c", at(61)), Verdict::Send);
        assert_eq!(
            l.check("PodCIDROutsideCluster", "node a", at(299)),
            Verdict::Repeat
        );
        assert_eq!(
            l.check("PodCIDROutsideCluster", "node a", at(300)),
            Verdict::Send,
            "still there after the period: counted again"
        );
        assert!(l.last.len() <= 4, "old keys are forgotten");
    }

    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        let s = "é".repeat(600);
        let t = truncate(&s, MAX_MESSAGE);
        assert!(t.len() <= MAX_MESSAGE && t.ends_with("..."));
        assert_eq!(truncate("short", MAX_MESSAGE), "short");
    }
}
