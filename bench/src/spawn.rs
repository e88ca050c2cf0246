//! Running one plugin process and timing it: spawn → exit, with its peak RSS from `wait4`.
//!
//! Both come from a tiny static launcher (bench/spawner/spawn.c) that forks and execs the plugin:
//! a child's `ru_maxrss` includes the high-water mark of the process it was forked from, so a
//! plugin launched straight from this (larger) process would never show less than the bench's own
//! RSS. The launcher's fork → wait4 time is the sample's time.
//!
//! The plugin's stdin is a pipe filled and closed *before* the clock starts, so no harness
//! write is timed. The child inherits the calling thread's network namespace: the bench's
//! thread sits in the throwaway node netns for the whole run (see `scene`), which lets std
//! use `posix_spawn` (a vfork) instead of fork + `pre_exec(setns)` — same isolation, less
//! harness work inside the timed region, and no `ip netns exec` (≈4 ms of mount work).

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A finished plugin run.
#[derive(Debug, Clone)]
pub struct Finished {
    pub elapsed: Duration,
    /// `ru_maxrss` of the child (KiB): the largest of it and its reaped children (a
    /// delegated IPAM plugin), as `wait4` reports for RUSAGE_BOTH.
    pub max_rss_kib: u64,
    /// User + system CPU time of the child and the children it reaped (`wait4`'s rusage):
    /// the plugin's own work, including the kernel's work in its system calls, without the
    /// time it spent waiting (for the RTNL lock, for the CPU).
    pub cpu: Duration,
    /// Exit code, or 128 + signal.
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Finished {
    pub fn ok(&self) -> bool {
        self.code == 0
    }

    /// One line explaining a failure: exit code, stdout (CNI error JSON) and stderr.
    pub fn describe(&self) -> String {
        format!(
            "exit {}: stdout {} stderr {}",
            self.code,
            String::from_utf8_lossy(&self.stdout).trim(),
            String::from_utf8_lossy(&self.stderr).trim()
        )
    }
}

/// A started, not yet reaped, plugin process.
pub struct Running {
    child: Child,
    started: Instant,
}

/// Starts `program` with exactly `env` and `stdin`. The clock starts just before the spawn.
pub fn start(program: &Path, env: &[(String, String)], stdin: &[u8]) -> std::io::Result<Running> {
    let (reader, mut writer) = std::io::pipe()?;
    // Most CNI configs are far below the pipe's 64 KiB; a larger one (item 9's 5,000 mappings)
    // gets a pipe that holds it (root may exceed fs.pipe-max-size): the write never blocks.
    if stdin.len() > 64 * 1024 {
        // SAFETY: fcntl on a pipe we own, with an integer argument.
        let r = unsafe { libc::fcntl(writer.as_raw_fd(), libc::F_SETPIPE_SZ, stdin.len() as i32) };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    writer.write_all(stdin)?;
    drop(writer);
    let mut cmd = Command::new(launcher());
    cmd.arg(program)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::from(reader))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let child = cmd.spawn()?;
    Ok(Running { child, started })
}

impl Running {
    /// Waits for the exit (stopping the clock there), then collects the output.
    pub fn finish(mut self) -> std::io::Result<Finished> {
        let pid = self.child.id() as libc::pid_t;
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value for the kernel to overwrite.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        loop {
            // SAFETY: plain syscall on our own child with valid out-pointers.
            let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
            if r == pid {
                break;
            }
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EINTR) {
                return Err(err);
            }
        }
        let elapsed = self.started.elapsed();
        let code = if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            128 + libc::WTERMSIG(status)
        };
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        if let Some(mut o) = self.child.stdout.take() {
            o.read_to_end(&mut stdout)?;
        }
        if let Some(mut e) = self.child.stderr.take() {
            e.read_to_end(&mut stderr)?;
        }
        let (max_rss_kib, ns, cpu_us) = take_launcher_report(&mut stderr).ok_or_else(|| {
            std::io::Error::other(format!("the launcher reported nothing (exit {code})"))
        })?;
        let _ = (elapsed, usage);
        Ok(Finished {
            elapsed: Duration::from_nanos(ns),
            max_rss_kib,
            cpu: Duration::from_micros(cpu_us),
            code,
            stdout,
            stderr,
        })
    }
}

const LAUNCHER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/spawn"));
const REPORT: &str = "\n@@pwbench ";

/// The launcher, written once per bench process next to its other temporary files.
fn launcher() -> &'static Path {
    static PATH: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        use std::os::unix::fs::PermissionsExt;
        let p = std::env::temp_dir().join(format!("podwire-bench-spawn-{}", std::process::id()));
        std::fs::write(&p, LAUNCHER).expect("write the bench's launcher");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
            .expect("chmod launcher");
        p
    })
}

/// Removes the launcher's trailer from stderr and returns (peak RSS KiB, wall ns, CPU µs).
fn take_launcher_report(stderr: &mut Vec<u8>) -> Option<(u64, u64, u64)> {
    let text = String::from_utf8_lossy(stderr).into_owned();
    let at = text.rfind(REPORT)?;
    let mut rss = None;
    let mut ns = None;
    let mut cpu = None;
    for field in text[at + REPORT.len()..].split_whitespace() {
        match field.split_once('=') {
            Some(("maxrss_kib", v)) => rss = v.parse().ok(),
            Some(("ns", v)) => ns = v.parse().ok(),
            Some(("cpu_us", v)) => cpu = v.parse().ok(),
            _ => {}
        }
    }
    stderr.truncate(at);
    Some((rss?, ns?, cpu?))
}

/// Removes the launcher file (call once at the end of a run).
pub fn remove_launcher() {
    let p = std::env::temp_dir().join(format!("podwire-bench-spawn-{}", std::process::id()));
    let _ = std::fs::remove_file(p);
}

/// Starts and waits.
pub fn run(program: &Path, env: &[(String, String)], stdin: &[u8]) -> std::io::Result<Finished> {
    start(program, env, stdin)?.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_reaches_the_child_and_its_output_and_code_come_back() {
        // sh reads its script from stdin: the script running proves stdin arrived.
        let out = run(
            Path::new("/bin/sh"),
            &[],
            b"echo out; echo err >&2; exit 3\n",
        )
        .unwrap_or_else(|e| panic!("spawn /bin/sh: {e}"));
        assert_eq!(out.code, 3);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
        assert!(out.max_rss_kib > 0);
        assert!(out.elapsed > Duration::ZERO);
        // A shell that ran a script used some CPU, and no more than 1 s of it.
        assert!(out.cpu > Duration::ZERO && out.cpu < Duration::from_secs(1));
    }

    #[test]
    fn the_environment_is_exactly_what_was_given() {
        let out = run(
            Path::new("/usr/bin/env"),
            &[("CNI_COMMAND".into(), "ADD".into())],
            b"",
        )
        .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "CNI_COMMAND=ADD\n");
    }
}
