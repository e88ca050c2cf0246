//! `add`, `check`, `del`, `status`: a network list run for one attachment (or asked whether it
//! is ready), through the runtime library; this takes the flags and prints.

use crate::{ids, print_json, summary, usage_error, Failure};
use clap::Args as ClapArgs;
use runtime::{CniConfig, Exec, NetworkConfigList, RuntimeConf};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the network configs and the plugins are, and how long a plugin may run.
#[derive(ClapArgs)]
pub struct Plugins {
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
pub struct Cache {
    /// Result cache directory (results are kept in <dir>/results).
    #[arg(long, env = "CNI_CACHE_DIR", default_value = runtime::cache::DEFAULT_DIR)]
    pub cache_dir: PathBuf,
}

/// add, check, del: one attachment of a network to a namespace.
#[derive(ClapArgs)]
pub struct Attachment {
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

/// `status`'s arguments.
#[derive(ClapArgs)]
pub struct StatusArgs {
    network: String,
    /// Ignored; accepted for cnitool's argument order.
    netns: Option<String>,
    #[command(flatten)]
    plugins: Plugins,
}

impl Plugins {
    pub fn cni(&self, cache: Option<&Cache>) -> CniConfig {
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

    pub fn load(&self, network: &str) -> Result<NetworkConfigList, Failure> {
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

pub fn add(t: &Attachment, as_json: bool) -> Result<(), Failure> {
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
    Ok(())
}

pub fn check(t: &Attachment, as_json: bool) -> Result<(), Failure> {
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
    Ok(())
}

pub fn del(t: &Attachment, as_json: bool) -> Result<(), Failure> {
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
    Ok(())
}

pub fn status(a: &StatusArgs, as_json: bool) -> Result<(), Failure> {
    let list = a.plugins.load(&a.network)?;
    a.plugins.cni(None).status_network_list(&list)?;
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
    Ok(())
}
