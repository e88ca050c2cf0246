//! `netns add|del|list`: named network namespaces under /run/netns, without `ip`.

use crate::{print_json, Failure};
use clap::Subcommand;
use serde_json::json;

#[derive(Subcommand)]
pub enum NetnsCmd {
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

pub fn run(cmd: &NetnsCmd, as_json: bool) -> Result<(), Failure> {
    match cmd {
        NetnsCmd::Add { name } => {
            let ns = kernel::Netns::add(name).map_err(cni::Error::from)?;
            if as_json {
                print_json(&json!({"name": name, "path": ns.path()}));
            } else {
                println!("{}", ns.path().display());
            }
        }
        NetnsCmd::Del { name } => kernel::Netns::delete(name).map_err(cni::Error::from)?,
        NetnsCmd::List => {
            let names = kernel::Netns::list().map_err(cni::Error::from)?;
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
