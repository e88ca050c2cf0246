//! podwirectl: cnitool's job on podwire's runtime library. Adds, checks, deletes, GCs and asks
//! the status of a network for a network namespace, reading cnitool's environment
//! (NETCONFPATH, CNI_PATH, CNI_ARGS, CAP_ARGS, CNI_IFNAME) or the matching flags; and makes
//! pod-like namespaces without `ip`.

mod ids;
mod summary;
mod views;

use clap::{Args as ClapArgs, Parser, Subcommand};
use runtime::{CniConfig, Exec, GcAttachment, NetworkConfigList, RuntimeConf};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "podwirectl",
    version,
    about = "Run a CNI network config for a network namespace, as cnitool does",
    after_help = "Environment as cnitool: NETCONFPATH, CNI_PATH, CNI_ARGS, CAP_ARGS, CNI_IFNAME.\n\
                  The container ID is cnitool's (\"cnitool-\" + 20 hex digits of the netns path's \
                  SHA-512) unless --container-id is given."
)]
struct Cli {
    #[command(flatten)]
    opts: Opts,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(ClapArgs)]
struct Opts {
    /// Directory of network configs.
    #[arg(
        long,
        env = "NETCONFPATH",
        default_value = "/etc/cni/net.d",
        global = true
    )]
    netconfpath: PathBuf,
    /// Plugin directories, ':'-separated.
    #[arg(long, env = "CNI_PATH", default_value = "/opt/cni/bin", global = true)]
    cni_path: String,
    /// Extra arguments for the plugins: KEY=VALUE;KEY2=VALUE2.
    #[arg(long, env = "CNI_ARGS", default_value = "", global = true)]
    cni_args: String,
    /// Capability arguments as a JSON object, e.g. '{"portMappings":[...]}'.
    #[arg(long, env = "CAP_ARGS", default_value = "", global = true)]
    cap_args: String,
    /// Interface name inside the namespace.
    #[arg(short, long, env = "CNI_IFNAME", default_value = "eth0", global = true)]
    ifname: String,
    /// Container ID (default: derived from the netns path, as cnitool does).
    #[arg(long, global = true)]
    container_id: Option<String>,
    /// Result cache directory (results are kept in <dir>/results).
    #[arg(long, env = "CNI_CACHE_DIR", default_value = runtime::cache::DEFAULT_DIR, global = true)]
    cache_dir: PathBuf,
    /// Kill a plugin that runs longer than this many seconds (0: never).
    #[arg(long, default_value_t = 60, global = true)]
    timeout: u64,
    /// Print results (and errors) as JSON on stdout.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum Cmd {
    /// Add the network's interface to the namespace and print the result.
    Add(Target),
    /// Check the attachment is as the cached result says.
    Check(Target),
    /// Delete the network's interface from the namespace.
    Del(Target),
    /// Delete cached attachments of the network not listed with --valid, then GC each plugin.
    Gc {
        network: String,
        /// Ignored; accepted for cnitool's argument order.
        netns: Option<String>,
        /// An attachment to keep: CONTAINER_ID or CONTAINER_ID/IFNAME (repeatable). With none,
        /// every cached attachment of the network is stale, as with cnitool's gc.
        #[arg(long = "valid", value_name = "CONTAINER_ID[/IFNAME]")]
        valid: Vec<String>,
    },
    /// Ask each plugin whether it is ready for ADDs (CNI 1.1.0 lists).
    Status {
        network: String,
        /// Ignored; accepted for cnitool's argument order.
        netns: Option<String>,
    },
    /// The last traced operations on a container: each step, when, how long, what it did.
    Trace(views::TraceArgs),
    /// The hops from a pod to an address or another pod, asked of the kernel.
    Path(views::PathArgs),
    /// Named network namespaces under /run/netns, without `ip`.
    #[command(subcommand)]
    Netns(NetnsCmd),
    /// Set this node up for podwire (bridge, forwarding, nftables, conflist), or undo it.
    #[command(subcommand)]
    Node(NodeCmd),
}

#[derive(Subcommand)]
enum NodeCmd {
    /// From the node's podCIDR to a conflist, a bridge, forwarding and masquerade.
    Setup(Box<node::cli::SetupArgs>),
    /// Remove exactly what setup created.
    Teardown(node::cli::TeardownArgs),
    /// Copy the podwire plugin binaries into the CNI bin directory (or --remove them).
    InstallCni(node::cli::InstallArgs),
    /// What podwire built on this node: bridges, pods, IPAM use, routes out, rules, problems.
    Show(views::ShowArgs),
}

#[derive(ClapArgs)]
struct Target {
    /// The network's name (its "name" in a config under NETCONFPATH).
    network: String,
    /// The namespace: a path such as /run/netns/pod1, or just pod1 for /run/netns/pod1.
    netns: String,
}

#[derive(Subcommand)]
enum NetnsCmd {
    /// Create /run/netns/NAME.
    Add { name: String },
    /// Delete /run/netns/NAME.
    Del { name: String },
    /// List the names under /run/netns.
    List,
}

type Failure = runtime::Error;

fn usage_error(msg: String) -> Failure {
    runtime::Error::new(cni::Error::invalid_env(msg))
}

impl Opts {
    fn cni(&self) -> CniConfig {
        let path = std::env::split_paths(&self.cni_path)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        CniConfig::new(path)
            .with_cache_dir(&self.cache_dir)
            .with_exec(Exec {
                timeout: (self.timeout > 0).then(|| Duration::from_secs(self.timeout)),
                ..Exec::default()
            })
    }

    fn load(&self, network: &str) -> Result<NetworkConfigList, Failure> {
        runtime::load_network(&self.netconfpath, network)
    }

    fn runtime_conf(&self, netns: &str) -> Result<RuntimeConf, Failure> {
        let cwd = std::env::current_dir()
            .map_err(|e| usage_error(format!("cannot read the current directory: {e}")))?;
        let netns = ids::netns_path(netns, &cwd, Path::new(kernel::netns::NETNS_RUN_DIR))
            .display()
            .to_string();
        let capability_args = match self.cap_args.trim() {
            "" => Default::default(),
            text => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(m)) => m,
                Ok(other) => {
                    return Err(usage_error(format!(
                        "CAP_ARGS must be a JSON object, not {other}"
                    )))
                }
                Err(e) => return Err(usage_error(format!("CAP_ARGS is not JSON: {e}"))),
            },
        };
        let args = cni::args::CniArgs::parse(&self.cni_args)?.pairs;
        Ok(RuntimeConf {
            container_id: self
                .container_id
                .clone()
                .unwrap_or_else(|| ids::container_id(&netns)),
            netns,
            ifname: self.ifname.clone(),
            args,
            capability_args,
        })
    }
}

fn parse_valid(items: &[String], default_ifname: &str) -> Vec<GcAttachment> {
    items
        .iter()
        .map(|v| {
            let (cid, ifname) = v.split_once('/').unwrap_or((v, default_ifname));
            GcAttachment {
                container_id: cid.to_string(),
                ifname: ifname.to_string(),
            }
        })
        .collect()
}

fn print_json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).expect("JSON always serialises")
    );
}

fn run(cli: &Cli) -> Result<(), Failure> {
    let o = &cli.opts;
    match &cli.cmd {
        Cmd::Add(t) => {
            let list = o.load(&t.network)?;
            let rt = o.runtime_conf(&t.netns)?;
            let mut runs = Vec::new();
            // A failure stays one line (it names the plugin); the timings are for success.
            let result = o.cni().add_network_list_timed(&list, &rt, &mut runs)?;
            if o.json {
                print_json(&runtime::result_json(&result));
            } else {
                println!(
                    "added network {:?} as {} in {} (container {}, CNI {})",
                    list.name, rt.ifname, rt.netns, rt.container_id, result.cni_version
                );
                print!("{}", summary::result(&result));
                print!("{}", summary::plugin_runs(&runs));
            }
        }
        Cmd::Check(t) => {
            let list = o.load(&t.network)?;
            let rt = o.runtime_conf(&t.netns)?;
            o.cni().check_network_list(&list, &rt)?;
            if !o.json {
                let note = if list.disable_check {
                    " (disableCheck is set: nothing was asked)"
                } else {
                    ""
                };
                println!(
                    "network {:?} as {} in {} is ok{note}",
                    list.name, rt.ifname, rt.netns
                );
            }
        }
        Cmd::Del(t) => {
            let list = o.load(&t.network)?;
            let rt = o.runtime_conf(&t.netns)?;
            let mut runs = Vec::new();
            o.cni().del_network_list_timed(&list, &rt, &mut runs)?;
            if !o.json {
                println!(
                    "deleted network {:?} as {} from {} (container {})",
                    list.name, rt.ifname, rt.netns, rt.container_id
                );
                print!("{}", summary::plugin_runs(&runs));
            }
        }
        Cmd::Gc { network, valid, .. } => {
            let list = o.load(network)?;
            let cni = o.cni();
            let valid = parse_valid(valid, &o.ifname);
            let candidates: Vec<_> = cni
                .cached_attachments(None)?
                .into_iter()
                .filter(|a| a.network_name == list.name)
                .filter(|a| {
                    !valid
                        .iter()
                        .any(|v| v.container_id == a.container_id && v.ifname == a.ifname)
                })
                .collect();
            let res = cni.gc_network_list(&list, (!valid.is_empty()).then_some(&valid[..]));
            let removed: Vec<_> = candidates
                .iter()
                .filter(|a| {
                    cni.cache
                        .file_path(&a.network_name, &a.container_id, &a.ifname)
                        .map(|p| !p.exists())
                        .unwrap_or(false)
                })
                .collect();
            if o.json {
                let list: Vec<Value> = removed
                    .iter()
                    .map(|a| json!({"containerID": a.container_id, "ifname": a.ifname}))
                    .collect();
                print_json(&json!({ "removed": list }));
            } else if list.disable_gc {
                println!("network {:?} has disableGC set: nothing done", list.name);
            } else {
                println!(
                    "gc network {:?}: removed {} stale attachment(s)",
                    list.name,
                    removed.len()
                );
                for a in &removed {
                    println!("  {} {}", a.container_id, a.ifname);
                }
            }
            res?;
        }
        Cmd::Status { network, .. } => {
            let list = o.load(network)?;
            o.cni().status_network_list(&list)?;
            let asked = cni::version::compare(&list.cni_version, "1.1.0")
                .map(|c| c.is_ge())
                .unwrap_or(false);
            if o.json {
                print_json(&json!({"ready": true, "asked": asked}));
            } else if asked {
                println!("network {:?} is ready", list.name);
            } else {
                println!(
                    "network {:?} is taken as ready: it is at CNI {}, STATUS needs 1.1.0",
                    list.name, list.cni_version
                );
            }
        }
        Cmd::Netns(cmd) => netns(cmd, o.json)?,
        Cmd::Trace(a) => views::trace(o, a)?,
        Cmd::Path(a) => views::path(o, a)?,
        Cmd::Node(NodeCmd::Show(a)) => views::show(o, a)?,
        Cmd::Node(cmd) => {
            let summary = match cmd {
                NodeCmd::Setup(a) => node::cli::run_setup(a),
                NodeCmd::Teardown(a) => node::cli::run_teardown(a),
                NodeCmd::InstallCni(a) => node::cli::run_install(a),
                NodeCmd::Show(_) => unreachable!("handled above"),
            }
            .map_err(runtime::Error::new)?;
            if o.json {
                print_json(&json!({ "summary": summary }));
            } else {
                println!("{summary}");
            }
        }
    }
    Ok(())
}

fn kernel_err(e: kernel::Error) -> Failure {
    runtime::Error::new(cni::Error::io(e.to_string()))
}

fn netns(cmd: &NetnsCmd, as_json: bool) -> Result<(), Failure> {
    match cmd {
        NetnsCmd::Add { name } => {
            let ns = kernel::Netns::add(name).map_err(kernel_err)?;
            if as_json {
                print_json(&json!({"name": name, "path": ns.path()}));
            } else {
                println!("{}", ns.path().display());
            }
        }
        NetnsCmd::Del { name } => kernel::Netns::delete(name).map_err(kernel_err)?,
        NetnsCmd::List => {
            let names = kernel::Netns::list().map_err(kernel_err)?;
            if as_json {
                print_json(&json!(names));
            } else {
                for n in names {
                    println!("{n}");
                }
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if cli.opts.json {
                let mut v = json!({
                    "code": e.code().number(),
                    "msg": e.cni.msg,
                    "error": summary::one_line(&e.to_string()),
                });
                if !e.cni.details.is_empty() {
                    v["details"] = e.cni.details.clone().into();
                }
                if let Some(p) = &e.plugin {
                    v["plugin"] = p.kind.clone().into();
                    v["command"] = p.op.command().into();
                }
                print_json(&v);
            }
            eprintln!("podwirectl: {}", summary::one_line(&e.to_string()));
            ExitCode::FAILURE
        }
    }
}
