//! The agent's one HTTP listener (`--metrics-addr`, default 127.0.0.1:9799: the node's loopback,
//! so nothing new is exposed): `/healthz`, `/readyz`, `/metrics`.
//!
//! It runs on a thread of its own with its own small runtime, so it answers while a pass is
//! running and can say that the loop is stuck, rather than time out with it. hyper serves
//! HTTP/1 (already in the tree through kube's client); a connection that sends no request
//! header within 5 s is closed.

use super::health::Health;
use super::metrics::Metrics;
use cni::{Error, Result};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use std::net::SocketAddr;
use std::time::Duration;

/// The content type prometheus-client's text is in (Prometheus asks for it and reads it).
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Binds `addr` (an error at once if it cannot) and serves on a new thread; returns the
/// address bound (port 0 picks one).
pub fn serve(addr: SocketAddr, health: Health, metrics: Metrics) -> Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(addr).map_err(|e| {
        Error::io(format!(
            "listen on {addr} for /healthz, /readyz and /metrics: {e} (another --metrics-addr, \
             or \"\" for none)"
        ))
    })?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::io(e.to_string()))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::io(e.to_string()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io(format!("start the metrics listener: {e}")))?;
    std::thread::Builder::new()
        .name("agent-http".into())
        .spawn(move || rt.block_on(accept(listener, health, metrics)))
        .map_err(|e| Error::io(format!("start the metrics listener: {e}")))?;
    Ok(bound)
}

async fn accept(listener: std::net::TcpListener, health: Health, metrics: Metrics) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => return super::log(&format!("metrics listener: {e}")),
    };
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of file descriptors and the like: wait, do not spin.
                super::log(&format!("metrics listener: accept: {e}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (health, metrics) = (health.clone(), metrics.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let r = respond(&req, &health, &metrics);
                async move { Ok::<_, std::convert::Infallible>(r) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(5))
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

fn respond(req: &Request<Incoming>, health: &Health, metrics: &Metrics) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n".into());
    }
    let verdict = |r: std::result::Result<(), String>| match r {
        Ok(()) => text(StatusCode::OK, "ok\n".into()),
        Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
    };
    match req.uri().path() {
        "/healthz" | "/livez" => verdict(health.check()),
        "/readyz" => verdict(health.check_ready()),
        "/metrics" => {
            let mut r = Response::new(Full::new(Bytes::from(metrics.encode())));
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(OPENMETRICS),
            );
            r
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "podwire agent: /healthz, /readyz, /metrics\n".into(),
        ),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn get(addr: SocketAddr, path: &str) -> (u16, String) {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let status = out[9..12].parse().unwrap();
        let body = out.split_once("\r\n\r\n").unwrap().1.to_string();
        (status, body)
    }

    #[test]
    fn the_three_endpoints_answer_from_the_shared_state() {
        let health = Health::new(Duration::from_secs(5));
        let metrics = Metrics::new();
        let addr = serve(
            "127.0.0.1:0".parse().unwrap(),
            health.clone(),
            metrics.clone(),
        )
        .unwrap();
        health.woke();
        let _g = health.kernel_watch_guard();
        assert_eq!(get(addr, "/healthz"), (200, "ok\n".into()));
        let (code, body) = get(addr, "/readyz");
        assert_eq!(code, 503);
        assert!(body.contains("not ready"), "{body}");
        health.pass_started();
        health.pass_ended(true);
        assert_eq!(get(addr, "/readyz").0, 200);
        metrics.nodes(7);
        let (code, body) = get(addr, "/metrics");
        assert_eq!(code, 200);
        assert!(body.contains("podwire_agent_nodes 7"), "{body}");
        assert!(body.ends_with("# EOF\n"));
        assert_eq!(get(addr, "/nothing").0, 404);
        drop(_g);
        let (code, body) = get(addr, "/healthz");
        assert_eq!(code, 503);
        assert!(body.contains("kernel watch stopped"), "{body}");
        assert!(
            serve(addr, health, metrics).is_err(),
            "a taken address is an error at start"
        );
    }
}
