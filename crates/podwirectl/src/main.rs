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
                  SHA-512) unless --container-id is given.\n\n\
                  Example:\n  podwirectl netns add pod1 && podwirectl add mynet pod1"
)]
struct Cli {
    /// Print results (and errors) as JSON on stdout.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

/// Where the network configs and the plugins are, and how long a plugin may run.
#[derive(ClapArgs)]
struct Plugins {
    /// Directory of network configs.
    #[arg(long, env = "NETCONFPATH", default_value = "/etc/cni/net.d")]
    netconfpath: PathBuf,
    /// Plugin directories, ':'-separated.
    #[arg(long, env = "CNI_PATH", default_value = "/opt/cni/bin")]
    cni_path: String,
    /// Kill a plugin that runs longer than this many seconds (0: never).
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

/// The result cache (ADD writes it; CHECK, DEL and GC read it).
#[derive(ClapArgs)]
struct Cache {
    /// Result cache directory (results are kept in <dir>/results).
    #[arg(long, env = "CNI_CACHE_DIR", default_value = runtime::cache::DEFAULT_DIR)]
    cache_dir: PathBuf,
}

/// add, check, del: one attachment of a network to a namespace.
#[derive(ClapArgs)]
struct Attachment {
    /// The network's name (its "name" in a config under NETCONFPATH).
    network: String,
    /// The namespace: a path such as /run/netns/pod1, or just pod1 for /run/netns/pod1.
    netns: String,
    /// Interface name inside the namespace.
    #[arg(short, long, env = "CNI_IFNAME", default_value = "eth0")]
    ifname: String,
    /// Container ID (default: derived from the netns path, as cnitool does).
    #[arg(long)]
    container_id: Option<String>,
    /// Extra arguments for the plugins: KEY=VALUE;KEY2=VALUE2.
    #[arg(long, env = "CNI_ARGS", default_value = "")]
    cni_args: String,
    /// Capability arguments as a JSON object, e.g. '{"portMappings":[...]}'.
    #[arg(long, env = "CAP_ARGS", default_value = "")]
    cap_args: String,
    #[command(flatten)]
    plugins: Plugins,
    #[command(flatten)]
    cache: Cache,
}

#[derive(Subcommand)]
enum Cmd {
    /// Add the network's interface to the namespace and print the result.
    #[command(after_help = "Example:\n  podwirectl add mynet pod1 --container-id web-1 -i eth0")]
    Add(Attachment),
    /// Check the attachment is as the cached result says.
    #[command(after_help = "Example:\n  podwirectl check mynet pod1 --container-id web-1")]
    Check(Attachment),
    /// Delete the network's interface from the namespace.
    #[command(after_help = "Example:\n  podwirectl del mynet pod1 --container-id web-1")]
    Del(Attachment),
    /// Delete cached attachments of the network not listed with --valid, then GC each plugin.
    #[command(
        after_help = "Example (keep web-1's eth0 and db-1's net1, remove the rest):\n  \
                            podwirectl gc mynet --valid web-1 --valid db-1/net1"
    )]
    Gc {
        network: String,
        /// Ignored; accepted for cnitool's argument order.
        netns: Option<String>,
        /// An attachment to keep: CONTAINER_ID or CONTAINER_ID/IFNAME (repeatable). With none,
        /// every cached attachment of the network is stale, as with cnitool's gc.
        #[arg(long = "valid", value_name = "CONTAINER_ID[/IFNAME]")]
        valid: Vec<String>,
        /// The interface of a --valid without /IFNAME.
        #[arg(short, long, env = "CNI_IFNAME", default_value = "eth0")]
        ifname: String,
        #[command(flatten)]
        plugins: Plugins,
        #[command(flatten)]
        cache: Cache,
    },
    /// Ask each plugin whether it is ready for ADDs (CNI 1.1.0 lists).
    #[command(after_help = "Example:\n  podwirectl status mynet")]
    Status {
        network: String,
        /// Ignored; accepted for cnitool's argument order.
        netns: Option<String>,
        #[command(flatten)]
        plugins: Plugins,
    },
    /// The last traced operations on a container: each step, when, how long, what it did.
    #[command(after_help = "Example:\n  podwirectl trace 3f2a9c1b7d4e --last 2")]
    Trace(views::TraceArgs),
    /// The hops from a pod to an address or another pod, asked of the kernel.
    #[command(after_help = "Examples:\n  \
        podwirectl path 3f2a9c1b7d4e 10.244.1.7\n  \
        podwirectl path 10.244.1.5 1.1.1.1   # no packet is sent")]
    Path(views::PathArgs),
    /// Named network namespaces under /run/netns, without `ip`.
    #[command(subcommand, after_help = "Example:\n  podwirectl netns add pod1")]
    Netns(NetnsCmd),
    /// Set this node up for podwire (bridge, forwarding, nftables, conflist), or undo it.
    #[command(
        subcommand,
        after_help = "Example:\n  podwirectl node setup --pod-cidr 10.244.1.0/24 --cluster-cidr 10.244.0.0/16"
    )]
    Node(NodeCmd),
}

#[derive(Subcommand)]
enum NodeCmd {
    /// From the node's podCIDR to a conflist, a bridge, forwarding and masquerade.
    #[command(after_help = "Examples:\n  \
        podwirectl node setup --pod-cidr 10.244.1.0/24 --cluster-cidr 10.244.0.0/16\n  \
        podwirectl node setup --from-kubernetes --watch --cluster-cidr 10.244.0.0/16")]
    Setup(Box<node::cli::SetupArgs>),
    /// Remove exactly what setup created.
    #[command(after_help = "Examples:\n  \
        podwirectl node teardown\n  \
        podwirectl node teardown --bridge pw0 --conf-dir /etc/cni/net.d   # refused unless setup made these")]
    Teardown(node::cli::TeardownArgs),
    /// Copy the podwire plugin binaries into the CNI bin directory (or --remove them).
    #[command(after_help = "Examples:\n  \
        podwirectl node install-cni --from ./target/release --to /opt/cni/bin\n  \
        podwirectl node install-cni --remove")]
    InstallCni(node::cli::InstallArgs),
    /// What podwire built on this node: bridges, pods, IPAM use, routes out, rules, problems.
    #[command(after_help = "Examples:\n  \
        podwirectl node show\n  \
        podwirectl node show --network k8s-pod-network --svg node.svg")]
    Show(views::ShowArgs),
}

#[derive(Subcommand)]
enum NetnsCmd {
    /// Create /run/netns/NAME.
    #[command(
        after_help = "Example:\n  podwirectl netns add pod1   # then: podwirectl add mynet pod1"
    )]
    Add { name: String },
    /// Delete /run/netns/NAME.
    #[command(after_help = "Example:\n  podwirectl netns del pod1")]
    Del { name: String },
    /// List the names under /run/netns.
    #[command(after_help = "Example:\n  podwirectl netns list --json")]
    List,
}

type Failure = runtime::Error;

fn usage_error(msg: String) -> Failure {
    runtime::Error::new(cni::Error::invalid_env(msg))
}

impl Plugins {
    fn cni(&self, cache: Option<&Cache>) -> CniConfig {
        let path = std::env::split_paths(&self.cni_path)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        let cni = CniConfig::new(path);
        match cache {
            Some(c) => cni.with_cache_dir(&c.cache_dir),
            None => cni,
        }
        .with_exec(Exec {
            timeout: (self.timeout > 0).then(|| Duration::from_secs(self.timeout)),
            ..Exec::default()
        })
    }

    fn load(&self, network: &str) -> Result<NetworkConfigList, Failure> {
        runtime::load_network(&self.netconfpath, network)
    }
}

impl Attachment {
    fn cni(&self) -> CniConfig {
        self.plugins.cni(Some(&self.cache))
    }

    fn runtime_conf(&self) -> Result<RuntimeConf, Failure> {
        let cwd = std::env::current_dir()
            .map_err(|e| usage_error(format!("cannot read the current directory: {e}")))?;
        let netns = ids::netns_path(&self.netns, &cwd, Path::new(kernel::netns::NETNS_RUN_DIR))
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
    let as_json = cli.json;
    match &cli.cmd {
        Cmd::Add(t) => {
            let list = t.plugins.load(&t.network)?;
            let rt = t.runtime_conf()?;
            let mut runs = Vec::new();
            // A failure stays one line (it names the plugin); the timings are for success.
            let result = t.cni().add_network_list_timed(&list, &rt, &mut runs)?;
            if as_json {
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
            let list = t.plugins.load(&t.network)?;
            let rt = t.runtime_conf()?;
            t.cni().check_network_list(&list, &rt)?;
            if !as_json {
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
            let list = t.plugins.load(&t.network)?;
            let rt = t.runtime_conf()?;
            let mut runs = Vec::new();
            t.cni().del_network_list_timed(&list, &rt, &mut runs)?;
            if !as_json {
                println!(
                    "deleted network {:?} as {} from {} (container {})",
                    list.name, rt.ifname, rt.netns, rt.container_id
                );
                print!("{}", summary::plugin_runs(&runs));
            }
        }
        Cmd::Gc {
            network,
            valid,
            ifname,
            plugins,
            cache,
            ..
        } => {
            let list = plugins.load(network)?;
            let cni = plugins.cni(Some(cache));
            let valid = parse_valid(valid, ifname);
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
            let res = cni
                .gc_network_list(&list, (!valid.is_empty()).then_some(&valid[..]))
                .result;
            let removed: Vec<_> = candidates
                .iter()
                .filter(|a| {
                    cni.cache
                        .file_path(&a.network_name, &a.container_id, &a.ifname)
                        .map(|p| !p.exists())
                        .unwrap_or(false)
                })
                .collect();
            if as_json {
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
        Cmd::Status {
            network, plugins, ..
        } => {
            let list = plugins.load(network)?;
            plugins.cni(None).status_network_list(&list)?;
            let asked = cni::version::compare(&list.cni_version, "1.1.0")
                .map(|c| c.is_ge())
                .unwrap_or(false);
            if as_json {
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
        Cmd::Netns(cmd) => netns(cmd, as_json)?,
        Cmd::Trace(a) => views::trace(a, as_json)?,
        Cmd::Path(a) => views::path(a, as_json)?,
        Cmd::Node(NodeCmd::Show(a)) => views::show(a, as_json)?,
        Cmd::Node(cmd) => {
            let summary = match cmd {
                NodeCmd::Setup(a) => node::cli::run_setup(a),
                NodeCmd::Teardown(a) => node::cli::run_teardown(a),
                NodeCmd::InstallCni(a) => node::cli::run_install(a),
                NodeCmd::Show(_) => unreachable!("handled above"),
            }
            .map_err(runtime::Error::new)?;
            if as_json {
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

/// clap's own usage errors in one line, like every other podwirectl error (help and --version
/// print as usual).
fn parse_args() -> Result<Cli, ExitCode> {
    Cli::try_parse().map_err(|e| {
        use clap::error::ErrorKind;
        if matches!(
            e.kind(),
            ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        ) {
            e.exit();
        }
        // The first paragraph: "error: ..." and, for missing arguments, the lines naming them.
        let text = e.render().to_string();
        let first: Vec<&str> = text
            .lines()
            .take_while(|l| !l.trim().is_empty())
            .map(str::trim)
            .collect();
        let msg = first.join(" ");
        let msg = msg.strip_prefix("error: ").unwrap_or(&msg);
        let hint = match e.kind() {
            ErrorKind::UnknownArgument => {
                "each subcommand takes its own options, after it: see its --help"
            }
            _ => "see --help",
        };
        eprintln!("podwirectl: {msg} ({hint})");
        ExitCode::from(2)
    })
}

fn main() -> ExitCode {
    let cli = match parse_args() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if cli.json {
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
