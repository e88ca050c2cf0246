//! Running a plugin binary the way a runtime does: `CNI_*` variables, config on stdin, inside the
//! node's netns (entered in the child before exec), optionally SIGKILLed after a delay.

use kernel::Netns;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One invocation. `env` replaces the whole environment (nothing of ours leaks in).
#[derive(Debug, Clone, Default)]
pub struct Call {
    pub env: Vec<(String, String)>,
    pub stdin: Vec<u8>,
}

impl Call {
    /// ADD/DEL/CHECK for `container` on `eth0`.
    pub fn attachment(command: &str, container: &str, netns: &str, stdin: &[u8]) -> Call {
        Call {
            env: vec![
                ("CNI_COMMAND".into(), command.into()),
                ("CNI_CONTAINERID".into(), container.into()),
                ("CNI_NETNS".into(), netns.into()),
                ("CNI_IFNAME".into(), "eth0".into()),
                ("CNI_PATH".into(), "/nonexistent".into()),
            ],
            stdin: stdin.to_vec(),
        }
    }

    /// Sets (or with `None` removes) one variable.
    pub fn var(mut self, key: &str, value: Option<&str>) -> Call {
        self.env.retain(|(k, _)| k != key);
        if let Some(v) = value {
            self.env.push((key.into(), v.into()));
        }
        self
    }
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn killed(&self) -> bool {
        self.signal == Some(libc::SIGKILL)
    }
}

/// Runs `bin` inside `node` (or where we are, with `None`); with `kill_after`, SIGKILLs it then if
/// it is still running.
pub fn run(bin: &Path, node: Option<&Netns>, call: &Call, kill_after: Option<Duration>) -> Outcome {
    run_with_args(bin, &[], node, call, kill_after)
}

/// `run` with arguments (for a wrapper such as strace, whose last argument is the plugin).
pub fn run_with_args(
    bin: &Path,
    args: &[String],
    node: Option<&Netns>,
    call: &Call,
    kill_after: Option<Duration>,
) -> Outcome {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env_clear()
        .envs(call.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(ns) = node {
        let fd: RawFd = ns.as_fd().as_raw_fd();
        // SAFETY: only setns(2), async-signal-safe, between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = cmd.spawn().expect("spawn plugin");
    let mut stdin = child.stdin.take().unwrap();
    let input = call.stdin.clone();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let out_t = drain(Box::new(child.stdout.take().unwrap()));
    let err_t = drain(Box::new(child.stderr.take().unwrap()));
    // Poll rather than block so the kill is sent only to a child not yet reaped (no pid reuse).
    let deadline = kill_after.map(|d| Instant::now() + d);
    let status = loop {
        if deadline.is_none() {
            break child.wait().expect("wait for plugin");
        }
        if let Some(st) = child.try_wait().expect("wait for plugin") {
            break st;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill(); // SIGKILL
            break child.wait().expect("wait for plugin");
        }
        std::thread::sleep(Duration::from_micros(200));
    };
    let _ = writer.join();
    let (stdout, stderr) = (out_t.join().unwrap(), err_t.join().unwrap());
    Outcome {
        code: status.code(),
        signal: status.signal(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}
