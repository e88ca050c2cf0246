//! The kernel watch: rtnetlink notifications read on a thread of its own. Anything that may undo
//! the agent's work (a deleted route of its own, a link it depends on flapping, an address
//! change) kicks the loop; pods starting and stopping do not.

use super::log;
use crate::kubernetes::backoff;
use cni::{Error, Result};
use kernel::{KernelEvent, Monitor};
use std::collections::HashSet;
use std::time::Duration;
use tokio::sync::mpsc;

/// A thread reading rtnetlink notifications in this netns; anything that may undo the agent's
/// work kicks the loop. `/healthz` fails once the thread is gone (ended or panicked); reopens
/// are counted.
pub fn spawn(
    kick: mpsc::UnboundedSender<()>,
    watched: WatchedLinks,
    tel: &super::Telemetry,
) -> Result<()> {
    let health = tel.health.clone();
    let metrics = tel.metrics.clone();
    let mon = Monitor::new().map_err(|e| Error::io(e.to_string()))?;
    let guard = health.kernel_watch_guard();
    let first = Stoppable(mon, health.clone());
    let reopen = move || {
        let m = Monitor::new()?;
        metrics.kernel_watch_reopened();
        Ok(Stoppable(m, health.clone()))
    };
    std::thread::Builder::new()
        .name("kernel-watch".into())
        .spawn(move || {
            let _alive = guard;
            watch(first, reopen, &kick, &watched, std::thread::sleep)
        })
        .map_err(|e| Error::io(format!("start the kernel watch: {e}")))?;
    Ok(())
}

/// A monitor that a test can stop (`--test-hooks`, SIGUSR2): its thread dies at the next
/// notification, as if it had crashed.
struct Stoppable(Monitor, super::health::Health);

impl Notifications for Stoppable {
    fn recv(&mut self) -> kernel::Result<Vec<KernelEvent>> {
        let r = self.0.recv();
        if self.1.kernel_watch_asked_to_stop() {
            log("kernel watch: stopped by the test hook");
            panic!("kernel watch stopped by the test hook");
        }
        r
    }
}

/// Where notifications come from: the kernel's [`Monitor`] (a test gives a script).
pub trait Notifications {
    fn recv(&mut self) -> kernel::Result<Vec<KernelEvent>>;
}

impl Notifications for Monitor {
    fn recv(&mut self) -> kernel::Result<Vec<KernelEvent>> {
        Monitor::recv(self)
    }
}

/// Reads notifications until the agent's loop is gone. A receive error (the socket overflowed
/// past what the monitor reports as `Overflow`, or anything else) means notifications were lost
/// and the socket may be unusable: the monitor is opened again (with backoff while that fails,
/// said in the log) and the loop is kicked, so a full pass looks at everything. The watch never
/// dies silently: a dead watch would leave deleted routes unrepaired until the next resync.
fn watch<N: Notifications>(
    mut src: N,
    mut reopen: impl FnMut() -> kernel::Result<N>,
    kick: &mpsc::UnboundedSender<()>,
    watched: &WatchedLinks,
    pause: impl Fn(Duration),
) {
    loop {
        match src.recv() {
            Ok(events) => {
                let links = watched.get();
                if events.iter().any(removes_a_node_address) {
                    watched.address_removed();
                }
                if events.iter().any(|e| relevant(e, &links)) && kick.send(()).is_err() {
                    return;
                }
            }
            Err(e) => {
                log(&format!(
                    "kernel watch: {e}: notifications may have been lost; reopening it and \
                     looking at everything again"
                ));
                let mut delays = backoff(REOPEN_FIRST, REOPEN_MAX);
                src = loop {
                    if kick.is_closed() {
                        return;
                    }
                    match reopen() {
                        Ok(s) => break s,
                        Err(e) => {
                            let d = delays.next().expect("endless");
                            log(&format!(
                                "kernel watch: reopen: {e}; retrying in {:.1}s (the resync \
                                 still runs meanwhile)",
                                d.as_secs_f32()
                            ));
                            pause(d);
                        }
                    }
                };
                if kick.send(()).is_err() {
                    return;
                }
            }
        }
    }
}

const REOPEN_FIRST: Duration = Duration::from_millis(100);
const REOPEN_MAX: Duration = Duration::from_secs(10);

/// The links the last reconcile depended on (the underlay, podwire's VXLAN devices), shared
/// with the kernel-watch thread; and whether one of this node's addresses went away since the
/// loop last asked.
#[derive(Clone, Default)]
pub struct WatchedLinks(
    std::sync::Arc<std::sync::Mutex<HashSet<u32>>>,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
);

impl WatchedLinks {
    pub fn set(&self, links: &[u32]) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = links.iter().copied().collect();
    }

    pub fn get(&self) -> HashSet<u32> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn address_removed(&self) {
        self.1.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether one of this node's addresses was removed since the last call. A connection to
    /// the API server that left from it is dead without knowing it (the answers go to an
    /// address nobody holds): the Node watch must be opened again (issue #23: a node whose
    /// address changed never heard its own Node follow).
    pub fn take_address_removed(&self) -> bool {
        self.1.swap(false, std::sync::atomic::Ordering::SeqCst)
    }
}

/// A node address (not link-local: every veth of a pod going away removes one) was removed.
fn removes_a_node_address(e: &KernelEvent) -> bool {
    match e {
        KernelEvent::Address {
            deleted: true,
            addr: Some(a),
            ..
        } => match a {
            std::net::IpAddr::V4(a) => !a.is_loopback() && !a.is_link_local(),
            std::net::IpAddr::V6(a) => !a.is_loopback() && !a.is_unicast_link_local(),
        },
        _ => false,
    }
}

/// Whether a notification can mean the agent's work was undone. Pods starting and stopping
/// (their veths, their neighbour entries on the bridge) never do, so they cost no reconcile.
fn relevant(e: &KernelEvent, links: &HashSet<u32>) -> bool {
    match e {
        // A link that flapped loses its routes silently (IPv4 sends no RTM_DELROUTE for them).
        KernelEvent::Link { index, .. } => links.contains(index),
        // An address decides what is on-link and where VXLAN leaves from (a new uplink counts).
        KernelEvent::Address { .. } | KernelEvent::Overflow => true,
        KernelEvent::Route {
            protocol, deleted, ..
        } => *deleted && *protocol == crate::peers::ROUTE_PROTOCOL,
        KernelEvent::Neighbour { ifindex, deleted } => *deleted && links.contains(ifindex),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_churn_is_not_a_reason_to_reconcile() {
        let links: HashSet<u32> = [2, 10].into_iter().collect(); // eth0, podwire.vxlan
        let link = |index, deleted| KernelEvent::Link { index, deleted };
        assert!(relevant(&link(2, false), &links), "the underlay flapped");
        assert!(!relevant(&link(57, false), &links), "a pod's veth came up");
        assert!(!relevant(&link(57, true), &links), "a pod's veth went");
        let neigh = |ifindex, deleted| KernelEvent::Neighbour { ifindex, deleted };
        assert!(
            relevant(&neigh(10, true), &links),
            "a VXLAN peer's entry was removed"
        );
        assert!(
            !relevant(&neigh(5, true), &links),
            "an entry on the pod bridge aged out"
        );
        let route = |protocol, deleted| KernelEvent::Route {
            dst: None,
            protocol,
            deleted,
        };
        assert!(relevant(&route(157, true), &links));
        assert!(!relevant(&route(2, true), &links));
        let addr = KernelEvent::Address {
            index: 99,
            deleted: false,
            addr: None,
        };
        assert!(
            relevant(&addr, &links),
            "any address may change what is on-link"
        );
    }

    #[test]
    fn only_a_removed_node_address_asks_for_a_new_api_connection() {
        let ev = |deleted, a: &str| KernelEvent::Address {
            index: 2,
            deleted,
            addr: Some(a.parse().unwrap()),
        };
        assert!(removes_a_node_address(&ev(true, "10.247.1.1")));
        assert!(removes_a_node_address(&ev(true, "fd00:247:1::1")));
        assert!(!removes_a_node_address(&ev(false, "10.247.1.11")), "added");
        assert!(
            !removes_a_node_address(&ev(true, "fe80::1")),
            "a pod's veth went"
        );
        let w = WatchedLinks::default();
        assert!(!w.take_address_removed());
        w.address_removed();
        assert!(w.take_address_removed());
        assert!(!w.take_address_removed(), "taken once");
    }

    /// A notification script shared by every monitor the watch opens.
    #[derive(Clone)]
    struct Script(Arc<Mutex<std::sync::mpsc::Receiver<kernel::Result<Vec<KernelEvent>>>>>);

    impl Notifications for Script {
        fn recv(&mut self) -> kernel::Result<Vec<KernelEvent>> {
            let next = self.0.lock().unwrap().recv();
            next.expect("the test keeps the script open while the watch runs")
        }
    }

    use std::sync::{Arc, Mutex};

    /// Issue #22 item 13: a receive error used to end the thread silently; now the monitor is
    /// reopened (retried while that fails) and a full look is asked for.
    #[test]
    fn a_receive_error_reopens_the_monitor_and_asks_for_a_full_look() {
        let (feed, script) = std::sync::mpsc::channel();
        let script = Script(Arc::new(Mutex::new(script)));
        let (kick, mut kicked) = mpsc::unbounded_channel();
        let watched = WatchedLinks::default();
        watched.set(&[2]);
        let opened = Arc::new(Mutex::new(0));
        let paused = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (script, opened, paused) = (script.clone(), opened.clone(), paused.clone());
            std::thread::spawn(move || {
                let first = script.clone();
                let reopen = move || {
                    let mut n = opened.lock().unwrap();
                    *n += 1;
                    if *n == 1 {
                        // The first attempt fails too: retried after a pause.
                        return Err(kernel::Error::Invalid {
                            op: "open rtnetlink monitor".into(),
                            msg: "no buffer space".into(),
                        });
                    }
                    Ok(script.clone())
                };
                watch(first, reopen, &kick, &watched, |d| {
                    paused.lock().unwrap().push(d)
                })
            })
        };
        let deleted_route = KernelEvent::Route {
            dst: None,
            protocol: crate::peers::ROUTE_PROTOCOL,
            deleted: true,
        };
        let pod_veth = KernelEvent::Link {
            index: 57,
            deleted: false,
        };
        feed.send(Ok(vec![deleted_route.clone()])).unwrap();
        assert_eq!(kicked.blocking_recv(), Some(()));
        feed.send(Err(kernel::Error::Invalid {
            op: "read rtnetlink notifications".into(),
            msg: "interrupted".into(),
        }))
        .unwrap();
        assert_eq!(
            kicked.blocking_recv(),
            Some(()),
            "a full look after the loss"
        );
        assert_eq!(
            *opened.lock().unwrap(),
            2,
            "reopened, once more after a failure"
        );
        assert_eq!(*paused.lock().unwrap(), vec![REOPEN_FIRST]);
        // The reopened watch works as before: pod churn kicks nothing, a deleted route does.
        feed.send(Ok(vec![pod_veth])).unwrap();
        feed.send(Ok(vec![deleted_route.clone()])).unwrap();
        assert_eq!(kicked.blocking_recv(), Some(()));
        assert!(kicked.try_recv().is_err(), "the pod's veth kicked nothing");
        // The agent's loop gone: the watch ends at its next notification.
        drop(kicked);
        feed.send(Ok(vec![deleted_route])).unwrap();
        thread.join().unwrap();
    }
}
