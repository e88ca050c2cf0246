//! The objects of every kind and their change history, as the API server's storage and watch
//! cache keep them: one resourceVersion counter bumped by every change (of any kind, as etcd's
//! revision), a bounded window of past events to serve watches and consistent paged lists from,
//! and "too old resource version" below it. Objects are keyed `resource/namespace/name`.
//!
//! Objects are kept serialized (JSON without `kind`/`apiVersion`, as list items are), shared by
//! `Arc` between the current state and the history: 5,000 Nodes cost a few MiB, and serving a
//! list or a watch event copies bytes, never re-serializes.

use crate::error::ApiError;
use crate::kinds::{Kind, NAMESPACES};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::Arc;

/// A serialized object: `{"metadata":…,"spec":…,"status":…}` (no `kind`/`apiVersion`).
pub type Json = Arc<str>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change. `object` is the object after it (for DELETED: the last state, stamped with the
/// deletion's resourceVersion, as the API server sends it); `before` rebuilds past states.
#[derive(Clone, Debug)]
pub struct Event {
    pub kind: EventType,
    pub rv: u64,
    /// The object's store key (`Kind::key`).
    pub key: String,
    pub object: Json,
    pub before: Option<Json>,
}

/// Which part of an object an update may change, as the REST strategies of kinds with a
/// status subresource decide it (the others are always updated whole).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The library's direct writes: spec, status and metadata as given.
    Whole,
    /// PUT/PATCH on `/nodes/{name}` (`/pods/…`): the status is kept as it was.
    Main,
    /// PUT/PATCH on `/nodes/{name}/status`: only the status changes.
    Status,
}

/// Which state a list reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListAt {
    Latest,
    /// The state right after this resourceVersion (needs it inside the history window).
    Exact(u64),
}

pub struct ListPage {
    pub rv: u64,
    pub items: Vec<Json>,
    /// Where the next page starts (the last name returned), when there is one.
    pub next_after: Option<String>,
    pub remaining: u64,
}

pub struct Store {
    objects: BTreeMap<String, Json>,
    rv: u64,
    history: VecDeque<Event>,
    history_limit: usize,
    /// Events up to this resourceVersion are gone: reading from below it is "too old".
    compacted: u64,
    uids: UidSource,
}

impl Store {
    pub fn new(history_limit: usize) -> Store {
        Store {
            objects: BTreeMap::new(),
            // An empty store lists at "1": "0" means "any version" to clients.
            rv: 1,
            history: VecDeque::new(),
            history_limit,
            compacted: 0,
            uids: UidSource::new(),
        }
    }

    pub fn rv(&self) -> u64 {
        self.rv
    }

    /// How many objects have keys starting with `prefix` (see [`Kind::prefix`]).
    pub fn count(&self, prefix: &str) -> usize {
        self.all(prefix).count()
    }

    pub fn get(&self, key: &str) -> Option<Json> {
        self.objects.get(key).cloned()
    }

    /// Every object whose key starts with `prefix`, in key order.
    pub fn all<'s>(&'s self, prefix: &'s str) -> impl Iterator<Item = &'s Json> + 's {
        self.objects
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v)
    }

    /// Adds a new object of `kind` (in `namespace` when namespaced); uid, creationTimestamp and
    /// resourceVersion are the server's.
    pub fn create(
        &mut self,
        kind: &Kind,
        namespace: &str,
        mut obj: Value,
    ) -> Result<Json, ApiError> {
        strip_type_meta(kind, &mut obj)?;
        let name = name_of(&obj)
            .ok_or_else(|| ApiError::invalid("metadata.name: Required value: name is required"))?
            .to_string();
        self.check_namespace(kind, namespace, &mut obj)?;
        let key = kind.key(namespace, &name);
        if self.objects.contains_key(&key) {
            return Err(ApiError::already_exists(kind.qualified, &name));
        }
        let meta = metadata_mut(&mut obj);
        meta.insert("uid".into(), self.uids.next().into());
        meta.insert("creationTimestamp".into(), now_rfc3339().into());
        meta.remove("deletionTimestamp");
        label_namespace(kind, &mut obj, &name);
        let rv = self.rv + 1;
        let json = stamp(&mut obj, rv);
        self.commit(EventType::Added, key, json.clone(), true, None);
        Ok(json)
    }

    /// A namespaced object lives in an existing namespace, the one of its URL.
    fn check_namespace(
        &self,
        kind: &Kind,
        namespace: &str,
        obj: &mut Value,
    ) -> Result<(), ApiError> {
        if !kind.namespaced {
            metadata_mut(obj).remove("namespace");
            return Ok(());
        }
        let meta = metadata_mut(obj);
        match meta.get("namespace").and_then(Value::as_str) {
            None | Some("") => {
                meta.insert("namespace".into(), namespace.into());
            }
            Some(ns) if ns == namespace => {}
            Some(_) => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on \
                     the request",
                ))
            }
        }
        if !self.objects.contains_key(&NAMESPACES.key("", namespace)) {
            return Err(ApiError::not_found("namespaces", namespace));
        }
        Ok(())
    }

    /// Replaces `name` by `new` (its `part` of it). A non-empty resourceVersion in `new` must be
    /// the current one (409 Conflict otherwise). A change that changes nothing is no write: same
    /// resourceVersion, no event, as the API server does.
    pub fn update(
        &mut self,
        kind: &Kind,
        namespace: &str,
        name: &str,
        mut new: Value,
        part: Part,
    ) -> Result<Json, ApiError> {
        strip_type_meta(kind, &mut new)?;
        let key = kind.key(namespace, name);
        let old_json = self
            .objects
            .get(&key)
            .ok_or_else(|| ApiError::not_found(kind.qualified, name))?;
        let old: Value = serde_json::from_str(old_json).expect("stored objects are JSON");
        match name_of(&new) {
            Some(n) if n == name => {}
            Some(n) => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )))
            }
            None => return Err(ApiError::bad_request("metadata.name: Required value")),
        }
        self.check_namespace(kind, namespace, &mut new)?;
        let given_rv = metadata_mut(&mut new)
            .get("resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if !given_rv.is_empty() && given_rv != rv_of(&old) {
            return Err(ApiError::conflict(kind.qualified, name));
        }
        // Without a status subresource, an update is of the whole object.
        let part = if kind.status { part } else { Part::Whole };
        let mut next = match part {
            Part::Whole | Part::Main => new,
            Part::Status => {
                let mut next = old.clone();
                set_or_remove(&mut next, "status", new.get("status").cloned());
                next
            }
        };
        if part == Part::Main {
            set_or_remove(&mut next, "status", old.get("status").cloned());
        }
        // What the server owns stays as it was.
        let (next_meta, old_meta) = (metadata_mut(&mut next), old["metadata"].clone());
        for key in ["uid", "creationTimestamp", "resourceVersion"] {
            match old_meta.get(key) {
                Some(v) => next_meta.insert(key.into(), v.clone()),
                None => next_meta.remove(key),
            };
        }
        label_namespace(kind, &mut next, name);
        if next == old {
            return Ok(self.objects[&key].clone());
        }
        let rv = self.rv + 1;
        let json = stamp(&mut next, rv);
        let before = self.objects.get(&key).cloned();
        self.commit(EventType::Modified, key, json.clone(), true, before);
        Ok(json)
    }

    /// Applies a JSON merge patch (RFC 7386) to `name`'s `part`.
    pub fn merge_patch(
        &mut self,
        kind: &Kind,
        namespace: &str,
        name: &str,
        patch: &Value,
        part: Part,
    ) -> Result<Json, ApiError> {
        if !patch.is_object() {
            return Err(ApiError::bad_request("a merge patch must be a JSON object"));
        }
        let current = self
            .objects
            .get(&kind.key(namespace, name))
            .ok_or_else(|| ApiError::not_found(kind.qualified, name))?;
        let mut obj: Value = serde_json::from_str(current).expect("stored objects are JSON");
        merge(&mut obj, patch);
        self.update(kind, namespace, name, obj, part)
    }

    /// Removes `name`; returns its last state stamped with the deletion's resourceVersion. A
    /// namespace takes its objects with it (at once: kubesim has no Terminating phase).
    pub fn delete(&mut self, kind: &Kind, namespace: &str, name: &str) -> Result<Json, ApiError> {
        let key = kind.key(namespace, name);
        let before = self
            .objects
            .get(&key)
            .ok_or_else(|| ApiError::not_found(kind.qualified, name))?
            .clone();
        if std::ptr::eq(kind, &NAMESPACES) {
            for k in crate::kinds::ALL.iter().filter(|k| k.namespaced) {
                let prefix = k.prefix(Some(name));
                let inside: Vec<String> = self
                    .objects
                    .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
                    .take_while(|(key, _)| key.starts_with(&prefix))
                    .map(|(key, _)| key.clone())
                    .collect();
                for key in inside {
                    self.remove(key);
                }
            }
        }
        Ok(self.remove_known(key, before))
    }

    fn remove(&mut self, key: String) {
        let before = self.objects[&key].clone();
        self.remove_known(key, before);
    }

    fn remove_known(&mut self, key: String, before: Json) -> Json {
        let mut last: Value = serde_json::from_str(&before).expect("stored objects are JSON");
        let rv = self.rv + 1;
        let json = stamp(&mut last, rv);
        self.commit(EventType::Deleted, key, json.clone(), false, Some(before));
        json
    }

    /// Records a change stamped `self.rv + 1`: `object` is what watchers see, and the current
    /// state when `exists`.
    fn commit(
        &mut self,
        kind: EventType,
        key: String,
        object: Json,
        exists: bool,
        before: Option<Json>,
    ) {
        self.rv += 1;
        if exists {
            self.objects.insert(key.clone(), object.clone());
        } else {
            self.objects.remove(&key);
        }
        self.history.push_back(Event {
            kind,
            rv: self.rv,
            object,
            key,
            before,
        });
        self.trim();
    }

    fn trim(&mut self) {
        while self.history.len() > self.history_limit {
            let dropped = self.history.pop_front().expect("non-empty");
            self.compacted = dropped.rv;
        }
    }

    pub fn set_history_limit(&mut self, events: usize) {
        self.history_limit = events;
        self.trim();
    }

    /// Forgets every past event, as an etcd compaction does: any resourceVersion older than
    /// the current one is now too old to watch or list from.
    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted = self.rv;
    }

    /// Every event after `rv`, oldest first; 410 Expired when some of them are no longer kept.
    pub fn events_after(&self, rv: u64) -> Result<Vec<Event>, ApiError> {
        self.check_kept(rv)?;
        let from = self.history.partition_point(|e| e.rv <= rv);
        Ok(self.history.range(from..).cloned().collect())
    }

    fn check_kept(&self, rv: u64) -> Result<(), ApiError> {
        if rv < self.compacted {
            return Err(ApiError::expired(format!(
                "too old resource version: {rv} ({})",
                self.compacted
            )));
        }
        Ok(())
    }

    /// Up to `limit` objects under `prefix` that `keep`, with keys after `after`, in key order,
    /// as they were at `at`.
    pub fn list(
        &self,
        at: ListAt,
        prefix: &str,
        after: Option<&str>,
        limit: Option<usize>,
        keep: &dyn Fn(&Json) -> bool,
    ) -> Result<ListPage, ApiError> {
        let start = match after {
            Some(a) => Bound::Excluded(a),
            None => Bound::Included(prefix),
        };
        let range = (start, Bound::Unbounded);
        let under = |k: &str| k.starts_with(prefix);
        let (rv, view): (u64, View) = match at {
            ListAt::Exact(rv) if rv > self.rv => return Err(ApiError::too_large_rv(rv, self.rv)),
            ListAt::Exact(rv) if rv < self.rv => self.list_at(rv, prefix, start)?,
            ListAt::Latest | ListAt::Exact(_) => {
                let current = self
                    .objects
                    .range::<str, _>(range)
                    .take_while(|(k, _)| under(k))
                    .map(|(k, v)| (k.as_str(), v))
                    .collect();
                (self.rv, current)
            }
        };
        let view: Vec<(&str, &Json)> = view.into_iter().filter(|(_, j)| keep(j)).collect();
        let take = limit
            .filter(|&l| l > 0)
            .unwrap_or(usize::MAX)
            .min(view.len());
        let next_after = (take < view.len()).then(|| view[take - 1].0.to_string());
        Ok(ListPage {
            rv,
            remaining: (view.len() - take) as u64,
            items: view[..take].iter().map(|(_, j)| Arc::clone(j)).collect(),
            next_after,
        })
    }
}

/// Objects by key, in key order.
type View<'s> = Vec<(&'s str, &'s Json)>;

impl Store {
    /// The objects under `prefix` from `start` on, as they were right after `rv` (rebuilt from
    /// the history: needs `rv` inside it).
    fn list_at<'s>(
        &'s self,
        rv: u64,
        prefix: &str,
        start: Bound<&'s str>,
    ) -> Result<(u64, View<'s>), ApiError> {
        let range = (start, Bound::Unbounded);
        let under = |k: &str| k.starts_with(prefix);
        self.check_kept(rv)?;
        // Undo the later events, newest first, so each key ends at its state at `rv`.
        let mut undo: BTreeMap<&str, Option<&Json>> = BTreeMap::new();
        for e in self.history.iter().rev().take_while(|e| e.rv > rv) {
            undo.insert(&e.key, e.before.as_ref());
        }
        let mut view: BTreeMap<&str, &Json> = self
            .objects
            .range::<str, _>(range)
            .take_while(|(k, _)| under(k))
            .map(|(k, v)| (k.as_str(), v))
            .collect();
        for (key, before) in undo.range::<&str, _>((start, Bound::Unbounded)) {
            if !under(key) {
                continue;
            }
            match before {
                Some(b) => view.insert(key, b),
                None => view.remove(key),
            };
        }
        Ok((rv, view.into_iter().collect()))
    }
}

/// The label the API server puts on every namespace: its name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// The API server labels every namespace with its name (and keeps it so).
fn label_namespace(kind: &Kind, obj: &mut Value, name: &str) {
    if !std::ptr::eq(kind, &NAMESPACES) {
        return;
    }
    let meta = metadata_mut(obj);
    let labels = meta
        .entry("labels")
        .or_insert_with(|| Value::Object(Map::new()));
    if !labels.is_object() {
        *labels = Value::Object(Map::new());
    }
    labels
        .as_object_mut()
        .expect("made an object")
        .insert(NAMESPACE_NAME_LABEL.into(), name.into());
}

/// RFC 7386 JSON merge patch: objects merge key by key, `null` removes, anything else replaces.
pub fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let target = target.as_object_mut().expect("made an object");
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            merge(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// Checks and drops `kind`/`apiVersion` (stored objects carry none, as list items).
fn strip_type_meta(kind: &Kind, obj: &mut Value) -> Result<(), ApiError> {
    let Value::Object(map) = obj else {
        return Err(ApiError::bad_request("the object is not a JSON object"));
    };
    for (key, want) in [("kind", kind.kind), ("apiVersion", kind.api_version)] {
        match map.remove(key) {
            None => {}
            Some(Value::String(s)) if s == want || s.is_empty() => {}
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "{key} {other} does not match the expected {want}"
                )))
            }
        }
    }
    Ok(())
}

fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    let map = obj.as_object_mut().expect("checked to be an object");
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    meta.as_object_mut().expect("made an object")
}

fn name_of(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
}

fn rv_of(obj: &Value) -> &str {
    obj.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn set_or_remove(obj: &mut Value, key: &str, value: Option<Value>) {
    let map = obj.as_object_mut().expect("objects");
    match value {
        Some(v) => map.insert(key.into(), v),
        None => map.remove(key),
    };
}

/// Sets the resourceVersion and serializes.
fn stamp(obj: &mut Value, rv: u64) -> Json {
    metadata_mut(obj).insert("resourceVersion".into(), rv.to_string().into());
    Arc::from(obj.to_string())
}

/// Seconds precision, UTC, as metav1.Time is written.
pub fn now_rfc3339() -> String {
    jiff::Timestamp::from_second(jiff::Timestamp::now().as_second())
        .expect("now is in range")
        .to_string()
}

/// Version-4-shaped UIDs, unique per server (random seed, then a counter).
struct UidSource {
    seed: u64,
    count: u64,
}

impl UidSource {
    fn new() -> UidSource {
        use std::hash::{BuildHasher, RandomState};
        UidSource {
            seed: RandomState::new().hash_one(std::process::id()),
            count: 0,
        }
    }

    fn next(&mut self) -> String {
        self.count += 1;
        let hi = self.seed;
        let lo = self.count ^ (self.seed.rotate_left(29) & 0xffff_ffff_0000_0000);
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xffff,
            hi & 0xfff,
            (lo >> 48) & 0xfff,
            lo & 0xffff_ffff_ffff
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::NODES;
    use serde_json::json;

    fn node(name: &str, cidr: &str) -> Value {
        json!({"kind": "Node", "apiVersion": "v1", "metadata": {"name": name},
               "spec": {"podCIDR": cidr}, "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]}})
    }

    fn names(page: &ListPage) -> Vec<String> {
        page.items
            .iter()
            .map(|j| {
                let v: Value = serde_json::from_str(j).unwrap();
                v["metadata"]["name"].as_str().unwrap().to_string()
            })
            .collect()
    }

    #[test]
    fn every_change_bumps_the_resource_version_and_is_an_event() {
        let mut s = Store::new(100);
        let a = s.create(&NODES, "", node("a", "10.1.0.0/24")).unwrap();
        assert!(
            a.contains(r#""resourceVersion":"2""#) && !a.contains("\"kind\""),
            "{a}"
        );
        assert!(a.contains("creationTimestamp") && a.contains("uid"), "{a}");
        assert_eq!(
            s.create(&NODES, "", node("a", "x")).unwrap_err().reason,
            "AlreadyExists"
        );
        s.merge_patch(
            &NODES,
            "",
            "a",
            &json!({"spec": {"podCIDR": "10.9.0.0/24"}}),
            Part::Main,
        )
        .unwrap();
        s.delete(&NODES, "", "a").unwrap();
        let kinds: Vec<_> = s
            .events_after(1)
            .unwrap()
            .iter()
            .map(|e| (e.kind, e.rv))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (EventType::Added, 2),
                (EventType::Modified, 3),
                (EventType::Deleted, 4)
            ]
        );
        let deleted = &s.events_after(3).unwrap()[0];
        assert!(deleted.object.contains(r#""resourceVersion":"4""#));
        assert!(deleted.object.contains("10.9.0.0/24"));
        assert_eq!(s.delete(&NODES, "", "a").unwrap_err().code, 404);
    }

    #[test]
    fn an_update_that_changes_nothing_writes_nothing() {
        let mut s = Store::new(100);
        s.create(&NODES, "", node("a", "10.1.0.0/24")).unwrap();
        let rv = s.rv();
        s.merge_patch(
            &NODES,
            "",
            "a",
            &json!({"spec": {"podCIDR": "10.1.0.0/24"}}),
            Part::Main,
        )
        .unwrap();
        assert_eq!(s.rv(), rv);
        assert!(s.events_after(rv).unwrap().is_empty());
    }

    #[test]
    fn main_and_status_updates_keep_the_other_part() {
        let mut s = Store::new(100);
        s.create(&NODES, "", node("a", "10.1.0.0/24")).unwrap();
        let addr = json!({"status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.9"}]},
                          "spec": {"podCIDR": "10.7.0.0/24"}});
        let main = s.merge_patch(&NODES, "", "a", &addr, Part::Main).unwrap();
        assert!(
            main.contains("10.7.0.0/24") && main.contains("10.0.0.1"),
            "{main}"
        );
        let status = s.merge_patch(&NODES, "", "a", &addr, Part::Status).unwrap();
        assert!(
            status.contains("10.7.0.0/24") && status.contains("10.0.0.9"),
            "{status}"
        );
    }

    #[test]
    fn a_stale_resource_version_conflicts() {
        let mut s = Store::new(100);
        s.create(&NODES, "", node("a", "10.1.0.0/24")).unwrap();
        let mut stale = node("a", "10.2.0.0/24");
        stale["metadata"]["resourceVersion"] = "1".into();
        assert_eq!(
            s.update(&NODES, "", "a", stale, Part::Whole)
                .unwrap_err()
                .code,
            409
        );
        let mut fresh = node("a", "10.2.0.0/24");
        fresh["metadata"]["resourceVersion"] = "2".into();
        assert!(s
            .update(&NODES, "", "a", fresh, Part::Whole)
            .unwrap()
            .contains("10.2.0.0/24"));
        let renamed = node("b", "10.2.0.0/24");
        assert_eq!(
            s.update(&NODES, "", "a", renamed, Part::Whole)
                .unwrap_err()
                .code,
            400
        );
    }

    #[test]
    fn pages_at_an_old_version_show_that_version() {
        let mut s = Store::new(100);
        for n in ["a", "b", "c", "d"] {
            s.create(&NODES, "", node(n, "10.1.0.0/24")).unwrap();
        }
        let first = s
            .list(ListAt::Latest, "nodes/", None, Some(2), &|_| true)
            .unwrap();
        assert_eq!(names(&first), ["a", "b"]);
        assert_eq!(
            (first.remaining, first.next_after.as_deref()),
            (2, Some("nodes//b"))
        );
        // Changes between the pages do not show in the rest of the list.
        s.delete(&NODES, "", "c").unwrap();
        s.create(&NODES, "", node("bb", "10.1.0.0/24")).unwrap();
        s.merge_patch(
            &NODES,
            "",
            "d",
            &json!({"spec": {"podCIDR": "10.4.0.0/24"}}),
            Part::Main,
        )
        .unwrap();
        let rest = s
            .list(
                ListAt::Exact(first.rv),
                "nodes/",
                Some("nodes//b"),
                Some(2),
                &|_| true,
            )
            .unwrap();
        assert_eq!(
            (names(&rest), rest.rv),
            (vec!["c".into(), "d".into()], first.rv)
        );
        assert!(rest.items[1].contains("10.1.0.0/24"));
        assert!(rest.next_after.is_none());
        let now = s
            .list(ListAt::Latest, "nodes/", None, None, &|_| true)
            .unwrap();
        assert_eq!(names(&now), ["a", "b", "bb", "d"]);
        assert_eq!(
            s.list(ListAt::Exact(99), "nodes/", None, None, &|_| true)
                .err()
                .unwrap()
                .code,
            504
        );
    }

    #[test]
    fn the_history_window_expires_old_versions() {
        let mut s = Store::new(2);
        for n in ["a", "b", "c"] {
            s.create(&NODES, "", node(n, "10.1.0.0/24")).unwrap();
        }
        // Events 3 and 4 are kept, 2 is not: from 2 on is fine, from 1 is too old.
        assert_eq!(s.events_after(2).unwrap().len(), 2);
        let e = s.events_after(1).unwrap_err();
        assert_eq!((e.code, e.reason), (410, "Expired"));
        assert_eq!(
            s.list(ListAt::Exact(1), "nodes/", None, None, &|_| true)
                .err()
                .unwrap()
                .code,
            410
        );
        s.compact();
        assert!(s.events_after(s.rv()).unwrap().is_empty());
        assert_eq!(s.events_after(s.rv() - 1).unwrap_err().code, 410);
    }

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut t = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        merge(&mut t, &json!({"a": "z", "c": {"f": null}, "l": [3]}));
        assert_eq!(t, json!({"a": "z", "c": {"d": "e"}, "l": [3]}));
    }

    #[test]
    fn uids_differ() {
        let mut u = UidSource::new();
        let (a, b) = (u.next(), u.next());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
    }
}
