//! `/healthz` and `/readyz`: what the loop and the kernel watch report of themselves, read by
//! the listener's thread.
//!
//! - Ready once the first full Node list was seen and the first pass applied (and from then on:
//!   a later API outage leaves the node routed as it was, so the pod stays ready).
//! - Healthy while the loop makes progress: the kernel watch thread is running, the loop woke
//!   within the last few resync periods (the resync tick wakes it at least once a period), no
//!   pass has run for that long, and, once ready, a pass in which every controller did its work
//!   ended within that time. A pass whose kernel writes partly failed still counts as done (the
//!   failures are counted and made Events); one that could not read the kernel or set the node
//!   up does not.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const NEVER: u64 = u64::MAX;

/// The shared state (cheap to clone).
#[derive(Clone)]
pub struct Health(Arc<State>);

struct State {
    start: Instant,
    /// How long without progress before `/healthz` fails.
    late: Duration,
    ready: AtomicBool,
    /// Milliseconds since `start` of: the loop's last wake, the running pass's start, the last
    /// pass that succeeded (`NEVER`: none).
    woke: AtomicU64,
    pass_since: AtomicU64,
    succeeded: AtomicU64,
    kernel_watch: AtomicU8,
    /// A test hook: the kernel watch stops at its next notification.
    stop_kernel_watch: AtomicBool,
}

const WATCH_NOT_STARTED: u8 = 0;
const WATCH_RUNNING: u8 = 1;
const WATCH_STOPPED: u8 = 2;

/// What `/healthz` decides from (milliseconds since the agent started).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub now: u64,
    pub ready: bool,
    pub woke: u64,
    pub pass_since: u64,
    pub succeeded: u64,
    pub kernel_watch_stopped: bool,
}

impl Health {
    /// `resync`: the agent's resync period; progress is late after 3 of them and 10 s more.
    pub fn new(resync: Duration) -> Health {
        Health(Arc::new(State {
            start: Instant::now(),
            late: resync * 3 + Duration::from_secs(10),
            ready: AtomicBool::new(false),
            woke: AtomicU64::new(0),
            pass_since: AtomicU64::new(NEVER),
            succeeded: AtomicU64::new(NEVER),
            kernel_watch: AtomicU8::new(WATCH_NOT_STARTED),
            stop_kernel_watch: AtomicBool::new(false),
        }))
    }

    fn now(&self) -> u64 {
        self.0.start.elapsed().as_millis() as u64
    }

    pub fn woke(&self) {
        self.0.woke.store(self.now(), Ordering::Relaxed);
    }

    pub fn pass_started(&self) {
        self.0.pass_since.store(self.now(), Ordering::Relaxed);
    }

    /// `ok`: every controller did its work.
    pub fn pass_ended(&self, ok: bool) {
        let now = self.now();
        self.0.pass_since.store(NEVER, Ordering::Relaxed);
        // A first pass that failed starts the count too: the agent gets as long to succeed
        // after becoming ready as between two successes.
        if ok || !self.is_ready() {
            self.0.succeeded.store(now, Ordering::Relaxed);
        }
        self.0.ready.store(true, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.0.ready.load(Ordering::Relaxed)
    }

    /// Held by the kernel watch thread: running while it lives, stopped when it is dropped
    /// (the thread ended or panicked).
    pub fn kernel_watch_guard(&self) -> KernelWatchGuard {
        self.0.kernel_watch.store(WATCH_RUNNING, Ordering::Relaxed);
        KernelWatchGuard(self.clone())
    }

    /// Test hook: ask the kernel watch to stop.
    pub fn stop_kernel_watch(&self) {
        self.0.stop_kernel_watch.store(true, Ordering::Relaxed);
    }

    pub fn kernel_watch_asked_to_stop(&self) -> bool {
        self.0.stop_kernel_watch.load(Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> Snapshot {
        let s = &self.0;
        Snapshot {
            now: self.now(),
            ready: s.ready.load(Ordering::Relaxed),
            woke: s.woke.load(Ordering::Relaxed),
            pass_since: s.pass_since.load(Ordering::Relaxed),
            succeeded: s.succeeded.load(Ordering::Relaxed),
            kernel_watch_stopped: s.kernel_watch.load(Ordering::Relaxed) == WATCH_STOPPED,
        }
    }

    /// `/healthz`: `Err` says what is wrong.
    pub fn check(&self) -> Result<(), String> {
        verdict(&self.snapshot(), self.0.late)
    }

    /// `/readyz`.
    pub fn check_ready(&self) -> Result<(), String> {
        if self.is_ready() {
            Ok(())
        } else {
            Err("not ready: the first full Node list and the first pass are not done yet".into())
        }
    }
}

pub struct KernelWatchGuard(Health);

impl Drop for KernelWatchGuard {
    fn drop(&mut self) {
        (self.0)
            .0
            .kernel_watch
            .store(WATCH_STOPPED, Ordering::Relaxed);
    }
}

/// Whether the agent is healthy, from a snapshot (pure).
pub fn verdict(s: &Snapshot, late: Duration) -> Result<(), String> {
    let late_ms = late.as_millis() as u64;
    let secs = |ms: u64| ms as f64 / 1000.0;
    if s.kernel_watch_stopped {
        return Err("the kernel watch stopped: deleted routes would not be repaired".into());
    }
    if s.pass_since != NEVER && s.now.saturating_sub(s.pass_since) > late_ms {
        return Err(format!(
            "a reconcile pass has been running for {:.0}s",
            secs(s.now - s.pass_since)
        ));
    }
    if s.now.saturating_sub(s.woke) > late_ms {
        return Err(format!(
            "the agent's loop has not woken for {:.0}s",
            secs(s.now - s.woke)
        ));
    }
    if s.ready && s.succeeded != NEVER && s.now.saturating_sub(s.succeeded) > late_ms {
        return Err(format!(
            "no successful reconcile for {:.0}s",
            secs(s.now - s.succeeded)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LATE: Duration = Duration::from_secs(25);

    fn fine(now: u64) -> Snapshot {
        Snapshot {
            now,
            ready: true,
            woke: now - 1_000,
            pass_since: NEVER,
            succeeded: now - 2_000,
            kernel_watch_stopped: false,
        }
    }

    #[test]
    fn healthy_while_the_loop_makes_progress() {
        assert_eq!(verdict(&fine(100_000), LATE), Ok(()));
        let starting = Snapshot {
            ready: false,
            succeeded: NEVER,
            woke: 0,
            ..fine(5_000)
        };
        assert_eq!(
            verdict(&starting, LATE),
            Ok(()),
            "not ready is not unhealthy"
        );
    }

    #[test]
    fn each_kind_of_stall_fails_with_its_reason() {
        let watch = Snapshot {
            kernel_watch_stopped: true,
            ..fine(100_000)
        };
        assert!(verdict(&watch, LATE).unwrap_err().contains("kernel watch"));
        let stuck = Snapshot {
            pass_since: 60_000,
            ..fine(100_000)
        };
        assert!(verdict(&stuck, LATE)
            .unwrap_err()
            .contains("running for 40s"));
        let asleep = Snapshot {
            woke: 70_000,
            ..fine(100_000)
        };
        assert!(verdict(&asleep, LATE).unwrap_err().contains("not woken"));
        let failing = Snapshot {
            succeeded: 50_000,
            ..fine(100_000)
        };
        assert!(verdict(&failing, LATE)
            .unwrap_err()
            .contains("no successful reconcile for 50s"));
        // Just inside the limits.
        let edge = Snapshot {
            woke: 75_000,
            succeeded: 75_000,
            pass_since: 75_000,
            ..fine(100_000)
        };
        assert_eq!(verdict(&edge, LATE), Ok(()));
    }

    #[test]
    fn the_guard_marks_the_watch_stopped_when_its_thread_ends_or_panics() {
        let h = Health::new(Duration::from_secs(5));
        h.woke();
        let g = h.kernel_watch_guard();
        assert!(!h.snapshot().kernel_watch_stopped);
        let t = std::thread::spawn(move || {
            let _g = g;
            panic!("the watch thread dies");
        });
        assert!(t.join().is_err());
        assert!(h.snapshot().kernel_watch_stopped);
        assert!(h.check().is_err());
        assert!(h.check_ready().is_err());
        h.pass_started();
        h.pass_ended(true);
        assert_eq!(h.check_ready(), Ok(()));
    }
}
