//! What spoofCheck costs (#22 item 2): the ADD's wall time through the plugin binary with
//! `spoofCheck` on and off (interleaved, one pod netns per ADD), and pod-to-pod TCP throughput
//! between two guarded pods, two unguarded ones on the same bridge, and the unguarded ones again
//! with the table gone. Everything in throwaway netns. Run as root:
//!
//! ```sh
//! source scripts/setup-host.sh; link_static podwire-bridge:podwire
//! cargo run -p podwire-bridge --example spoofcheck_cost -- target/release/podwire [ADDS] [SECONDS] [--write docs/benchmarks.md]
//! ```
//!
//! scripts/bench.sh runs it with `--write`: its section of docs/benchmarks.md.

use kernel::Netns;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use testkit::TestNs;

fn main() {
    let mut args: Vec<String> = std::env::args().collect();
    let write = args.iter().position(|a| a == "--write").map(|i| {
        let path = args.get(i + 1).expect("--write FILE").clone();
        args.drain(i..i + 2);
        path
    });
    let plugin = std::fs::canonicalize(args.get(1).expect("usage: PLUGIN [ADDS] [SECONDS]"))
        .expect("plugin binary");
    let adds: usize = args.get(2).map_or(50, |s| s.parse().unwrap());
    let secs: u64 = args.get(3).map_or(2, |s| s.parse().unwrap());
    let node = TestNs::new("pwcost");
    let data = std::env::temp_dir().join(format!("podwire-cost-{}", node.name));
    let conf = |spoof: bool| {
        json!({"cniVersion": "1.1.0", "name": "cost", "type": "podwire", "bridge": "pwc0",
               "isGateway": true, "spoofCheck": spoof,
               "ipam": {"type": "podwire-ipam", "dataDir": data,
                        "ranges": [[{"subnet": "10.250.60.0/22"}]]}})
    };
    let run = |cmd: &str, c: &Value, ctr: &str, ns: &str| -> (Duration, Value) {
        let t = Instant::now();
        let mut child = Command::new(&plugin)
            .env_clear()
            .env("CNI_COMMAND", cmd)
            .env("CNI_CONTAINERID", ctr)
            .env("CNI_NETNS", ns)
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", plugin.parent().unwrap())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(c.to_string().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let took = t.elapsed();
        assert!(
            out.status.success(),
            "{cmd} {ctr}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        (
            took,
            serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        )
    };
    // The plugin runs in the node netns: this thread enters it for the whole run.
    let _in_node = node.ns.enter().unwrap();

    // Warm-up: the bridge and the table exist before the first timed ADD.
    let warm = TestNs::new("pwcw");
    run("ADD", &conf(true), "warm", &warm.path());
    let mut times: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for i in 0..adds {
        for (k, spoof) in [(0, true), (1, false)] {
            let pod = TestNs::new("pwcp");
            let ctr = format!("c{i}-{spoof}");
            let (took, _) = run("ADD", &conf(spoof), &ctr, &pod.path());
            times[k].push(took.as_secs_f64() * 1e3);
            run("DEL", &conf(spoof), &ctr, &pod.path());
        }
    }
    let mut rows = Vec::new();
    for (k, label) in [(0, "spoofCheck on "), (1, "spoofCheck off")] {
        let s = stats(&mut times[k]);
        println!(
            "ADD {label}: median {:.3} ms, p10 {:.3}, p90 {:.3} ({adds} ADDs)",
            s.0, s.1, s.2
        );
        rows.push(format!(
            "| ADD, {} | {:.3} ms | {:.3} ms | {:.3} ms |",
            label.trim(),
            s.0,
            s.1,
            s.2
        ));
    }

    // Throughput: a guarded pair and an unguarded pair on the same bridge.
    let pods: Vec<(TestNs, String)> = [true, true, false, false]
        .iter()
        .enumerate()
        .map(|(i, &spoof)| {
            let ns = TestNs::new("pwct");
            let (_, r) = run("ADD", &conf(spoof), &format!("t{i}"), &ns.path());
            let ip = r["ips"][0]["address"]
                .as_str()
                .unwrap()
                .split('/')
                .next()
                .unwrap()
                .to_string();
            (ns, ip)
        })
        .collect();
    let mut on = Vec::new();
    let mut off = Vec::new();
    for round in 0..5 {
        on.push(tcp_gbits(
            &pods[0].0,
            &pods[1].0,
            &pods[1].1,
            5000 + round,
            secs,
        ));
        off.push(tcp_gbits(
            &pods[2].0,
            &pods[3].0,
            &pods[3].1,
            5100 + round,
            secs,
        ));
    }
    let mut none = Vec::new();
    assert!(Command::new("nft")
        .args(["delete", "table", "bridge", "podwire-antispoof"])
        .status()
        .unwrap()
        .success());
    for round in 0..5 {
        none.push(tcp_gbits(
            &pods[2].0,
            &pods[3].0,
            &pods[3].1,
            5200 + round,
            secs,
        ));
    }
    for (label, v) in [
        ("guarded pods      ", &mut on),
        ("unguarded pods    ", &mut off),
        ("no table at all   ", &mut none),
    ] {
        let s = stats(v);
        println!(
            "TCP {label}: median {:.2} Gbit/s, min {:.2}, max {:.2} (5 × {secs} s)",
            s.0,
            v[0],
            v[v.len() - 1]
        );
        rows.push(format!(
            "| pod-to-pod TCP, {} | {:.2} Gbit/s | {:.2} (min) | {:.2} (max) |",
            label.trim(),
            s.0,
            v[0],
            v[v.len() - 1]
        ));
    }
    if let Some(path) = write {
        let section = format!(
            "{HEADING}\n\n`cargo run --release -p podwire-bridge --example spoofcheck_cost` \
             (scripts/bench.sh runs it): the plugin's ADD wall time with `spoofCheck` on and off \
             ({adds} each, interleaved, one pod netns per ADD, the bridge and table made before), \
             and one TCP stream between two pods of one bridge, 5 rounds of {secs} s each: two \
             guarded pods, two unguarded ones while the table exists, the same with the table \
             gone.\n\n| case | median | p10 / min | p90 / max |\n| --- | --- | --- | --- |\n{}\n",
            rows.join("\n")
        );
        testkit::bench_page::write_section(std::path::Path::new(&path), HEADING, &section);
        println!("written to {path}");
    }
    let _ = std::fs::remove_dir_all(&data);
}

const HEADING: &str = "## spoofCheck's cost";

/// (median, p10, p90), sorting `v`.
fn stats(v: &mut [f64]) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.1), at(0.9))
}

/// One TCP stream from `from` to `to_ip` for `secs`: Gbit/s received.
fn tcp_gbits(from: &TestNs, to: &TestNs, to_ip: &str, port: u16, secs: u64) -> f64 {
    let addr: SocketAddr = format!("{to_ip}:{port}").parse().unwrap();
    let listener = to.ns.run(|| TcpListener::bind(addr)).unwrap().unwrap();
    let reader = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        let t = Instant::now();
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n as u64,
            }
        }
        total as f64 * 8.0 / t.elapsed().as_secs_f64() / 1e9
    });
    let mut s = Netns::open(from.path())
        .unwrap()
        .run(|| TcpStream::connect(addr))
        .unwrap()
        .unwrap();
    let buf = vec![7u8; 1 << 16];
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        s.write_all(&buf).unwrap();
    }
    drop(s);
    reader.join().unwrap()
}
