//! The plugin entry point: reads the `CNI_*` environment and stdin, validates them with libcni's
//! rules, dispatches to a `Plugin`, and prints either the result (in the config's `cniVersion`)
//! or the spec's error JSON. Panics become error JSON too: a runtime never sees a backtrace.

use crate::args::CniArgs;
use crate::config::NetConf;
use crate::error::{plugin_code, Error, Result};
use crate::result::CniResult;
use crate::version::{self, Version};
use crate::{log, trace, validate};
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// The allocator every plugin binary installs (`#[global_allocator] static ALLOC:
/// cni::skel::PluginAllocator = cni::skel::PluginAllocator;`). musl's own malloc (the plugins
/// are built for musl) maps and unmaps pages for short-lived buffers: 80 mmap/munmap calls in
/// one bridge ADD, each a page fault and a TLB flush. dlmalloc keeps freed memory for reuse:
/// 12 calls, and the ADD 0.23–0.26 ms (12–14%) faster, A/B in one run on this VM. A plugin lives
/// for one operation, so holding on to freed memory costs nothing.
pub use dlmalloc::GlobalDlmalloc as PluginAllocator;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Version,
    Gc,
    Status,
}

impl Command {
    pub fn parse(s: &str) -> Result<Command> {
        Ok(match s {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "VERSION" => Command::Version,
            "GC" => Command::Gc,
            "STATUS" => Command::Status,
            "" => {
                return Err(Error::invalid_env(
                    "missing CNI_COMMAND (want ADD, DEL, CHECK, VERSION, GC or STATUS)",
                ))
            }
            other => {
                return Err(Error::invalid_env(format!(
                    "unknown CNI_COMMAND {other:?} (want ADD, DEL, CHECK, VERSION, GC or STATUS)"
                )))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Version => "VERSION",
            Command::Gc => "GC",
            Command::Status => "STATUS",
        }
    }

    /// Whether the command acts on one attachment (and so needs container ID and interface).
    fn is_per_attachment(self) -> bool {
        matches!(self, Command::Add | Command::Del | Command::Check)
    }

    /// The oldest config version in which the spec defines the command.
    fn min_version(self) -> Version {
        match self {
            Command::Check => Version(0, 4, 0),
            Command::Gc | Command::Status => Version(1, 1, 0),
            _ => Version(0, 1, 0),
        }
    }
}

/// Everything a plugin is called with.
#[derive(Debug, Clone)]
pub struct CmdArgs {
    pub command: Command,
    pub container_id: String,
    /// Empty for DEL when the runtime no longer has the netns, and for GC/STATUS.
    pub netns: String,
    pub ifname: String,
    pub args: CniArgs,
    pub path: Vec<PathBuf>,
    pub stdin: Vec<u8>,
    pub conf: NetConf,
}

pub trait Plugin {
    fn add(&self, a: &CmdArgs) -> Result<CniResult>;
    fn del(&self, a: &CmdArgs) -> Result<()>;
    fn check(&self, a: &CmdArgs) -> Result<()>;
    fn gc(&self, _a: &CmdArgs) -> Result<()> {
        Ok(())
    }
    fn status(&self, _a: &CmdArgs) -> Result<()> {
        Ok(())
    }
}

/// What one invocation printed and how it exits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub stdout: Vec<u8>,
    pub exit_code: i32,
}

/// Reads the process environment and stdin, runs the plugin, prints, and returns the exit code.
pub fn run(plugin: &dyn Plugin) -> std::process::ExitCode {
    let mut stdin = Vec::new();
    let read = std::io::stdin().read_to_end(&mut stdin);
    let outcome = match read {
        Ok(_) => dispatch(&|k| std::env::var(k).ok(), &stdin, plugin),
        Err(e) => failure("", &Error::io(format!("cannot read stdin: {e}"))),
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(&outcome.stdout);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
    std::process::ExitCode::from(u8::try_from(outcome.exit_code).unwrap_or(1))
}

/// The whole invocation as a pure function of environment and stdin (tests call this directly).
pub fn dispatch(
    env: &dyn Fn(&str) -> Option<String>,
    stdin: &[u8],
    plugin: &dyn Plugin,
) -> Outcome {
    // Until the config is read, errors are reported in the newest version.
    let reported_version = std::cell::RefCell::new(version::CURRENT.to_string());
    install_quiet_panic_hook();
    trace::begin();
    // Who the operation was for, once known: the trace line names it.
    let called: std::cell::RefCell<Option<Box<CmdArgs>>> = Default::default();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut parsing = trace::step("parse");
        let args = match parse(env, stdin, &reported_version)? {
            Request::Version(answer) => return Ok(Some(answer)),
            Request::Call(args) => *args,
        };
        log::init(log_target(&args));
        parsing.detail(format_args!(
            "{} bytes, cniVersion {}",
            stdin.len(),
            args.conf.cni_version
        ));
        parsing.end();
        if log::has_file() {
            *called.borrow_mut() = Some(Box::new(args.clone()));
        } else {
            // Nowhere to write the trace: stop recording, so no step formats its details.
            let _ = trace::finish();
        }
        log::debug(&format!(
            "{} container={} netns={} ifname={}",
            args.command.as_str(),
            args.container_id,
            args.netns,
            args.ifname
        ));
        let answer = match args.command {
            Command::Version => None, // answered in `parse`
            Command::Add => {
                let result = plugin.add(&args)?;
                let mut s = trace::step("result");
                let v = result.to_value(&args.conf.cni_version)?;
                s.detail(format_args!("cniVersion {}", args.conf.cni_version));
                Some(v)
            }
            Command::Del => plugin.del(&args).map(|_| None)?,
            Command::Check => plugin.check(&args).map(|_| None)?,
            Command::Gc => plugin.gc(&args).map(|_| None)?,
            Command::Status => plugin.status(&args).map(|_| None)?,
        };
        Ok::<_, Error>(answer)
    }));
    let version = reported_version.borrow().clone();
    let outcome = outcome_of(caught, &version);
    let recorded = trace::finish();
    if let (Some(t), Some(a)) = (recorded, called.borrow().as_deref()) {
        write_trace(&t, a, &outcome);
    }
    outcome.0
}

/// The JSON line of the operation, appended to the log file.
/// The config's log settings, and the prefix naming the operation on every line.
fn log_target(args: &CmdArgs) -> log::Target<'_> {
    let get = |k: &str| {
        args.conf
            .extra
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
    };
    log::Target {
        file: get("logFile"),
        level: get("logLevel"),
        prefix: format!(
            "{} {} {}/{}",
            args.conf.kind,
            args.command.as_str(),
            args.container_id,
            args.ifname
        ),
    }
}

fn write_trace(t: &trace::Trace, a: &CmdArgs, outcome: &(Outcome, Option<Error>)) {
    let total = t.started.elapsed();
    let record = trace::Record {
        plugin: &a.conf.kind,
        network: &a.conf.name,
        command: a.command.as_str(),
        container_id: &a.container_id,
        ifname: &a.ifname,
        netns: &a.netns,
        outcome: match &outcome.1 {
            None => Ok(()),
            Some(e) => Err((e.code.number(), e.msg.as_str())),
        },
    };
    log::write_line(&record.to_json(t, total).to_string());
}

type Caught = std::thread::Result<Result<Option<serde_json::Value>>>;

/// What to print and exit with, and the error if there was one.
fn outcome_of(caught: Caught, version: &str) -> (Outcome, Option<Error>) {
    match caught {
        Ok(Ok(Some(v))) => (
            Outcome {
                stdout: v.to_string().into_bytes(),
                exit_code: 0,
            },
            None,
        ),
        Ok(Ok(None)) => (
            Outcome {
                stdout: Vec::new(),
                exit_code: 0,
            },
            None,
        ),
        Ok(Err(e)) => {
            log::error(&e.to_string());
            (failure(version, &e), Some(e))
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            let e = Error::plugin(
                plugin_code::INTERNAL,
                "podwire hit an internal error (a bug: please report it)",
            )
            .with_details(format!(
                "{what}{}",
                PANIC_LOCATION.with(|l| l.borrow().clone())
            ));
            log::error(&e.to_string());
            (failure(version, &e), Some(e))
        }
    }
}

fn failure(version: &str, e: &Error) -> Outcome {
    let version = if version.is_empty() {
        version::CURRENT
    } else {
        version
    };
    Outcome {
        stdout: e.to_json(version).to_string().into_bytes(),
        exit_code: 1,
    }
}

thread_local! {
    static PANIC_LOCATION: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Replaces Rust's default panic printout (a backtrace hint on stderr) with a note of where it happened.
fn install_quiet_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let at = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            PANIC_LOCATION.with(|l| *l.borrow_mut() = at);
        }))
    });
}

/// VERSION needs no config: it is answered as soon as it is read.
enum Request {
    Version(serde_json::Value),
    Call(Box<CmdArgs>),
}

fn parse(
    env: &dyn Fn(&str) -> Option<String>,
    stdin: &[u8],
    reported: &std::cell::RefCell<String>,
) -> Result<Request> {
    let get = |k: &str| env(k).unwrap_or_default();
    let command = Command::parse(&get("CNI_COMMAND"))?;
    let stdin_version = supported_version_in(stdin);
    if command == Command::Version {
        // The runtime may send `{"cniVersion": ...}` or nothing at all.
        let asked = stdin_version.unwrap_or_else(|| version::CURRENT.to_string());
        return Ok(Request::Version(version::version_info(&asked)));
    }
    if let Some(v) = stdin_version {
        *reported.borrow_mut() = v;
    }
    let container_id = get("CNI_CONTAINERID");
    let netns = get("CNI_NETNS");
    let ifname = get("CNI_IFNAME");
    if command.is_per_attachment() {
        validate::container_id(&container_id)?;
        validate::interface_name(&ifname)?;
        if command != Command::Del && netns.is_empty() {
            return Err(Error::invalid_env(format!(
                "missing CNI_NETNS (required for {})",
                command.as_str()
            )));
        }
    }
    let args = CniArgs::parse(&get("CNI_ARGS"))?;
    let path = std::env::split_paths(&get("CNI_PATH"))
        .filter(|p| !p.as_os_str().is_empty())
        .collect();
    if stdin.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::decode("no network config on stdin"));
    }
    let conf = NetConf::parse(stdin)?;
    validate::network_name(&conf.name)?;
    let have = Version::parse(&conf.cni_version)?;
    if have < command.min_version() {
        return Err(Error::incompatible_version(format!(
            "config version {} does not allow {} (needs {}.{}.{} or later)",
            conf.cni_version,
            command.as_str(),
            command.min_version().0,
            command.min_version().1,
            command.min_version().2
        )));
    }
    if matches!(command, Command::Add | Command::Del) && !netns.is_empty() {
        refuse_own_netns(&netns)?;
    }
    Ok(Request::Call(Box::new(CmdArgs {
        command,
        container_id,
        netns,
        ifname,
        args,
        path,
        stdin: stdin.to_vec(),
        conf,
    })))
}

/// The config's `cniVersion`, if stdin is JSON and names one we speak (errors are answered in it).
fn supported_version_in(stdin: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(stdin).ok()?;
    let version = v.get("cniVersion")?.as_str()?;
    version::is_supported(version).then(|| version.to_string())
}

/// A plugin asked to set up the namespace it runs in would rewire the host: refuse.
fn refuse_own_netns(netns: &str) -> Result<()> {
    let (Ok(ours), Ok(theirs)) = (
        std::fs::metadata("/proc/self/ns/net"),
        std::fs::metadata(netns),
    ) else {
        // A missing netns is for the plugin to judge (DEL tolerates it; ADD fails there).
        return Ok(());
    };
    if ours.dev() == theirs.dev() && ours.ino() == theirs.ino() {
        return Err(Error::invalid_env(format!(
            "CNI_NETNS {netns:?} is the plugin's own network namespace; refusing to configure it"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};
    use std::collections::HashMap;

    struct Echo;
    impl Plugin for Echo {
        fn add(&self, a: &CmdArgs) -> Result<CniResult> {
            if a.conf.extra.contains_key("panic") {
                panic!("boom");
            }
            Ok(CniResult {
                ips: vec![crate::result::IpConfig {
                    address: "10.0.0.2/24".parse().unwrap(),
                    gateway: None,
                    interface: None,
                }],
                ..Default::default()
            })
        }
        fn del(&self, _: &CmdArgs) -> Result<()> {
            Ok(())
        }
        fn check(&self, _: &CmdArgs) -> Result<()> {
            Err(Error::plugin(120, "mismatch"))
        }
    }

    fn run_with(vars: &[(&str, &str)], stdin: &str) -> (i32, Value) {
        let env: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let out = dispatch(&|k| env.get(k).cloned(), stdin.as_bytes(), &Echo);
        let text = String::from_utf8(out.stdout).unwrap();
        (
            out.exit_code,
            if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap()
            },
        )
    }

    const CONF: &str = r#"{"cniVersion":"0.4.0","name":"n","type":"echo"}"#;

    fn add_env<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut v = vec![
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "c1"),
            ("CNI_NETNS", "/nonexistent/ns"),
            ("CNI_IFNAME", "eth0"),
        ];
        for (k, val) in extra {
            v.retain(|(kk, _)| kk != k);
            v.push((k, val));
        }
        v
    }

    #[test]
    fn version_lists_all_seven() {
        let (code, v) = run_with(&[("CNI_COMMAND", "VERSION")], "");
        assert_eq!(code, 0);
        assert_eq!(v["supportedVersions"].as_array().unwrap().len(), 7);
        let (_, v) = run_with(&[("CNI_COMMAND", "VERSION")], r#"{"cniVersion":"0.3.1"}"#);
        assert_eq!(v["cniVersion"], "0.3.1");
    }

    #[test]
    fn add_answers_in_the_configs_version() {
        let (code, v) = run_with(&add_env(&[]), CONF);
        assert_eq!(code, 0, "{v}");
        assert_eq!(v["cniVersion"], "0.4.0");
        assert_eq!(v["ips"][0]["version"], "4");
        let (_, v) = run_with(
            &add_env(&[]),
            r#"{"cniVersion":"0.2.0","name":"n","type":"echo"}"#,
        );
        assert_eq!(v["ip4"]["ip"], "10.0.0.2/24");
    }

    #[test]
    fn environment_errors_are_code_4_in_the_configs_version() {
        for (vars, what) in [
            (vec![("CNI_COMMAND", "")], "missing command"),
            (vec![("CNI_COMMAND", "FROB")], "unknown command"),
            (
                add_env(&[("CNI_IFNAME", "0123456789abcdef")]),
                "16-byte ifname",
            ),
            (add_env(&[("CNI_IFNAME", "")]), "missing ifname"),
            (
                add_env(&[("CNI_CONTAINERID", "a/b")]),
                "container id with /",
            ),
            (add_env(&[("CNI_CONTAINERID", "")]), "missing container id"),
            (add_env(&[("CNI_NETNS", "")]), "ADD without netns"),
            (add_env(&[("CNI_ARGS", "junk")]), "bad CNI_ARGS"),
        ] {
            let (code, v) = run_with(&vars, CONF);
            assert_eq!(code, 1, "{what}");
            assert_eq!(v["code"], 4, "{what}: {v}");
            assert!(!v["msg"].as_str().unwrap().is_empty());
        }
        let (_, v) = run_with(&add_env(&[("CNI_IFNAME", "")]), CONF);
        assert_eq!(v["cniVersion"], "0.4.0");
    }

    #[test]
    fn del_may_have_no_netns_but_gc_and_status_need_nothing() {
        assert_eq!(
            run_with(&add_env(&[("CNI_COMMAND", "DEL"), ("CNI_NETNS", "")]), CONF).0,
            0
        );
        let conf11 = r#"{"cniVersion":"1.1.0","name":"n","type":"echo"}"#;
        assert_eq!(run_with(&[("CNI_COMMAND", "GC")], conf11).0, 0);
        assert_eq!(run_with(&[("CNI_COMMAND", "STATUS")], conf11).0, 0);
    }

    #[test]
    fn config_errors_get_their_codes() {
        assert_eq!(run_with(&add_env(&[]), "{not json").1["code"], 6);
        assert_eq!(run_with(&add_env(&[]), "").1["code"], 6);
        assert_eq!(
            run_with(&add_env(&[]), r#"{"name":"n","type":"t"}"#).1["code"],
            1
        );
        assert_eq!(
            run_with(
                &add_env(&[]),
                r#"{"cniVersion":"1.0.0","name":"a/b","type":"t"}"#
            )
            .1["code"],
            7
        );
        // CHECK needs 0.4.0, GC and STATUS 1.1.0
        let old = r#"{"cniVersion":"0.3.1","name":"n","type":"echo"}"#;
        assert_eq!(
            run_with(&add_env(&[("CNI_COMMAND", "CHECK")]), old).1["code"],
            1
        );
        assert_eq!(run_with(&[("CNI_COMMAND", "GC")], CONF).1["code"], 1);
    }

    #[test]
    fn plugin_errors_pass_through() {
        let (code, v) = run_with(&add_env(&[("CNI_COMMAND", "CHECK")]), CONF);
        assert_eq!(code, 1);
        assert_eq!(
            v,
            json!({"cniVersion": "0.4.0", "code": 120, "msg": "mismatch"})
        );
    }

    #[test]
    fn a_panic_becomes_error_json() {
        let (code, v) = run_with(
            &add_env(&[]),
            r#"{"cniVersion":"1.0.0","name":"n","type":"echo","panic":1}"#,
        );
        assert_eq!(code, 1);
        assert_eq!(v["code"], plugin_code::INTERNAL);
        assert!(v["details"].as_str().unwrap().contains("boom"), "{v}");
    }

    #[test]
    fn refuses_own_netns() {
        let (_, v) = run_with(&add_env(&[("CNI_NETNS", "/proc/self/ns/net")]), CONF);
        assert_eq!(v["code"], 4);
        assert!(v["msg"].as_str().unwrap().contains("own network namespace"));
    }
}
