//! What the agent tells operators, in one handle every controller gets in its [`Pass`]:
//! [`Metrics`] (`/metrics`), [`Health`] (`/healthz`, `/readyz`) and [`Events`] (on this node's
//! Node), served by [`super::http`].
//!
//! A controller reports through it, with its [`Controller::name`]:
//! - [`Telemetry::changed`] what it changed (counted as kernel repairs when no Node changed in
//!   the pass: something in the kernel had been removed or altered);
//! - [`Telemetry::failed`] that it could not do its work this pass (the reconcile counts as an
//!   error, and `/healthz` fails after a few resync periods of that);
//! - [`Telemetry::write_failures`] kernel writes that failed (retried on the next pass);
//! - [`Telemetry::problems`] what it leaves undone and why (gauges by kind, and Events).

use super::events::Events;
use super::health::Health;
use super::metrics::Metrics;
use super::{log, AgentConfig, Controller, Pass};
use crate::peers::Problem;
use cni::Result;
use std::cell::Cell;
use std::time::Instant;

/// Why a pass runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// Node objects changed (or the first list came in).
    Nodes,
    /// The kernel watch heard something undo the agent's work.
    Kernel,
    /// The periodic full pass.
    Resync,
}

pub struct Telemetry {
    pub metrics: Metrics,
    pub health: Health,
    pub events: Events,
    trigger: Cell<Trigger>,
    /// Whether a pass has been applied: the first one's changes are the node's setup, not
    /// repairs.
    first_done: Cell<bool>,
    /// Set by [`Telemetry::failed`] during one controller's reconcile.
    failed: Cell<bool>,
}

impl Telemetry {
    /// The handle, without a listener (tests; `--metrics-addr ""`).
    pub fn new(cfg: &AgentConfig) -> Telemetry {
        let metrics = Metrics::new();
        Telemetry {
            health: Health::new(cfg.resync),
            events: Events::new(metrics.clone()),
            metrics,
            trigger: Cell::new(Trigger::Nodes),
            first_done: Cell::new(false),
            failed: Cell::new(false),
        }
    }

    /// The handle, and the listener on `cfg.metrics_addr` if there is one.
    pub fn start(cfg: &AgentConfig) -> Result<Telemetry> {
        let t = Telemetry::new(cfg);
        if let Some(addr) = cfg.metrics_addr {
            let bound = super::http::serve(addr, t.health.clone(), t.metrics.clone())?;
            log(&format!(
                "serving /healthz, /readyz and /metrics on {bound}"
            ));
        }
        Ok(t)
    }

    /// Runs one pass of every controller: each timed and counted by name.
    pub(super) fn pass(&self, trigger: Trigger, controllers: &mut [Box<dyn Controller>], p: &Pass) {
        self.trigger.set(trigger);
        self.health.pass_started();
        let mut all_ok = true;
        for c in controllers.iter_mut() {
            self.failed.set(false);
            let start = Instant::now();
            c.reconcile(p);
            let ok = !self.failed.get();
            self.metrics.reconciled(c.name(), ok, start.elapsed());
            all_ok &= ok;
        }
        self.metrics.nodes(p.nodes.len());
        self.first_done.set(true);
        self.health.pass_ended(all_ok);
        if all_ok {
            self.metrics.succeeded_now();
        }
        self.metrics.ready();
    }

    /// `n` changes of `kind` made by `controller`.
    pub fn changed(&self, controller: &str, kind: &str, n: usize) {
        if n == 0 {
            return;
        }
        let repair = self.first_done.get() && self.trigger.get() != Trigger::Nodes;
        self.metrics.changed(controller, kind, n, repair);
    }

    /// The running controller could not do its work this pass; `reason` names the Event.
    pub fn failed(&self, reason: &str, message: &str) {
        self.failed.set(true);
        self.events.warn(reason, message);
    }

    /// Kernel writes that failed; each becomes an Event of `reason`.
    pub fn write_failures(&self, controller: &str, reason: &str, failures: &[String]) {
        if failures.is_empty() {
            return;
        }
        self.metrics.write_failures(controller, failures.len());
        for f in failures {
            self.events.warn(reason, f);
        }
    }

    /// What `controller` leaves undone after its pass (all of it: kinds absent are 0), each
    /// an Event named by its kind.
    pub fn problems(&self, controller: &str, problems: &[Problem]) {
        self.metrics.set_problems(controller, problems);
        for p in problems {
            self.events.warn(p.kind.reason(), &p.text);
        }
    }
}
