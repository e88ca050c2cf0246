//! The HTTP side: hyper's HTTP/1.1 server, the core/v1 Node routes with the API server's
//! query-parameter semantics, discovery, and the `/kubesim/` admin endpoints.

use crate::error::ApiError;
use crate::kinds::{FieldSelector, Kind, NODES};
use crate::server::{Gone, Shared};
use crate::store::{Json, ListAt, Part};
use crate::watch::{WatchRequest, WatchStream};
use base64::Engine;
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// The API server's request body limit.
const MAX_BODY: usize = 3 << 20;

/// Accepts connections until `stop` completes.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut stop = std::pin::pin!(stop);
    loop {
        let accepted = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of file descriptors or an aborted handshake: try again shortly.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            match shared.tls.clone() {
                None => serve_connection(stream, shared).await,
                Some(config) => {
                    let handshake = tokio_rustls::TlsAcceptor::from(config).accept(stream);
                    if let Ok(Ok(tls)) =
                        tokio::time::timeout(Duration::from_secs(10), handshake).await
                    {
                        serve_connection(tls, shared).await
                    }
                }
            }
        });
    }
}

async fn serve_connection<IO>(io: IO, shared: Arc<Shared>)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| handle(shared.clone(), req));
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await;
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    let query = Query::parse(req.uri().query().unwrap_or(""));
    shared.record(format!("{} {}", req.method(), req.uri()));
    if let Some(action) = path.strip_prefix("/kubesim/") {
        return Ok(admin(&shared, req.method(), action, &query).unwrap_or_else(|e| error(&e)));
    }
    wait_unpaused(&shared).await;
    Ok(route(&shared, req, &path, &query)
        .await
        .unwrap_or_else(|e| error(&e)))
}

async fn wait_unpaused(shared: &Shared) {
    let mut controls = shared.controls.subscribe();
    while controls.borrow_and_update().paused {
        if controls.changed().await.is_err() {
            return;
        }
    }
}

/// What a path names: a collection (of every namespace, or of one), or one object (or its
/// status).
enum Target<'p> {
    Collection {
        kind: &'static Kind,
        namespace: Option<&'p str>,
    },
    Object {
        kind: &'static Kind,
        /// "" for cluster-scoped kinds.
        namespace: &'p str,
        name: &'p str,
        status: bool,
    },
}

/// `/api/v1/…` and `/apis/<group>/v1/…` paths of the kinds kubesim serves.
fn target<'p>(segments: &[&'p str]) -> Option<Target<'p>> {
    let (group, rest) = match segments {
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", group, "v1", rest @ ..] => (*group, rest),
        _ => return None,
    };
    let kind = |resource: &str, namespaced: bool| {
        Kind::find(group, resource).filter(|k| k.namespaced == namespaced)
    };
    let object = |kind, namespace, name, status| Target::Object {
        kind,
        namespace,
        name,
        status,
    };
    Some(match *rest {
        [resource] => Target::Collection {
            kind: Kind::find(group, resource)?,
            namespace: None,
        },
        ["namespaces", ns, "status"] => object(kind("namespaces", false)?, "", ns, true),
        ["namespaces", ns, resource] => Target::Collection {
            kind: kind(resource, true)?,
            namespace: Some(ns),
        },
        ["namespaces", ns, resource, name] => object(kind(resource, true)?, ns, name, false),
        ["namespaces", ns, resource, name, "status"] => {
            object(kind(resource, true)?, ns, name, true)
        }
        [resource, name] => object(kind(resource, false)?, "", name, false),
        [resource, name, "status"] => object(kind(resource, false)?, "", name, true),
        _ => return None,
    })
}

async fn route(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    path: &str,
    q: &Query,
) -> Result<Response<Body>, ApiError> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = req.method().clone();
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let allow = |kind: &Kind, sub: &str, verb: &str, ns: Option<&str>, name: Option<&str>| {
        let resource = format!("{}{sub}", kind.resource);
        let ns = ns.filter(|n| !n.is_empty());
        shared.authorize(
            authorization.as_deref(),
            &resource,
            kind.group,
            verb,
            ns,
            name,
        )
    };
    let count = |c: &AtomicU64| c.fetch_add(1, Ordering::Relaxed);
    let n = &shared.counters;
    match target(&segments) {
        Some(Target::Collection { kind, namespace }) => match method {
            Method::GET if q.flag("watch") => {
                count(&n.watches);
                allow(kind, "", "watch", namespace, None)?;
                watch(shared, kind, namespace, q)
            }
            Method::GET => {
                count(&n.lists);
                allow(kind, "", "list", namespace, None)?;
                list(shared, kind, namespace, q)
            }
            Method::POST if kind.namespaced == namespace.is_some() => {
                count(&n.writes);
                allow(kind, "", "create", namespace, None)?;
                let body = typed_body(kind, req).await?;
                let ns = namespace.unwrap_or("");
                let json = shared.write(|s| s.create(kind, ns, body))?;
                Ok(object(kind, StatusCode::CREATED, &json))
            }
            _ => Err(ApiError::method_not_allowed()),
        },
        Some(Target::Object {
            kind,
            namespace,
            name,
            status,
        }) => {
            let (part, sub) = match (status, kind.status) {
                (true, true) => (Part::Status, "/status"),
                (true, false) => return Err(ApiError::no_route()),
                (false, _) => (Part::Main, ""),
            };
            let verb = match method {
                Method::GET => "get",
                Method::PUT => "update",
                Method::PATCH => "patch",
                Method::DELETE => "delete",
                _ => "",
            };
            if !verb.is_empty() {
                allow(kind, sub, verb, Some(namespace), Some(name))?;
            }
            let key = kind.key(namespace, name);
            match method {
                Method::GET => {
                    count(&n.gets);
                    let json = shared
                        .store()
                        .get(&key)
                        .ok_or_else(|| ApiError::not_found(kind.qualified, name))?;
                    Ok(object(kind, StatusCode::OK, &json))
                }
                Method::PUT => {
                    count(&n.writes);
                    let body = typed_body(kind, req).await?;
                    let json = shared.write(|s| s.update(kind, namespace, name, body, part))?;
                    Ok(object(kind, StatusCode::OK, &json))
                }
                Method::PATCH => {
                    count(&n.writes);
                    let content = req
                        .headers()
                        .get(header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    if !content.starts_with("application/merge-patch+json") {
                        return Err(ApiError::unsupported_media_type(format!(
                            "patch type {content:?} is not supported by kubesim: use \
                             application/merge-patch+json (kube::api::Patch::Merge)"
                        )));
                    }
                    let patch = json_body(req).await?;
                    let json =
                        shared.write(|s| s.merge_patch(kind, namespace, name, &patch, part))?;
                    Ok(object(kind, StatusCode::OK, &json))
                }
                Method::DELETE if part == Part::Main => {
                    count(&n.writes);
                    let options = json_body(req).await.unwrap_or(Value::Null);
                    let json = shared.write(|s| {
                        if let Some(current) = s.get(&key) {
                            check_preconditions(kind, name, &current, &options)?;
                        }
                        s.delete(kind, namespace, name)
                    })?;
                    let uid = serde_json::from_str::<Value>(&json).expect("JSON")["metadata"]
                        ["uid"]
                        .clone();
                    let mut details = json!({"name": name, "kind": kind.resource, "uid": uid});
                    if !kind.group.is_empty() {
                        details["group"] = kind.group.into();
                    }
                    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                        "status": "Success", "details": details});
                    Ok(respond(StatusCode::OK, status.to_string()))
                }
                _ => Err(ApiError::method_not_allowed()),
            }
        }
        None if method == Method::GET => {
            count(&n.other);
            discovery(shared, path)
        }
        None => {
            count(&n.other);
            Err(ApiError::no_route())
        }
    }
}

/// `DeleteOptions.preconditions`: uid and resourceVersion must match when given.
fn check_preconditions(
    kind: &Kind,
    name: &str,
    current: &str,
    options: &Value,
) -> Result<(), ApiError> {
    let current: Value = serde_json::from_str(current).expect("stored objects are JSON");
    for (key, label) in [("uid", "UID"), ("resourceVersion", "ResourceVersion")] {
        let want = options["preconditions"][key].as_str();
        let have = current["metadata"][key].as_str().unwrap_or("");
        if let Some(want) = want.filter(|w| *w != have) {
            let mut e = ApiError::conflict(kind.qualified, name);
            e.message = format!(
                "Precondition failed: {label} in precondition: {want}, {label} in object meta: {have}"
            );
            return Err(e);
        }
    }
    Ok(())
}

fn discovery(shared: &Shared, path: &str) -> Result<Response<Body>, ApiError> {
    let body = match path {
        "/healthz" | "/readyz" | "/livez" => {
            return Ok(Response::builder()
                .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .body(full("ok"))
                .expect("valid response"))
        }
        "/version" => json!({
            "major": "1", "minor": "33", "gitVersion": "v1.33.0-kubesim",
            "gitCommit": "", "gitTreeState": "clean", "buildDate": "",
            "goVersion": "", "compiler": "kubesim", "platform": "linux/amd64"
        }),
        "/api" => json!({
            "kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": shared.addr.to_string()}
            ]
        }),
        "/api/v1" => resource_list(""),
        "/apis" => json!({
            "kind": "APIGroupList", "apiVersion": "v1",
            "groups": [api_group("networking.k8s.io")]
        }),
        "/apis/networking.k8s.io" => {
            let mut g = api_group("networking.k8s.io");
            g["kind"] = "APIGroup".into();
            g["apiVersion"] = "v1".into();
            g
        }
        "/apis/networking.k8s.io/v1" => resource_list("networking.k8s.io"),
        _ => return Err(ApiError::no_route()),
    };
    Ok(respond(StatusCode::OK, body.to_string()))
}

fn api_group(name: &str) -> Value {
    let v1 = json!({"groupVersion": format!("{name}/v1"), "version": "v1"});
    json!({"name": name, "versions": [v1.clone()], "preferredVersion": v1})
}

/// The APIResourceList of a group's v1: every kind of it, and the status subresources.
fn resource_list(group: &str) -> Value {
    let verbs = [
        "create", "delete", "get", "list", "patch", "update", "watch",
    ];
    let mut resources = Vec::new();
    for k in crate::kinds::ALL.iter().filter(|k| k.group == group) {
        resources.push(json!({"name": k.resource, "singularName": k.singular,
            "namespaced": k.namespaced, "kind": k.kind, "verbs": verbs,
            "shortNames": k.short_names}));
        if k.status {
            resources.push(
                json!({"name": format!("{}/status", k.resource), "singularName": "",
                "namespaced": k.namespaced, "kind": k.kind, "verbs": ["get", "patch", "update"]}),
            );
        }
    }
    let group_version = if group.is_empty() {
        "v1".to_string()
    } else {
        format!("{group}/v1")
    };
    json!({"kind": "APIResourceList", "groupVersion": group_version, "resources": resources})
}

/// The `fieldSelector` of a list or watch (`labelSelector` is refused: not implemented).
fn fields(kind: &Kind, q: &Query) -> Result<FieldSelector, ApiError> {
    if q.get("labelSelector").is_some_and(|v| !v.is_empty()) {
        return Err(ApiError::bad_request(format!(
            "labelSelector is not implemented by kubesim (it serves every {})",
            kind.kind
        )));
    }
    FieldSelector::parse(kind, q.get("fieldSelector").unwrap_or("")).map_err(ApiError::bad_request)
}

/// GET on a collection: the resourceVersion / resourceVersionMatch / limit / continue rules of
/// the API server (<https://kubernetes.io/docs/reference/using-api/api-concepts/>).
fn list(
    shared: &Shared,
    kind: &'static Kind,
    namespace: Option<&str>,
    q: &Query,
) -> Result<Response<Body>, ApiError> {
    let selector = fields(kind, q)?;
    let limit = q.number("limit")?.map(|l| l as usize);
    let rv = q.get("resourceVersion").unwrap_or("");
    let rv_match = q.get("resourceVersionMatch").unwrap_or("");
    let (at, after) = match q.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            if !rv.is_empty() {
                return Err(ApiError::bad_request(
                    "specifying resource version is not allowed when using continue",
                ));
            }
            let (rv, after) = decode_continue(token)?;
            (ListAt::Exact(rv), Some(after))
        }
        None => {
            let current = shared.store().rv();
            let asked = match rv {
                "" if !rv_match.is_empty() => {
                    return Err(ApiError::invalid(
                        "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden \
                         unless resourceVersion is provided",
                    ))
                }
                "" | "0" => None,
                n => Some(parse_rv(n)?),
            };
            let at = match (asked, rv_match) {
                (None, _) => ListAt::Latest,
                (Some(n), "Exact") => ListAt::Exact(n),
                // Legacy semantics: with a limit, an unmatched resourceVersion is exact.
                (Some(n), "") if limit.is_some() => ListAt::Exact(n),
                (Some(n), "" | "NotOlderThan") if n > current => {
                    return Err(ApiError::too_large_rv(n, current))
                }
                (Some(_), "" | "NotOlderThan") => ListAt::Latest,
                (Some(_), other) => {
                    return Err(ApiError::invalid(format!(
                        "resourceVersionMatch: Unsupported value: {other:?}: supported values: \
                         \"Exact\", \"NotOlderThan\", \"\""
                    )))
                }
            };
            (at, None)
        }
    };
    let page = {
        let store = shared.store();
        let keep = |j: &Json| {
            selector.is_empty() || {
                let v: Value = serde_json::from_str(j).expect("stored objects are JSON");
                selector.matches(kind, &v)
            }
        };
        let prefix = kind.prefix(namespace);
        if after.as_deref().is_some_and(|a| !a.starts_with(&prefix)) {
            return Err(ApiError::bad_request(
                "continue key is not valid for this list",
            ));
        }
        store
            .list(at, &prefix, after.as_deref(), limit, &keep)
            .map_err(|e| {
                if e.code == 410 && after.is_some() {
                    ApiError::expired(
                        "The provided continue parameter is too old to display a consistent list \
                     result. You can start a new list without the continue parameter."
                            .into(),
                    )
                } else {
                    e
                }
            })?
    };
    let size: usize = page.items.iter().map(|j| j.len() + 40).sum();
    let mut body = String::with_capacity(size + 200);
    body.push_str("{\"kind\":\"");
    body.push_str(kind.kind);
    body.push_str("List\",\"apiVersion\":\"");
    body.push_str(kind.api_version);
    body.push_str("\",\"metadata\":{\"resourceVersion\":\"");
    body.push_str(&page.rv.to_string());
    body.push('"');
    if let Some(after) = &page.next_after {
        body.push_str(",\"continue\":\"");
        body.push_str(&encode_continue(page.rv, after));
        body.push_str("\",\"remainingItemCount\":");
        body.push_str(&page.remaining.to_string());
    }
    body.push_str("},\"items\":[");
    for (i, item) in page.items.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(item);
    }
    body.push_str("]}");
    Ok(respond(StatusCode::OK, body))
}

/// GET on a collection with `watch=1`: validates as the API server does, then streams.
fn watch(
    shared: &Arc<Shared>,
    kind: &'static Kind,
    namespace: Option<&str>,
    q: &Query,
) -> Result<Response<Body>, ApiError> {
    let selector = fields(kind, q)?;
    let rv = q.get("resourceVersion").unwrap_or("");
    let from = match rv {
        "" | "0" => None,
        n => Some(parse_rv(n)?),
    };
    let bookmarks = q.flag("allowWatchBookmarks");
    let send_initial = q.get("sendInitialEvents").map(|v| v == "true" || v == "1");
    let rv_match = q.get("resourceVersionMatch").unwrap_or("");
    if send_initial.is_some() {
        if rv_match != "NotOlderThan" {
            return Err(ApiError::invalid(
                "resourceVersionMatch: Forbidden: sendInitialEvents requires setting \
                 resourceVersionMatch to NotOlderThan",
            ));
        }
        if send_initial == Some(true) && !bookmarks {
            return Err(ApiError::invalid(
                "allowWatchBookmarks: Forbidden: sendInitialEvents requires \
                 allowWatchBookmarks=true",
            ));
        }
    } else if !rv_match.is_empty() {
        return Err(ApiError::invalid(
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch \
             unless sendInitialEvents is provided",
        ));
    }
    let timeout = match q.number("timeoutSeconds")? {
        Some(s) => Duration::from_secs(s),
        None => shared.settings().default_watch_timeout,
    };
    let request = WatchRequest {
        kind,
        prefix: kind.prefix(namespace),
        fields: selector,
        initial_events: send_initial.unwrap_or(from.is_none()),
        initial_end_bookmark: send_initial == Some(true),
        from,
        bookmarks,
        timeout,
    };
    let stream = WatchStream::open(shared.clone(), request)?;
    let chunks = futures_util::stream::unfold(stream, |mut stream| async move {
        let chunk = stream.next_chunk().await?;
        Some((Ok(Frame::data(chunk)), stream))
    });
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(StreamBody::new(chunks).boxed_unsync())
        .expect("valid response"))
}

/// `/kubesim/<action>`: the test controls over HTTP (for the `kubesim` binary's users).
fn admin(
    shared: &Shared,
    method: &Method,
    action: &str,
    q: &Query,
) -> Result<Response<Body>, ApiError> {
    let done = || Ok(respond(StatusCode::OK, "{}".to_string()));
    match (method, action) {
        (&Method::GET, "stats") => {
            let s = shared.stats();
            let body = json!({
                "lists": s.lists, "watches": s.watches, "gets": s.gets, "writes": s.writes,
                "other": s.other, "expired": s.expired, "openWatches": s.open_watches,
                "resourceVersion": shared.store().rv(),
                "nodes": shared.store().count(&NODES.prefix(None)),
            });
            Ok(respond(StatusCode::OK, body.to_string()))
        }
        (&Method::POST, "close-watches") => {
            shared.close_watches();
            done()
        }
        (&Method::POST, "expire-history") => {
            shared.write(|s| s.compact());
            done()
        }
        (&Method::POST, "history-limit") => {
            let events = q
                .number("events")?
                .ok_or_else(|| ApiError::bad_request("history-limit needs ?events=N"))?;
            shared.write(|s| s.set_history_limit(events as usize));
            done()
        }
        (&Method::POST, "gone") => {
            let gone = match q.get("form") {
                Some("event") => Gone::InStream,
                Some("status") => Gone::HttpStatus,
                _ => return Err(ApiError::bad_request("gone needs ?form=event|status")),
            };
            shared.set_gone(gone);
            done()
        }
        (&Method::POST, "bookmark-interval") => {
            let ms = q
                .number("ms")?
                .ok_or_else(|| ApiError::bad_request("bookmark-interval needs ?ms=N"))?;
            shared.set_bookmark_interval(Duration::from_millis(ms));
            done()
        }
        (&Method::POST, "pause") => {
            shared.set_paused(true);
            done()
        }
        (&Method::POST, "resume") => {
            shared.set_paused(false);
            done()
        }
        (&Method::POST, "fake-nodes") => {
            let count = q.number("count")?.unwrap_or(0) as u32;
            let start = q.number("start")?.unwrap_or(0) as u32;
            let fleet = crate::fleet::Fleet::default();
            shared.write(|s| {
                for node in fleet.nodes(start..start + count) {
                    let node = serde_json::to_value(node).expect("a Node serializes");
                    s.create(&NODES, "", node)?;
                }
                Ok::<(), ApiError>(())
            })?;
            done()
        }
        _ => Err(ApiError::no_route()),
    }
}

/// The query string, decoded.
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: &str) -> Query {
        Query(
            form_urlencoded::parse(raw.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean parameter: "true" or "1" (as the API server's query decoding).
    fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1" | "True"))
    }

    fn number(&self, key: &str) -> Result<Option<u64>, ApiError> {
        match self.get(key).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("{key}: invalid value {v:?}"))),
        }
    }
}

fn parse_rv(rv: &str) -> Result<u64, ApiError> {
    rv.parse()
        .map_err(|_| ApiError::bad_request(format!("invalid resource version {rv:?}")))
}

/// The API server's continue token: base64url of `{"v":"meta.k8s.io/v1","rv":N,"start":"<next key>"}`.
fn encode_continue(rv: u64, after: &str) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{after}\u{0}")});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_string())
}

fn decode_continue(token: &str) -> Result<(u64, String), ApiError> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token:?}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rv = v["rv"].as_u64().ok_or_else(bad)?;
    let start = v["start"].as_str().ok_or_else(bad)?;
    let after = start.strip_suffix('\u{0}').ok_or_else(bad)?;
    Ok((rv, after.to_string()))
}

async fn json_body(req: Request<Incoming>) -> Result<Value, ApiError> {
    let bytes = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?
        .to_bytes();
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(format!("the body of the request is not valid JSON: {e}"))
    })
}

/// A request body that must decode as an object of `kind`.
async fn typed_body(kind: &Kind, req: Request<Incoming>) -> Result<Value, ApiError> {
    let value = json_body(req).await?;
    if let Err(e) = kind.check(&value) {
        return Err(ApiError::bad_request(format!(
            "the object is not a valid {}: {e}",
            kind.kind
        )));
    }
    Ok(value)
}

/// Appends a stored object with `kind`/`apiVersion` in front, as single objects are sent.
pub(crate) fn push_typed(kind: &Kind, out: &mut String, object: &Json) {
    out.push_str("{\"kind\":\"");
    out.push_str(kind.kind);
    out.push_str("\",\"apiVersion\":\"");
    out.push_str(kind.api_version);
    out.push_str("\",");
    out.push_str(&object[1..]);
}

fn object(kind: &Kind, code: StatusCode, json: &Json) -> Response<Body> {
    let mut body = String::with_capacity(json.len() + 60);
    push_typed(kind, &mut body, json);
    respond(code, body)
}

fn respond(code: StatusCode, body: String) -> Response<Body> {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .body(full(body))
        .expect("valid response")
}

fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into()).boxed_unsync()
}

fn error(e: &ApiError) -> Response<Body> {
    respond(
        StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        e.status_json(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let token = encode_continue(42, "node-7");
        assert_eq!(decode_continue(&token).unwrap(), (42, "node-7".to_string()));
        assert_eq!(decode_continue("garbage!").unwrap_err().code, 400);
    }

    #[test]
    fn queries_decode() {
        let q = Query::parse("watch=1&resourceVersion=12&allowWatchBookmarks=true&x=a%2Fb");
        assert!(q.flag("watch") && q.flag("allowWatchBookmarks") && !q.flag("y"));
        assert_eq!(q.number("resourceVersion").unwrap(), Some(12));
        assert_eq!(q.get("x"), Some("a/b"));
        let q = Query::parse("labelSelector=a%3Db");
        assert!(fields(&crate::kinds::PODS, &q).is_err());
        let q = Query::parse("fieldSelector=spec.nodeName%3Dn1");
        assert!(!fields(&crate::kinds::PODS, &q).unwrap().is_empty());
    }
}
