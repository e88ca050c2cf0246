//! The HTTP side: hyper's HTTP/1.1 server, the core/v1 Node routes with the API server's
//! query-parameter semantics, discovery, and the `/kubesim/` admin endpoints.

use crate::error::ApiError;
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
    let allow = |resource: &str, verb: &str, name: Option<&str>| {
        shared.authorize(authorization.as_deref(), resource, verb, name)
    };
    let count = |c: &AtomicU64| c.fetch_add(1, Ordering::Relaxed);
    let n = &shared.counters;
    match (&method, segments.as_slice()) {
        (_, ["api", "v1", "nodes"]) => match method {
            Method::GET if q.flag("watch") => {
                count(&n.watches);
                allow("nodes", "watch", None)?;
                watch(shared, q)
            }
            Method::GET => {
                count(&n.lists);
                allow("nodes", "list", None)?;
                list(shared, q)
            }
            Method::POST => {
                count(&n.writes);
                allow("nodes", "create", None)?;
                let node = node_body(req).await?;
                let json = shared.write(|s| s.create(node))?;
                Ok(object(StatusCode::CREATED, &json))
            }
            _ => Err(ApiError::method_not_allowed()),
        },
        (_, ["api", "v1", "nodes", name]) | (_, ["api", "v1", "nodes", name, "status"]) => {
            let (part, resource) = if segments.len() == 5 {
                (Part::Status, "nodes/status")
            } else {
                (Part::Main, "nodes")
            };
            let name = *name;
            let verb = match method {
                Method::GET => "get",
                Method::PUT => "update",
                Method::PATCH => "patch",
                Method::DELETE => "delete",
                _ => "",
            };
            if !verb.is_empty() {
                allow(resource, verb, Some(name))?;
            }
            match method {
                Method::GET => {
                    count(&n.gets);
                    let json = shared
                        .store()
                        .get(name)
                        .ok_or_else(|| ApiError::not_found(name))?;
                    Ok(object(StatusCode::OK, &json))
                }
                Method::PUT => {
                    count(&n.writes);
                    let node = node_body(req).await?;
                    let json = shared.write(|s| s.update(name, node, part))?;
                    Ok(object(StatusCode::OK, &json))
                }
                Method::PATCH => {
                    count(&n.writes);
                    let kind = req
                        .headers()
                        .get(header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    if !kind.starts_with("application/merge-patch+json") {
                        return Err(ApiError::unsupported_media_type(format!(
                            "patch type {kind:?} is not supported by kubesim: use \
                             application/merge-patch+json (kube::api::Patch::Merge)"
                        )));
                    }
                    let patch = json_body(req).await?;
                    let json = shared.write(|s| s.merge_patch(name, &patch, part))?;
                    Ok(object(StatusCode::OK, &json))
                }
                Method::DELETE if part == Part::Main => {
                    count(&n.writes);
                    let options = json_body(req).await.unwrap_or(Value::Null);
                    let json = shared.write(|s| {
                        if let Some(current) = s.get(name) {
                            check_preconditions(name, &current, &options)?;
                        }
                        s.delete(name)
                    })?;
                    let uid = serde_json::from_str::<Value>(&json).expect("JSON")["metadata"]
                        ["uid"]
                        .clone();
                    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                        "status": "Success", "details": {"name": name, "kind": "nodes", "uid": uid}});
                    Ok(respond(StatusCode::OK, status.to_string()))
                }
                _ => Err(ApiError::method_not_allowed()),
            }
        }
        (&Method::GET, _) => {
            count(&n.other);
            discovery(shared, path)
        }
        _ => {
            count(&n.other);
            Err(ApiError::no_route())
        }
    }
}

/// `DeleteOptions.preconditions`: uid and resourceVersion must match when given.
fn check_preconditions(name: &str, current: &str, options: &Value) -> Result<(), ApiError> {
    let current: Value = serde_json::from_str(current).expect("stored objects are JSON");
    for (key, label) in [("uid", "UID"), ("resourceVersion", "ResourceVersion")] {
        let want = options["preconditions"][key].as_str();
        let have = current["metadata"][key].as_str().unwrap_or("");
        if let Some(want) = want.filter(|w| *w != have) {
            let mut e = ApiError::conflict(name);
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
        "/api/v1" => json!({
            "kind": "APIResourceList", "groupVersion": "v1",
            "resources": [
                {"name": "nodes", "singularName": "node", "namespaced": false, "kind": "Node",
                 "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
                 "shortNames": ["no"]},
                {"name": "nodes/status", "singularName": "", "namespaced": false, "kind": "Node",
                 "verbs": ["get", "patch", "update"]}
            ]
        }),
        _ => return Err(ApiError::no_route()),
    };
    Ok(respond(StatusCode::OK, body.to_string()))
}

/// GET /api/v1/nodes: the resourceVersion / resourceVersionMatch / limit / continue rules of
/// the API server (<https://kubernetes.io/docs/reference/using-api/api-concepts/>).
fn list(shared: &Shared, q: &Query) -> Result<Response<Body>, ApiError> {
    q.no_selectors()?;
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
        store.list(at, after.as_deref(), limit).map_err(|e| {
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
    body.push_str(
        "{\"kind\":\"NodeList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"",
    );
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

/// GET /api/v1/nodes?watch=1: validates as the API server does, then streams.
fn watch(shared: &Arc<Shared>, q: &Query) -> Result<Response<Body>, ApiError> {
    q.no_selectors()?;
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
                "resourceVersion": shared.store().rv(), "nodes": shared.store().len(),
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
                    s.create(serde_json::to_value(node).expect("a Node serializes"))?;
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

    /// Selectors are not implemented: refuse rather than answer a wrong subset.
    fn no_selectors(&self) -> Result<(), ApiError> {
        for key in ["labelSelector", "fieldSelector"] {
            if self.get(key).is_some_and(|v| !v.is_empty()) {
                return Err(ApiError::bad_request(format!(
                    "{key} is not implemented by kubesim (it serves every Node)"
                )));
            }
        }
        Ok(())
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

/// A request body that must decode as a core/v1 Node.
async fn node_body(req: Request<Incoming>) -> Result<Value, ApiError> {
    let value = json_body(req).await?;
    if let Err(e) = serde_json::from_value::<k8s_openapi::api::core::v1::Node>(value.clone()) {
        return Err(ApiError::bad_request(format!(
            "the object is not a valid Node: {e}"
        )));
    }
    Ok(value)
}

/// Appends a stored object with `kind`/`apiVersion` in front, as single objects are sent.
pub(crate) fn push_typed(out: &mut String, object: &Json) {
    out.push_str("{\"kind\":\"Node\",\"apiVersion\":\"v1\",");
    out.push_str(&object[1..]);
}

fn object(code: StatusCode, json: &Json) -> Response<Body> {
    let mut body = String::with_capacity(json.len() + 40);
    push_typed(&mut body, json);
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
        assert!(Query::parse("labelSelector=a%3Db").no_selectors().is_err());
    }
}
