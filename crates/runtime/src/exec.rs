//! Running one plugin binary (libcni's `invoke` package): find it in `CNI_PATH`, pass the
//! `CNI_*` variables and the config on stdin, collect stdout and stderr, retry while the binary
//! is busy being written (ETXTBSY), enforce a timeout, and turn a failure into an error that
//! carries the plugin's own code when it printed the spec's error JSON.

use crate::error::{Error, Op, Result};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
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
    /// `CNI_ARGS`: the pairs joined as `K=V;K=V`.
    fn cni_args(&self) -> String {
        cni::args::CniArgs::join(&self.plugin_args)
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

/// One running plugin, driven from the calling thread: its stdin fed, its stdout and stderr
/// read and its exit noticed in one poll(2) loop. No helper threads: a runtime execs a plugin
/// several times for every pod, and four thread spawns per exec cost as much as a small
/// plugin's whole run.
struct Session {
    child: Child,
    /// Readable when the child exits (Linux 5.3+); without it the loop polls on a short tick.
    pidfd: Option<OwnedFd>,
    stdin: Option<ChildStdin>,
    input: Vec<u8>,
    written: usize,
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    out: Output,
}

/// Without a pidfd, how often to look whether the child exited: while its pipes are open, and
/// once both closed (it is exiting, so look often).
const EXIT_TICK: Duration = Duration::from_millis(10);
const EXITING_TICK: Duration = Duration::from_millis(1);

fn set_nonblocking(fd: &impl AsRawFd) -> std::io::Result<()> {
    let fd = fd.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own, with no pointers.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: the syscall takes two integers and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    // SAFETY: a non-negative return is a descriptor nobody else owns.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Reads what a non-blocking pipe has now; `false` once it is closed (or broken).
fn read_available(pipe: &mut impl Read, into: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 8192];
    loop {
        match pipe.read(&mut chunk) {
            Ok(0) => return false,
            Ok(n) => into.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
}

fn poll_entry(fd: Option<RawFd>, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        // poll(2) skips negative descriptors.
        fd: fd.unwrap_or(-1),
        events,
        revents: 0,
    }
}

impl Session {
    fn new(mut child: Child, input: &[u8]) -> std::io::Result<Session> {
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        for fd in [stdin.as_raw_fd(), stdout.as_raw_fd(), stderr.as_raw_fd()] {
            if let Err(e) = set_nonblocking(&fd) {
                // Never leave the child running unwatched.
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        }
        Ok(Session {
            pidfd: pidfd_open(child.id()),
            child,
            // Nothing to write: close stdin at once so the plugin sees EOF.
            stdin: (!input.is_empty()).then_some(stdin),
            input: input.to_vec(),
            written: 0,
            stdout: Some(stdout),
            stderr: Some(stderr),
            out: Output::default(),
        })
    }

    /// Writes what the pipe takes now; closes stdin when all is written or the plugin stopped
    /// reading (a plugin need not read its stdin: a broken pipe is not an error).
    fn feed(&mut self) {
        let Some(pipe) = self.stdin.as_mut() else {
            return;
        };
        while self.written < self.input.len() {
            match pipe.write(&self.input[self.written..]) {
                Ok(n) => self.written += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => break,
            }
        }
        self.stdin = None;
    }

    /// Kills the plugin and everything it started (its own process group), and reaps it.
    fn kill_and_reap(&mut self) -> std::io::Result<ExitStatus> {
        // SAFETY: kill(2) with a negative pid signals the plugin's process group.
        unsafe {
            libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL);
        }
        self.child.wait()
    }

    /// Runs until the plugin exits and its pipes close, the timeout kills it, or its pipes stay
    /// open `PIPE_GRACE` after it exited (a daemonised child of the plugin holding them).
    /// Returns its status, what it printed and whether it timed out. The child is always reaped.
    fn finish(
        mut self,
        started: Instant,
        timeout: Option<Duration>,
    ) -> std::io::Result<(ExitStatus, Output, bool)> {
        let deadline = timeout.map(|t| started + t);
        let mut status: Option<ExitStatus> = None;
        let mut grace_until = None;
        let mut timed_out = false;
        loop {
            if status.is_none() {
                status = self.child.try_wait()?;
                if status.is_some() {
                    grace_until = Some(Instant::now() + PIPE_GRACE);
                    self.stdin = None;
                }
            }
            if status.is_some() && self.stdout.is_none() && self.stderr.is_none() {
                break;
            }
            let now = Instant::now();
            let limit = match (status, deadline, grace_until) {
                (None, Some(d), _) if now >= d => {
                    timed_out = true;
                    status = Some(self.kill_and_reap()?);
                    grace_until = Some(Instant::now() + PIPE_GRACE);
                    self.stdin = None;
                    continue;
                }
                (None, d, _) => d,
                (Some(_), _, Some(g)) if now >= g => break,
                (Some(_), _, g) => g,
            };
            let mut wait = limit.map(|l| l.saturating_duration_since(now));
            if status.is_none() && self.pidfd.is_none() {
                let tick = if self.stdout.is_none() && self.stderr.is_none() {
                    EXITING_TICK
                } else {
                    EXIT_TICK
                };
                wait = Some(wait.map_or(tick, |w| w.min(tick)));
            }
            let mut fds = [
                poll_entry(self.stdin.as_ref().map(|p| p.as_raw_fd()), libc::POLLOUT),
                poll_entry(self.stdout.as_ref().map(|p| p.as_raw_fd()), libc::POLLIN),
                poll_entry(self.stderr.as_ref().map(|p| p.as_raw_fd()), libc::POLLIN),
                poll_entry(
                    self.pidfd
                        .as_ref()
                        .filter(|_| status.is_none())
                        .map(|p| p.as_raw_fd()),
                    libc::POLLIN,
                ),
            ];
            // Round up, so the loop never spins on a sub-millisecond remainder.
            let ms = wait.map_or(-1, |w| {
                w.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
            });
            // SAFETY: `fds` is a valid array of pollfd for the duration of the call.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                if status.is_none() {
                    // Never leave the plugin running unwatched, nor unreaped.
                    let _ = self.kill_and_reap();
                }
                return Err(e);
            }
            if fds[0].revents != 0 {
                self.feed();
            }
            if fds[1].revents != 0 {
                if let Some(p) = self.stdout.as_mut() {
                    if !read_available(p, &mut self.out.stdout) {
                        self.stdout = None;
                    }
                }
            }
            if fds[2].revents != 0 {
                if let Some(p) = self.stderr.as_mut() {
                    if !read_available(p, &mut self.out.stderr) {
                        self.stderr = None;
                    }
                }
            }
        }
        let status = match status {
            Some(s) => s,
            None => self.child.wait()?,
        };
        Ok((status, self.out, timed_out))
    }
}

impl Exec {
    fn spawn(&self, plugin: &Path, args: &Args) -> Result<Child> {
        let cni_args = args.cni_args();
        let vars = cni::invoke::Vars {
            command: &args.command,
            container_id: &args.container_id,
            netns: &args.netns,
            ifname: &args.ifname,
            args: &cni_args,
            path: args.path.as_ref(),
        };
        let busy = cni::invoke::BusyRetry {
            retries: self.busy_retries,
            wait: self.busy_wait,
        };
        let command = || {
            let mut cmd = Command::new(plugin);
            vars.set_on(&mut cmd);
            cmd.stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                // Its own process group, so a timeout kills what the plugin started too.
                .process_group(0);
            cmd
        };
        cni::invoke::spawn(command, busy)
            .map_err(|e| io_err(format!("cannot execute {}: {e}", plugin.display())))
    }

    /// Runs the plugin to completion. On success returns what it printed; on failure an error
    /// (with `reported` set when the plugin printed error JSON).
    pub fn run(&self, plugin: &Path, stdin: &[u8], args: &Args) -> Result<Output> {
        let started = Instant::now();
        let child = self.spawn(plugin, args)?;
        let (status, out, timed_out) = Session::new(child, stdin)
            .and_then(|s| s.finish(started, self.timeout))
            .map_err(|e| io_err(format!("cannot run {}: {e}", plugin.display())))?;
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
