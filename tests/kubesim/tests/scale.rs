//! The fill for the scale benchmark: 1,000 and 5,000 fake Nodes, how fast they go in, what the
//! server costs in memory holding them, and that kube's watcher lists them all in pages of 500.
//! Figures are printed (`cargo test -p podwire-kubesim --test scale -- --nocapture`); the only
//! bound is a sanity ceiling on memory: speed belongs to the benchmark.

mod common;

use common::{Mirror, TestServer};
use kube::runtime::watcher;
use kubesim::{Fleet, Options};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn thousands_of_nodes_fill_quickly_and_list_in_pages() {
    for count in [1_000u32, 5_000] {
        let t = TestServer::start(Options::default());
        let started = Instant::now();
        t.server
            .add_nodes(Fleet::dual_stack().nodes(0..count))
            .unwrap();
        let fill = started.elapsed();

        let started = Instant::now();
        let m = Mirror::start(&t.kubeconfig, watcher::Config::default());
        m.wait("every node listed", Duration::from_secs(60), |s| {
            s.nodes.len() == count as usize && s.log.iter().any(|l| l == "init-done")
        });
        let listed = started.elapsed();
        let stats = t.server.stats();
        eprintln!(
            "{count} nodes: fill {:.1} ms, watcher list {:.0} ms in {} pages",
            fill.as_secs_f64() * 1e3,
            listed.as_secs_f64() * 1e3,
            stats.lists
        );
        assert_eq!(stats.lists as u32, count.div_ceil(500));
        let last = Fleet::dual_stack().name(count - 1);
        let cidr = t
            .server
            .node(&last)
            .unwrap()
            .spec
            .unwrap()
            .pod_cidr
            .unwrap();
        assert!(m.with(|s| s.nodes[&last] == cidr));
    }
}

/// The `kubesim` binary's resident memory holding N Nodes, after serving them in one list.
fn server_rss_kib(count: u32) -> u64 {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubesim"))
        .args(["--fake-nodes", &count.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.trim().rsplit("http://").next().unwrap().to_string();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        conn,
        "GET /api/v1/nodes HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    conn.read_to_string(&mut body).unwrap();
    assert!(body.matches("\"podCIDR\"").count() == count as usize);
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn the_server_holds_5000_nodes_in_little_memory() {
    let empty = server_rss_kib(0);
    for count in [1_000, 5_000] {
        let rss = server_rss_kib(count);
        eprintln!(
            "kubesim RSS with {count} nodes: {:.1} MiB ({:.1} MiB empty)",
            rss as f64 / 1024.0,
            empty as f64 / 1024.0
        );
        assert!(rss < empty + 48 * 1024, "{count} Nodes: {rss} KiB");
    }
}
