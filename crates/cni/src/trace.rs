//! The timed trace of one operation: the steps a plugin took (what, when, how long, and what it
//! created or removed), written as one JSON line to the network's `logFile` when the operation
//! ends. `podwirectl trace` reads those lines back.
//!
//! Recording is a `Vec` push per step on a thread-local recorder: a few hundred nanoseconds
//! against the tens of microseconds of each netlink round trip it times. Steps are flat (never
//! nested), so their durations add up to at most the operation's wall time.
//!
//! ```ignore
//! let mut s = cni::trace::step("veth");
//! let pair = host.veth_add(&spec)?;       // an early return still records the step
//! s.detail(format_args!("{} #{}", spec.name, pair.host.index));
//! ```

use std::cell::RefCell;
use std::fmt::{Display, Write};
use std::time::{Duration, Instant, SystemTime};

/// One finished step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub name: &'static str,
    /// Since the operation started.
    pub start: Duration,
    pub duration: Duration,
    /// What the step created, found or removed; empty when there is nothing to say.
    pub detail: String,
    /// The step failed (the operation's error is reported once, on the operation).
    pub failed: bool,
}

/// The steps of one operation so far.
#[derive(Debug, Clone)]
pub struct Trace {
    pub started: Instant,
    pub wall: SystemTime,
    pub steps: Vec<Step>,
}

impl Trace {
    fn new() -> Trace {
        Trace {
            started: Instant::now(),
            wall: SystemTime::now(),
            steps: Vec::with_capacity(16),
        }
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Trace>> = const { RefCell::new(None) };
}

/// Starts recording an operation on this thread (replacing any unfinished one).
pub fn begin() {
    CURRENT.with(|c| *c.borrow_mut() = Some(Trace::new()));
}

/// Stops recording and returns what was recorded (`None` if `begin` was not called).
pub fn finish() -> Option<Trace> {
    CURRENT.with(|c| c.borrow_mut().take())
}

/// A step in progress: recorded when dropped (or `end`ed), so `?` still records it — as failed,
/// unless `ok` or `detail` was called.
#[must_use = "a step is timed until it is dropped"]
pub struct Span {
    name: &'static str,
    start: Instant,
    detail: String,
    ok: bool,
    /// A recorder was running when the step began: only then are details formatted.
    recording: bool,
}

/// Starts a step. Without a recorder (`begin` not called, or the operation has no log file to
/// write its trace to) it costs one `Instant::now`, and its details are never formatted.
pub fn step(name: &'static str) -> Span {
    Span {
        name,
        start: Instant::now(),
        detail: String::new(),
        ok: false,
        recording: CURRENT.with(|c| c.borrow().is_some()),
    }
}

impl Span {
    /// Says what the step did (appended, `; `-separated) and marks it successful.
    pub fn detail(&mut self, what: impl Display) {
        self.ok = true;
        if !self.recording {
            return;
        }
        if !self.detail.is_empty() {
            self.detail.push_str("; ");
        }
        let _ = write!(self.detail, "{what}");
    }

    /// Whether details will be kept: worth asking before work done only to describe the step.
    pub fn recording(&self) -> bool {
        self.recording
    }

    /// Marks the step successful with nothing to say.
    pub fn ok(&mut self) {
        self.ok = true;
    }

    /// Ends the step now (same as dropping it).
    pub fn end(self) {}
}

impl Drop for Span {
    fn drop(&mut self) {
        if !self.recording {
            return;
        }
        let end = Instant::now();
        CURRENT.with(|c| {
            if let Some(t) = c.borrow_mut().as_mut() {
                t.steps.push(Step {
                    name: self.name,
                    start: self.start.saturating_duration_since(t.started),
                    duration: end.saturating_duration_since(self.start),
                    detail: std::mem::take(&mut self.detail),
                    failed: !self.ok,
                });
            }
        });
    }
}

/// Times `f` as a step that succeeds when `f` returns `Ok`.
pub fn timed<T, E>(name: &'static str, f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    let mut s = step(name);
    let r = f();
    if r.is_ok() {
        s.ok();
    }
    r
}

/// Microseconds, the unit of the JSON line.
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The JSON line of a finished operation. `outcome` is `Ok(())` or the error's code and message.
pub struct Record<'a> {
    pub plugin: &'a str,
    pub network: &'a str,
    pub command: &'a str,
    pub container_id: &'a str,
    pub ifname: &'a str,
    pub netns: &'a str,
    pub outcome: Result<(), (u32, &'a str)>,
}

impl Record<'_> {
    /// `{"time":…,"plugin":…,…,"durationUs":…,"result":"ok"|"error","code":…,"msg":…,"steps":[…]}`
    pub fn to_json(&self, t: &Trace, total: Duration) -> serde_json::Value {
        let steps: Vec<serde_json::Value> = t
            .steps
            .iter()
            .map(|s| {
                let mut v = serde_json::json!({
                    "step": s.name,
                    "startUs": micros(s.start),
                    "durationUs": micros(s.duration),
                });
                if !s.detail.is_empty() {
                    v["detail"] = s.detail.clone().into();
                }
                if s.failed {
                    v["failed"] = true.into();
                }
                v
            })
            .collect();
        let mut v = serde_json::json!({
            "time": crate::log::rfc3339_ms(t.wall),
            "plugin": self.plugin,
            "network": self.network,
            "command": self.command,
            "containerID": self.container_id,
            "ifname": self.ifname,
            "netns": self.netns,
            "durationUs": micros(total),
            "result": if self.outcome.is_ok() { "ok" } else { "error" },
        });
        if let Err((code, msg)) = self.outcome {
            v["code"] = code.into();
            v["msg"] = msg.into();
        }
        v["steps"] = steps.into();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_recorded_in_order_flat_and_within_the_wall_time() {
        begin();
        {
            let mut s = step("one");
            s.detail("made x");
            s.detail(format_args!("y #{}", 3));
        }
        let failing: Result<(), ()> = timed("two", || Err(()));
        assert!(failing.is_err());
        timed::<_, ()>("three", || Ok(())).unwrap();
        let t = finish().unwrap();
        let total = t.started.elapsed();
        let names: Vec<_> = t.steps.iter().map(|s| s.name).collect();
        assert_eq!(names, ["one", "two", "three"]);
        assert_eq!(t.steps[0].detail, "made x; y #3");
        assert!(!t.steps[0].failed && t.steps[1].failed && !t.steps[2].failed);
        let sum: Duration = t.steps.iter().map(|s| s.duration).sum();
        assert!(sum <= total);
        for w in t.steps.windows(2) {
            assert!(w[0].start + w[0].duration <= w[1].start);
        }
        assert!(finish().is_none(), "finish takes the trace");
    }

    #[test]
    fn without_begin_nothing_is_kept() {
        let _ = finish();
        step("x").end();
        assert!(finish().is_none());
    }

    #[test]
    fn the_json_line_names_the_attachment_and_outcome() {
        begin();
        step("a").end();
        let t = finish().unwrap();
        let r = Record {
            plugin: "podwire",
            network: "n",
            command: "DEL",
            container_id: "c1",
            ifname: "eth0",
            netns: "",
            outcome: Err((11, "boom")),
        };
        let v = r.to_json(&t, Duration::from_micros(1500));
        assert_eq!(v["result"], "error");
        assert_eq!(v["code"], 11);
        assert_eq!(v["durationUs"], 1500);
        assert_eq!(v["steps"][0]["step"], "a");
        assert_eq!(v["steps"][0]["failed"], true);
        let time = v["time"].as_str().unwrap();
        assert_eq!(time.len(), "2026-01-01T00:00:00.000Z".len(), "{time}");
    }
}
