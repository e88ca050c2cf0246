//! Running one plugin binary (libcni's `invoke` package): find it in `CNI_PATH`, pass the
//! `CNI_*` variables and the config on stdin, collect stdout and stderr, retry while the binary
//! is busy being written (ETXTBSY), enforce a timeout, and turn a failure into an error that
//! carries the plugin's own code when it printed the spec's error JSON.

use crate::error::{Error, Op, Result};
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// The `CNI_*` variables of one invocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    pub command: String,
    pub container_id: String,
    pub netns: String,
    pub plugin_args: Vec<(String, String)>,
    pub ifname: String,
    /// `CNI_PATH`, joined with `:`.
    pub path: String,
}

impl Args {
    /// The variables, set on top of the caller's own environment (later values win, as in libcni).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let args = self
            .plugin_args
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(";");
        vec![
            ("CNI_COMMAND", self.command.clone()),
            ("CNI_CONTAINERID", self.container_id.clone()),
            ("CNI_NETNS", self.netns.clone()),
            ("CNI_ARGS", args),
            ("CNI_IFNAME", self.ifname.clone()),
            ("CNI_PATH", self.path.clone()),
        ]
    }
}

/// How plugins are run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exec {
    /// Kill the plugin (and everything in its process group) after this long. `None`: wait forever.
    pub timeout: Option<Duration>,
    /// How often to retry a spawn that fails with ETXTBSY (libcni: 5, one second apart).
    pub busy_retries: u32,
    pub busy_wait: Duration,
    /// Copy a successful plugin's stderr to ours, as libcni does.
    pub forward_stderr: bool,
}

impl Default for Exec {
    fn default() -> Self {
        Exec {
            timeout: None,
            busy_retries: 5,
            busy_wait: Duration::from_secs(1),
            forward_stderr: true,
        }
    }
}

/// What a plugin printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// After the plugin exits, how long to wait for its pipes to close (a daemonised child may
/// hold them open for ever).
const PIPE_GRACE: Duration = Duration::from_secs(2);

fn io_err(msg: String) -> Error {
    Error::new(cni::Error::io(msg))
}

/// libcni's `FindInPath`: the first regular file `<dir>/<plugin>` over `paths` (the same
/// lookup plugins use to find a delegate).
pub fn find_in_path(plugin: &str, paths: &[PathBuf]) -> Result<PathBuf> {
    cni::invoke::find_in_path(plugin, paths).map_err(Error::new)
}

/// Reads a pipe to its end into a shared buffer, so that what arrived is usable even if the
/// pipe never closes.
fn drain(mut pipe: impl Read + Send + 'static) -> (Arc<Mutex<Vec<u8>>>, mpsc::Receiver<()>) {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let sink = Arc::clone(&buf);
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => sink
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = tx.send(());
    });
    (buf, rx)
}

fn take(buf: &Arc<Mutex<Vec<u8>>>) -> Vec<u8> {
    std::mem::take(&mut *buf.lock().unwrap_or_else(|e| e.into_inner()))
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => status.to_string(),
    }
}

/// libcni's `pluginErr`: the plugin's error JSON if it printed one, else what it said on stderr.
fn plugin_error(status: ExitStatus, out: &Output) -> Error {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !stdout.trim().is_empty() {
        if let Some(e) = cni::Error::from_json(stdout.trim().as_bytes()) {
            let mut err = Error::new(e);
            err.reported = true;
            return err;
        }
        return io_err(format!(
            "plugin failed ({}) and its error output is not CNI error JSON: {:?}",
            describe(status),
            stdout.trim()
        ));
    }
    if stderr.trim().is_empty() {
        io_err(format!(
            "plugin failed with no error message ({})",
            describe(status)
        ))
    } else {
        io_err(format!(
            "plugin failed ({}): {}",
            describe(status),
            stderr.trim()
        ))
    }
}

impl Exec {
    fn spawn(&self, plugin: &Path, args: &Args) -> Result<std::process::Child> {
        let mut attempt = 0;
        loop {
            let mut cmd = Command::new(plugin);
            cmd.envs(args.env())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                // Its own process group, so a timeout kills what the plugin started too.
                .process_group(0);
            match cmd.spawn() {
                Ok(child) => return Ok(child),
                Err(e)
                    if e.raw_os_error() == Some(libc::ETXTBSY) && attempt < self.busy_retries =>
                {
                    attempt += 1;
                    std::thread::sleep(self.busy_wait);
                }
                Err(e) => return Err(io_err(format!("cannot execute {}: {e}", plugin.display()))),
            }
        }
    }

    /// Runs the plugin to completion. On success returns what it printed; on failure an error
    /// (with `reported` set when the plugin printed error JSON).
    pub fn run(&self, plugin: &Path, stdin: &[u8], args: &Args) -> Result<Output> {
        let started = Instant::now();
        let mut child = self.spawn(plugin, args)?;
        let pid = child.id() as libc::pid_t;
        let input = stdin.to_vec();
        let mut pipe_in = child.stdin.take().expect("stdin is piped");
        // A plugin need not read its stdin: a broken pipe here is not an error.
        std::thread::spawn(move || {
            let _ = pipe_in.write_all(&input);
        });
        let (out_buf, out_done) = drain(child.stdout.take().expect("stdout is piped"));
        let (err_buf, err_done) = drain(child.stderr.take().expect("stderr is piped"));

        // Wait in a thread so the timeout needs no polling; the thread reaps the child either
        // way, so a killed plugin never stays a zombie.
        let (tx, exited) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let status = child.wait();
            let _ = tx.send(());
            status
        });
        let timed_out = match self.timeout {
            Some(limit) => exited.recv_timeout(limit).is_err(),
            None => exited.recv().is_err(),
        };
        if timed_out {
            // SAFETY: kill(2) with a negative pid signals the plugin's own process group.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        let status = waiter
            .join()
            .map_err(|_| io_err("plugin wait thread panicked".into()))?
            .map_err(|e| io_err(format!("cannot wait for {}: {e}", plugin.display())))?;
        let _ = out_done.recv_timeout(PIPE_GRACE);
        let _ = err_done.recv_timeout(PIPE_GRACE);
        let out = Output {
            stdout: take(&out_buf),
            stderr: take(&err_buf),
        };
        if timed_out {
            return Err(io_err(format!(
                "timed out after {:.1?} and was killed{}",
                started.elapsed(),
                if out.stderr.is_empty() {
                    String::new()
                } else {
                    format!("; stderr: {}", String::from_utf8_lossy(&out.stderr).trim())
                }
            )));
        }
        if !status.success() {
            return Err(plugin_error(status, &out));
        }
        if self.forward_stderr && !out.stderr.is_empty() {
            let _ = std::io::stderr().write_all(&out.stderr);
        }
        Ok(out)
    }

    /// Asks a plugin which spec versions it speaks (libcni's `GetVersionInfo`). A plugin too old
    /// to know VERSION speaks 0.1.0.
    pub fn version_info(&self, plugin: &Path) -> Result<Vec<String>> {
        let args = Args {
            command: Op::Version.command().into(),
            // Dummy values that plugins built on an old skel insist on.
            netns: "dummy".into(),
            ifname: "dummy".into(),
            path: "dummy".into(),
            ..Default::default()
        };
        let stdin = format!(r#"{{"cniVersion":"{}"}}"#, cni::version::CURRENT);
        let out = match self.run(plugin, stdin.as_bytes(), &args) {
            Ok(out) => out,
            Err(e) if e.cni.msg == "unknown CNI_COMMAND: VERSION" => {
                return Ok(vec!["0.1.0".into()])
            }
            Err(e) => return Err(e),
        };
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
            Error::new(cni::Error::decode(format!(
                "cannot decode VERSION answer: {e}"
            )))
        })?;
        let versions = v
            .get("supportedVersions")
            .and_then(|s| s.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect::<Vec<_>>()
            });
        match versions {
            Some(list) => Ok(list),
            // 0.1.0/0.2.0 answers carry only `cniVersion`.
            None => Ok(v
                .get("cniVersion")
                .and_then(|c| c.as_str())
                .map(|c| vec![c.to_string()])
                .unwrap_or_else(|| vec!["0.1.0".into()])),
        }
    }
}
