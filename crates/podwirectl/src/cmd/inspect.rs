//! The read-only views: `trace`, `node show` and `path`. The model is `inspect`'s; this only
//! takes the arguments and prints.

use super::plugin::Cache;
use crate::{print_json, usage_error, Failure};
use clap::Args;
use std::path::PathBuf;

/// Where the network configs are.
#[derive(Args)]
pub struct Configs {
    /// Directory of network configs.
    #[arg(long, env = "NETCONFPATH", default_value = "/etc/cni/net.d")]
    netconfpath: PathBuf,
}

/// Where the node agent writes what NetworkPolicy it enforces.
#[derive(Args)]
pub struct PolicySource {
    /// The node agent's state directory (its `policy.json` says which policies are in force,
    /// its `routing.json` which peers it did not route and why).
    #[arg(long, value_name = "DIR", default_value = node::config::DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
}

impl PolicySource {
    fn state(&self) -> Option<inspect::policy::PolicyState> {
        inspect::policy::read_state(&self.state_dir).unwrap_or_else(|e| {
            eprintln!("podwirectl: {e}");
            None
        })
    }
}

#[derive(Args)]
pub struct DropsArgs {
    /// Then print each drop as the kernel logs it (which pod, which peer, port), for this many
    /// seconds (0: until interrupted). Logging is rate-limited in the kernel (10/s per pod).
    #[arg(long, value_name = "SECONDS")]
    watch: Option<u64>,
    /// The nflog group the drop rules log to.
    #[arg(long, value_name = "GROUP", default_value_t = inspect::policy::LOG_GROUP)]
    group: u16,
    #[command(flatten)]
    policy: PolicySource,
}

#[derive(Args)]
pub struct TraceArgs {
    /// The container ID (or a unique prefix of it).
    #[arg(value_name = "CONTAINER_ID")]
    container: String,
    /// Only this network's operations (and only its log file).
    #[arg(long)]
    network: Option<String>,
    /// Read this log file instead of the networks' `logFile`s (repeatable).
    #[arg(long = "log", value_name = "FILE")]
    logs: Vec<PathBuf>,
    /// How many of the latest operations to show.
    #[arg(long, default_value_t = 10)]
    last: usize,
    #[command(flatten)]
    configs: Configs,
}

#[derive(Args)]
pub struct ShowArgs {
    /// Only this network.
    #[arg(long)]
    network: Option<String>,
    /// Also draw the node as an SVG picture into FILE.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    #[command(flatten)]
    configs: Configs,
    #[command(flatten)]
    cache: Cache,
    #[command(flatten)]
    policy: PolicySource,
}

#[derive(Args)]
pub struct PathArgs {
    /// Where the packet starts: a pod's IP address or container ID (or unique prefix).
    src: String,
    /// Where it goes: any IP address, or a pod's container ID.
    dst: String,
    /// Only pods of this network.
    #[arg(long)]
    network: Option<String>,
    /// Also say which NetworkPolicies allow or deny a first packet to this port
    /// (PORT/tcp|udp|sctp), from this node's policy table.
    #[arg(long, value_name = "PORT/PROTO")]
    port: Option<String>,
    #[command(flatten)]
    configs: Configs,
    #[command(flatten)]
    cache: Cache,
    #[command(flatten)]
    policy: PolicySource,
}

fn fail(msg: String) -> Failure {
    runtime::Error::new(cni::Error::io(msg))
}

pub fn trace(a: &TraceArgs, as_json: bool) -> Result<(), Failure> {
    let netconfpath = &a.configs.netconfpath;
    let files = if a.logs.is_empty() {
        let lists = match &a.network {
            Some(n) => vec![runtime::load_network(netconfpath, n)?],
            None => runtime::conf::list_networks(netconfpath)?
                .into_iter()
                .flatten()
                .collect(),
        };
        let files = inspect::trace::log_files(&lists);
        if files.is_empty() {
            return Err(usage_error(format!(
                "no network under {} has a \"logFile\": set one, or give --log FILE",
                netconfpath.display()
            )));
        }
        files
    } else {
        a.logs.clone()
    };
    let mut ops = inspect::trace::read(&files, &a.container, a.network.as_deref()).map_err(fail)?;
    if ops.len() > a.last {
        ops.drain(..ops.len() - a.last);
    }
    if as_json {
        print_json(&serde_json::to_value(&ops).expect("serialises"));
    } else if ops.is_empty() {
        println!(
            "no traced operation on container {:?} in {}",
            a.container,
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    } else {
        print!("{}", inspect::trace::render(&ops));
    }
    Ok(())
}

fn node_view(
    configs: &Configs,
    cache: &Cache,
    network: Option<&str>,
) -> Result<inspect::node::NodeView, Failure> {
    inspect::node::show(&inspect::node::Sources {
        netconfpath: configs.netconfpath.clone(),
        cache_dir: cache.cache_dir.clone(),
        network: network.map(str::to_string),
    })
    .map_err(fail)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "this node".into())
}

pub fn show(a: &ShowArgs, as_json: bool) -> Result<(), Failure> {
    let view = node_view(&a.configs, &a.cache, a.network.as_deref())?;
    if let Some(file) = &a.svg {
        std::fs::write(file, inspect::svg::render(&view, &hostname()))
            .map_err(|e| fail(format!("cannot write {}: {e}", file.display())))?;
    }
    let policy = a.policy.state();
    let routing = inspect::routing::read_state(&a.policy.state_dir).unwrap_or_else(|e| {
        eprintln!("podwirectl: {e}");
        None
    });
    if as_json {
        let mut v = serde_json::to_value(&view).expect("serialises");
        v["networkPolicy"] = serde_json::to_value(&policy).expect("serialises");
        v["routing"] = serde_json::to_value(&routing).expect("serialises");
        print_json(&v);
    } else {
        print!("{}", inspect::node::render(&view));
        if let Some(r) = &routing {
            print!("{}", inspect::routing::render_state(r));
        }
        match &policy {
            Some(p) => print!("{}", inspect::policy::render_state(p)),
            None => println!(
                "network policy: no agent state in {}",
                a.policy.state_dir.display()
            ),
        }
    }
    Ok(())
}

pub fn path(a: &PathArgs, as_json: bool) -> Result<(), Failure> {
    let view = node_view(&a.configs, &a.cache, a.network.as_deref())?;
    let p = inspect::path::trace_path(&view, &a.src, &a.dst).map_err(usage_error)?;
    let verdict = match &a.port {
        None => None,
        Some(port) => {
            let (port, proto) = inspect::policy::parse_port(port).map_err(usage_error)?;
            let table = node::policy::PolicyTable::open().map_err(runtime::Error::new)?;
            let rs = table.read().map_err(runtime::Error::new)?;
            let state = a.policy.state();
            Some(inspect::policy::explain(
                &rs,
                state.as_ref(),
                p.src.ip,
                p.dst.ip,
                port,
                proto,
            ))
        }
    };
    if as_json {
        let mut v = serde_json::to_value(&p).expect("serialises");
        if let Some(verdict) = &verdict {
            v["networkPolicy"] = serde_json::to_value(verdict).expect("serialises");
        }
        print_json(&v);
    } else {
        print!("{}", inspect::path::render(&p));
        if let Some(verdict) = &verdict {
            print!("{}", inspect::policy::render_verdict(verdict));
        }
    }
    Ok(())
}

/// `drops`: packets NetworkPolicy dropped, per pod and direction, from the table's counters.
pub fn drops(a: &DropsArgs, as_json: bool) -> Result<(), Failure> {
    let table = node::policy::PolicyTable::open().map_err(runtime::Error::new)?;
    let counters = table.counters().map_err(runtime::Error::new)?;
    let d = inspect::policy::drops(&counters, a.policy.state().as_ref());
    if as_json {
        print_json(&serde_json::to_value(&d).expect("serialises"));
    } else {
        print!("{}", inspect::policy::render_drops(&d));
    }
    if let Some(secs) = a.watch {
        watch_drops(a.group, secs, as_json)?;
    }
    Ok(())
}

fn watch_drops(group: u16, secs: u64, as_json: bool) -> Result<(), Failure> {
    use std::io::Write;
    let log = kernel::nflog::Nflog::bind(group)
        .map_err(|e| fail(format!("read nflog group {group}: {e}")))?;
    let end = (secs > 0).then(|| std::time::Instant::now() + std::time::Duration::from_secs(secs));
    if !as_json {
        println!("drops as they happen (nflog group {group}):");
    }
    loop {
        let left = match end {
            Some(e) => match e.checked_duration_since(std::time::Instant::now()) {
                Some(d) if !d.is_zero() => Some(d),
                _ => return Ok(()),
            },
            None => None,
        };
        let got = log
            .next(left)
            .map_err(|e| fail(format!("read nflog group {group}: {e}")))?;
        for d in got.iter().filter_map(inspect::policy::logged_drop) {
            if as_json {
                println!("{}", serde_json::to_string(&d).expect("serialises"));
            } else {
                print!("{}", inspect::policy::render_logged(&d));
            }
        }
        let _ = std::io::stdout().flush();
    }
}
