//! One watch: a chunked stream of `{"type":…,"object":…}` lines, fed from the store's history
//! (so a slow or late reader misses nothing that is still kept), ended by its timeout, by
//! `close_watches`, or after an ERROR event.

use crate::error::ApiError;
use crate::kinds::{FieldSelector, Kind};
use crate::server::{Gone, Shared};
use crate::store::{Event, EventType, Json};
use bytes::Bytes;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::time::{sleep_until, Instant};

/// What a watch watches and where it starts, from its URL and query parameters.
pub struct WatchRequest {
    pub kind: &'static Kind,
    /// The store keys watched: the resource's, or one namespace's of it.
    pub prefix: String,
    /// `fieldSelector`: an object that starts matching is ADDED, one that stops is DELETED.
    pub fields: FieldSelector,
    /// `resourceVersion`: `None` for unset, "0" or (with `sendInitialEvents`) a lower bound.
    pub from: Option<u64>,
    /// Start with a synthetic ADDED per existing object (RV unset/"0", or `sendInitialEvents`).
    pub initial_events: bool,
    /// `sendInitialEvents=true`: end the initial events with the `k8s.io/initial-events-end`
    /// BOOKMARK.
    pub initial_end_bookmark: bool,
    pub bookmarks: bool,
    pub timeout: std::time::Duration,
}

pub struct WatchStream {
    shared: Arc<Shared>,
    kind: &'static Kind,
    prefix: String,
    fields: FieldSelector,
    queue: VecDeque<Bytes>,
    /// The resourceVersion of the last event sent (or the one the watch started from).
    last_rv: u64,
    finished: bool,
    deadline: Instant,
    bookmark_every: Option<std::time::Duration>,
    next_bookmark: Instant,
    changes: watch::Receiver<u64>,
    controls: watch::Receiver<crate::server::Controls>,
    epoch: u64,
}

impl WatchStream {
    /// Checks the start point and queues what comes first. `Err` is an HTTP error answer (only
    /// 410 with [`Gone::HttpStatus`], or a resourceVersion too far ahead for a watch-list).
    pub fn open(shared: Arc<Shared>, req: WatchRequest) -> Result<WatchStream, ApiError> {
        let settings = shared.settings();
        let controls = shared.controls.subscribe();
        let epoch = controls.borrow().close_epoch;
        let now = Instant::now();
        let mut stream = WatchStream {
            queue: VecDeque::new(),
            last_rv: 0,
            finished: false,
            deadline: now + req.timeout,
            bookmark_every: req.bookmarks.then_some(settings.bookmark_interval),
            next_bookmark: now + settings.bookmark_interval,
            changes: shared.changes.subscribe(),
            controls,
            epoch,
            shared: shared.clone(),
            kind: req.kind,
            prefix: req.prefix,
            fields: req.fields,
        };
        let store = shared.store();
        if req.initial_events {
            if let Some(from) = req.from.filter(|&rv| rv > store.rv()) {
                return Err(ApiError::too_large_rv(from, store.rv()));
            }
            for obj in store.all(&stream.prefix) {
                if stream.selected(obj) {
                    stream.queue.push_back(event_line(req.kind, "ADDED", obj));
                }
            }
            stream.last_rv = store.rv();
            if req.initial_end_bookmark {
                stream
                    .queue
                    .push_back(bookmark_line(req.kind, stream.last_rv, true));
            }
        } else {
            let from = req.from.unwrap_or(store.rv());
            if let Err(expired) = store.events_after(from) {
                shared.counters.expired.fetch_add(1, Ordering::Relaxed);
                if settings.gone == Gone::HttpStatus {
                    return Err(expired);
                }
                stream.fail(&expired);
            }
            stream.last_rv = from;
        }
        drop(store);
        shared.counters.open_watches.fetch_add(1, Ordering::Relaxed);
        Ok(stream)
    }

    fn fail(&mut self, error: &ApiError) {
        let line = format!(
            "{{\"type\":\"ERROR\",\"object\":{}}}\n",
            error.status_json()
        );
        self.queue.push_back(Bytes::from(line));
        self.finished = true;
    }

    /// The next chunk to send; `None` ends the response.
    pub async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if let Some(chunk) = self.queue.pop_front() {
                return Some(chunk);
            }
            if self.finished {
                return None;
            }
            let controls = *self.controls.borrow_and_update();
            if controls.close_epoch != self.epoch || Instant::now() >= self.deadline {
                return None;
            }
            if !controls.paused {
                self.changes.borrow_and_update();
                self.catch_up();
                if !self.queue.is_empty() || self.finished {
                    continue;
                }
            }
            let timer = match self.bookmark_every {
                Some(_) if !controls.paused => self.next_bookmark.min(self.deadline),
                _ => self.deadline,
            };
            tokio::select! {
                changed = self.changes.changed() => if changed.is_err() { return None },
                changed = self.controls.changed() => if changed.is_err() { return None },
                _ = sleep_until(timer) => {}
            }
        }
    }

    /// Queues the events after `last_rv`, and a BOOKMARK when one is due.
    fn catch_up(&mut self) {
        let shared = self.shared.clone();
        let store = shared.store();
        match store.events_after(self.last_rv) {
            Ok(events) => {
                for e in events {
                    if let Some(kind) = self.seen_as(&e) {
                        self.queue.push_back(event_line(self.kind, kind, &e.object));
                    }
                    self.last_rv = e.rv;
                }
            }
            Err(expired) => {
                // Fell behind the kept window (history limit lowered, compaction).
                shared.counters.expired.fetch_add(1, Ordering::Relaxed);
                self.fail(&expired);
                return;
            }
        }
        if let Some(every) = self.bookmark_every {
            let now = Instant::now();
            if now >= self.next_bookmark {
                let rv = self.last_rv.max(store.rv());
                self.queue.push_back(bookmark_line(self.kind, rv, false));
                self.last_rv = rv;
                self.next_bookmark = now + every;
            }
        }
    }
}

impl WatchStream {
    /// Whether an object passes the field selector.
    fn selected(&self, obj: &Json) -> bool {
        self.fields.is_empty() || {
            let v: Value = serde_json::from_str(obj).expect("stored objects are JSON");
            self.fields.matches(self.kind, &v)
        }
    }

    /// How this watch sees a change: not at all (another resource, namespace, or outside the
    /// selector before and after), or as ADDED / MODIFIED / DELETED, as the API server's watch
    /// cache does for an object entering or leaving a field selector.
    fn seen_as(&self, e: &Event) -> Option<&'static str> {
        if !e.key.starts_with(&self.prefix) {
            return None;
        }
        if self.fields.is_empty() {
            return Some(e.kind.as_str());
        }
        let before = e.before.as_ref().is_some_and(|b| self.selected(b));
        let after = e.kind != EventType::Deleted && self.selected(&e.object);
        match (before, after) {
            (false, true) => Some("ADDED"),
            (true, true) => Some("MODIFIED"),
            (true, false) => Some("DELETED"),
            (false, false) => None,
        }
    }
}

impl Drop for WatchStream {
    fn drop(&mut self) {
        self.shared
            .counters
            .open_watches
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// `{"type":"ADDED","object":{"kind":"Node","apiVersion":"v1",…}}` and a newline.
fn event_line(kind: &Kind, event: &str, object: &Json) -> Bytes {
    let mut line = String::with_capacity(object.len() + 64);
    line.push_str("{\"type\":\"");
    line.push_str(event);
    line.push_str("\",\"object\":");
    crate::http::push_typed(kind, &mut line, object);
    line.push_str("}\n");
    Bytes::from(line)
}

/// A BOOKMARK as the API server sends it: the object is an empty one of the kind but for its
/// resourceVersion (and the initial-events-end annotation after a watch-list's initial events).
fn bookmark_line(kind: &Kind, rv: u64, initial_end: bool) -> Bytes {
    let annotations = if initial_end {
        ",\"annotations\":{\"k8s.io/initial-events-end\":\"true\"}"
    } else {
        ""
    };
    let parts = if kind.status {
        ",\"spec\":{},\"status\":{}"
    } else {
        ",\"spec\":{}"
    };
    Bytes::from(format!(
        "{{\"type\":\"BOOKMARK\",\"object\":{{\"kind\":\"{}\",\"apiVersion\":\"{}\",\"metadata\":\
         {{\"resourceVersion\":\"{rv}\",\"creationTimestamp\":null{annotations}}}{parts}}}}}\n",
        kind.kind, kind.api_version
    ))
}
