//! `podwire-cri`: the few CRI calls kubelet makes to network a pod, against a private containerd
//! prepared in a directory, for the demo (scripts/demo.sh) and for poking at a run by hand.
//!
//! ```text
//! podwire-cri prepare  --dir D [--network N --bridge B --subnet CIDR --gateway IP]
//! podwire-cri wait     --dir D            # until CRI reports NetworkReady, then import images
//! podwire-cri runp     --dir D NAME       # RunPodSandbox → sandbox ID
//! podwire-cri inspectp --dir D ID         # PodSandboxStatus → JSON (state, ip, pid, netns)
//! podwire-cri run      --dir D POD_ID POD_NAME NAME IMAGE CMD...   # Create+StartContainer → ID
//! podwire-cri exec     --dir D CONTAINER_ID CMD...                 # ExecSync
//! podwire-cri stopp    --dir D ID         # StopPodSandbox
//! podwire-cri rmp      --dir D ID         # RemovePodSandbox
//! podwire-cri pods     --dir D            # ListPodSandbox
//! podwire-cri leftovers --dir D           # what of the network is left on the host (exit 1 if any)
//! podwire-cri teardown --dir D            # stop everything started for D and remove it
//! ```

use podwire_runtime_tests::conflist::Network;
use podwire_runtime_tests::containerd::{self, Layout};
use podwire_runtime_tests::cri::Cri;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

struct Args {
    dir: Option<PathBuf>,
    flags: Vec<(String, String)>,
    rest: Vec<String>,
}

fn parse(args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args {
        dir: None,
        flags: vec![],
        rest: vec![],
    };
    let mut it = args.peekable();
    while let Some(arg) = it.next() {
        // Flags come before the positional arguments; a command's own arguments are left alone.
        if a.rest.is_empty() && arg.starts_with("--") {
            let value = it.next().ok_or(format!("{arg} needs a value"))?;
            if arg == "--dir" {
                a.dir = Some(PathBuf::from(value));
            } else {
                a.flags.push((arg[2..].to_string(), value));
            }
        } else {
            a.rest.push(arg);
        }
    }
    Ok(a)
}

impl Args {
    fn flag(&self, name: &str, default: &str) -> String {
        self.flags
            .iter()
            .find(|(k, _)| k == name)
            .map_or(default.to_string(), |(_, v)| v.clone())
    }
    fn arg(&self, i: usize, what: &str) -> Result<&str, String> {
        self.rest
            .get(i)
            .map(String::as_str)
            .ok_or(format!("missing {what}"))
    }
}

fn main() -> ExitCode {
    let mut argv = std::env::args().skip(1);
    let Some(command) = argv.next() else {
        eprintln!("usage: podwire-cri COMMAND --dir DIR ... (see the source's header)");
        return ExitCode::from(2);
    };
    match parse(argv).and_then(|a| run(&command, &a)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("podwire-cri {command}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: &str, a: &Args) -> Result<ExitCode, String> {
    let layout = Layout::new(&a.dir.clone().ok_or("--dir is required")?);
    let log_dir = layout.pod_logs();
    let cri = || Cri::connect(&layout.socket());
    match command {
        "prepare" => {
            containerd::require_tools();
            let network = Network::new(
                &a.flag("network", "podwire-demo"),
                &a.flag("bridge", "pwdemo0"),
                &a.flag("subnet", "10.253.2.0/24"),
                &a.flag("gateway", "10.253.2.1"),
            );
            layout.prepare(&network);
            println!("{}", layout.config().display());
        }
        "wait" => {
            let pid: u32 = std::fs::read_to_string(layout.pid_file())
                .map_err(|e| format!("{}: {e}", layout.pid_file().display()))?
                .trim()
                .parse()
                .map_err(|e| format!("pid file: {e}"))?;
            layout.wait_ready(&mut || podwire_runtime_tests::cmd::alive(pid))?;
            layout.import_images()?;
        }
        "runp" => println!("{}", cri()?.run_pod(a.arg(0, "pod name")?, &log_dir)?),
        "inspectp" => {
            let s = cri()?.status(a.arg(0, "sandbox ID")?)?;
            let v = json!({"id": s.id, "name": s.name, "ready": s.ready, "ip": s.ip,
                           "pid": s.pid, "netns": s.netns});
            println!("{v}");
        }
        "run" => {
            let cmd: Vec<&str> = a.rest.iter().skip(4).map(String::as_str).collect();
            let id = cri()?.start_container(
                a.arg(0, "sandbox ID")?,
                a.arg(1, "pod name")?,
                &log_dir,
                a.arg(2, "container name")?,
                a.arg(3, "image")?,
                &cmd,
            )?;
            println!("{id}");
        }
        "exec" => {
            let cmd: Vec<&str> = a.rest.iter().skip(1).map(String::as_str).collect();
            let (code, out, err) = cri()?.exec_sync(a.arg(0, "container ID")?, &cmd)?;
            print!("{out}");
            eprint!("{err}");
            return Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)));
        }
        "stopp" => cri()?.stop_pod(a.arg(0, "sandbox ID")?)?,
        "rmp" => cri()?.remove_pod(a.arg(0, "sandbox ID")?)?,
        "pods" => {
            for (id, name) in cri()?.list_pods()? {
                println!("{id} {name}");
            }
        }
        "leftovers" => {
            let left = layout.leftovers();
            for l in &left {
                println!("{l}");
            }
            if !left.is_empty() {
                return Ok(ExitCode::FAILURE);
            }
        }
        "teardown" => layout.teardown(false),
        other => return Err(format!("unknown command {other:?}")),
    }
    Ok(ExitCode::SUCCESS)
}
