//! `kubesim`: the stand-in API server as a process, for manual runs and scripts. Test controls
//! are the `/kubesim/…` admin endpoints (README.md).

use clap::Parser;
use kubesim::{Fleet, Options, Server};
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(about = "A stand-in Kubernetes API server for core/v1 Nodes (list/watch over HTTP)")]
struct Args {
    /// Address to listen on (port 0: any free port; the chosen URL is printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Write a kubeconfig pointing at the server here.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Start with this many fake Nodes (fake-00000…, pod CIDRs from 10.100.0.0/24).
    #[arg(long, default_value_t = 0)]
    fake_nodes: u32,
    /// Events kept for watches from an old resourceVersion.
    #[arg(long, default_value_t = 10_000)]
    history: usize,
    /// Seconds between BOOKMARK events on watches that allow them.
    #[arg(long, default_value_t = 60)]
    bookmark_seconds: u64,
    /// Serve HTTPS (a CA and a certificate made now; the kubeconfig carries the CA).
    #[arg(long)]
    tls: bool,
    /// Write the CA certificate (PEM) here, with --tls.
    #[arg(long, requires = "tls")]
    ca_file: Option<PathBuf>,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("kubesim: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind(&args.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let options = Options {
        history_limit: args.history,
        bookmark_interval: Duration::from_secs(args.bookmark_seconds),
        tls: args.tls,
        ..Options::default()
    };
    let server = Server::start_with(listener, options)?;
    let started = std::time::Instant::now();
    server.add_nodes(Fleet::default().nodes(0..args.fake_nodes))?;
    if args.fake_nodes > 0 {
        eprintln!(
            "kubesim: {} fake Nodes added in {:.1} ms",
            args.fake_nodes,
            started.elapsed().as_secs_f64() * 1e3
        );
    }
    if let Some(path) = &args.kubeconfig {
        server
            .write_kubeconfig(path)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if let (Some(path), Some(ca)) = (&args.ca_file, server.ca_pem()) {
        std::fs::write(path, ca).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    println!("kubesim listening on {}", server.url());
    loop {
        std::thread::park();
    }
}
