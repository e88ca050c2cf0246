//! podwirectl: cnitool's job on podwire's runtime library. Adds, checks, deletes, GCs and asks
//! the status of a network for a network namespace, reading cnitool's environment
//! (NETCONFPATH, CNI_PATH, CNI_ARGS, CAP_ARGS, CNI_IFNAME) or the matching flags; and makes
//! pod-like namespaces without `ip`.

mod cmd;
mod ids;
mod summary;

use clap::{Parser, Subcommand};
use serde_json::{json, Value};
use std::process::ExitCode;

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

#[derive(Subcommand)]
enum Cmd {
    /// Add the network's interface to the namespace and print the result.
    #[command(after_help = "Example:\n  podwirectl add mynet pod1 --container-id web-1 -i eth0")]
    Add(cmd::plugin::Attachment),
    /// Check the attachment is as the cached result says.
    #[command(after_help = "Example:\n  podwirectl check mynet pod1 --container-id web-1")]
    Check(cmd::plugin::Attachment),
    /// Delete the network's interface from the namespace.
    #[command(after_help = "Example:\n  podwirectl del mynet pod1 --container-id web-1")]
    Del(cmd::plugin::Attachment),
    /// Delete cached attachments of the network not listed with --valid, then GC each plugin.
    #[command(
        after_help = "Example (keep web-1's eth0 and db-1's net1, remove the rest):\n  \
                            podwirectl gc mynet --valid web-1 --valid db-1/net1"
    )]
    Gc(cmd::gc::GcArgs),
    /// Ask each plugin whether it is ready for ADDs (CNI 1.1.0 lists).
    #[command(after_help = "Example:\n  podwirectl status mynet")]
    Status(cmd::plugin::StatusArgs),
    /// The last traced operations on a container: each step, when, how long, what it did.
    #[command(after_help = "Example:\n  podwirectl trace 3f2a9c1b7d4e --last 2")]
    Trace(cmd::inspect::TraceArgs),
    /// The hops from a pod to an address or another pod, asked of the kernel.
    #[command(after_help = "Examples:\n  \
        podwirectl path 3f2a9c1b7d4e 10.244.1.7\n  \
        podwirectl path 10.244.1.5 1.1.1.1   # no packet is sent\n  \
        podwirectl path 10.244.1.5 10.244.2.7 --port 80/tcp   # and which policies allow it")]
    Path(cmd::inspect::PathArgs),
    /// Packets NetworkPolicy dropped on this node, per pod and direction (no policy allowed
    /// them), with the policies isolating each pod.
    #[command(after_help = "Example:\n  podwirectl drops")]
    Drops(cmd::inspect::DropsArgs),
    /// Named network namespaces under /run/netns, without `ip`.
    #[command(subcommand, after_help = "Example:\n  podwirectl netns add pod1")]
    Netns(cmd::netns::NetnsCmd),
    /// Set this node up for podwire (bridge, forwarding, nftables, conflist), run its agent, or undo it.
    #[command(
        subcommand,
        after_help = "Example:\n  podwirectl node setup --pod-cidr 10.244.1.0/24 --cluster-cidr 10.244.0.0/16"
    )]
    Node(cmd::node::NodeCmd),
}

pub(crate) type Failure = runtime::Error;

pub(crate) fn usage_error(msg: String) -> Failure {
    runtime::Error::new(cni::Error::invalid_env(msg))
}

pub(crate) fn print_json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).expect("JSON always serialises")
    );
}

fn run(cli: &Cli) -> Result<(), Failure> {
    let as_json = cli.json;
    match &cli.cmd {
        Cmd::Add(t) => cmd::plugin::add(t, as_json),
        Cmd::Check(t) => cmd::plugin::check(t, as_json),
        Cmd::Del(t) => cmd::plugin::del(t, as_json),
        Cmd::Gc(a) => cmd::gc::gc(a, as_json),
        Cmd::Status(a) => cmd::plugin::status(a, as_json),
        Cmd::Netns(c) => cmd::netns::run(c, as_json),
        Cmd::Trace(a) => cmd::inspect::trace(a, as_json),
        Cmd::Path(a) => cmd::inspect::path(a, as_json),
        Cmd::Drops(a) => cmd::inspect::drops(a, as_json),
        Cmd::Node(c) => cmd::node::run(c, as_json),
    }
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
