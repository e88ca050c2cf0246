//! Exec'ing another plugin the way libcni does (`pkg/invoke`): found in `CNI_PATH`, given the
//! `CNI_*` variables and the config on stdin, its stdout read as a result or as an error JSON.
//! Main plugins use it to delegate to an IPAM plugin.

use crate::error::{plugin_code, Error, Result};
use crate::result::CniResult;
use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Finds `kind` (a plugin type, never a path) in the given directories.
pub fn find_in_path(kind: &str, path: &[PathBuf]) -> Result<PathBuf> {
    if kind.is_empty() || kind.contains('/') || kind == "." || kind == ".." {
        return Err(Error::invalid_config(format!(
            "invalid plugin type {kind:?}"
        )));
    }
    if path.is_empty() {
        return Err(Error::invalid_env(format!(
            "cannot find plugin {kind:?}: CNI_PATH is empty"
        )));
    }
    path.iter()
        .map(|dir| dir.join(kind))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            let dirs: Vec<String> = path.iter().map(|p| p.display().to_string()).collect();
            // libcni's wording, which operators grep runtime logs for.
            Error::invalid_env(format!(
                "failed to find plugin {kind:?} in CNI_PATH {}",
                dirs.join(":")
            ))
        })
}

/// The `CNI_*` variables of one exec, as libcni sets them on top of the caller's environment.
/// The one place both sides (a plugin delegating to IPAM, the runtime library) set them.
pub struct Vars<'a> {
    pub command: &'a str,
    pub container_id: &'a str,
    pub netns: &'a str,
    pub ifname: &'a str,
    /// `CNI_ARGS`: `K=V;K=V`.
    pub args: &'a str,
    /// `CNI_PATH`, joined with `:`.
    pub path: &'a OsStr,
}

impl Vars<'_> {
    pub fn set_on(&self, cmd: &mut Command) {
        cmd.env("CNI_COMMAND", self.command)
            .env("CNI_CONTAINERID", self.container_id)
            .env("CNI_NETNS", self.netns)
            .env("CNI_IFNAME", self.ifname)
            .env("CNI_ARGS", self.args)
            .env("CNI_PATH", self.path);
    }
}

/// How a spawn that fails with ETXTBSY (the binary is being written, e.g. by an install) is
/// retried: libcni retries 5 times, a second apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusyRetry {
    pub retries: u32,
    pub wait: Duration,
}

/// Spawns the command built by `command` (built again for each attempt), retrying while the
/// binary is busy being written.
pub fn spawn(mut command: impl FnMut() -> Command, busy: BusyRetry) -> std::io::Result<Child> {
    let mut attempt = 0;
    loop {
        match command().spawn() {
            Err(e) if e.raw_os_error() == Some(ETXTBSY) && attempt < busy.retries => {
                attempt += 1;
                std::thread::sleep(busy.wait);
            }
            result => return result,
        }
    }
}

/// A delegate (IPAM) is retried sooner than libcni's second, as it runs inside a pod's ADD: five
/// times, 3 s in all.
const DELEGATE_BUSY: BusyRetry = BusyRetry {
    retries: 5,
    wait: Duration::from_millis(600),
};

/// `CNI_PATH` from its directories.
pub fn join_path(dirs: &[PathBuf]) -> Result<std::ffi::OsString> {
    std::env::join_paths(dirs).map_err(|e| Error::invalid_env(format!("bad CNI_PATH: {e}")))
}

/// Runs the plugin; returns its stdout on success, its error (named after the plugin) otherwise.
/// A binary that is being written (ETXTBSY) is retried, as libcni does.
pub fn exec(plugin: &Path, vars: &Vars, stdin: &[u8]) -> Result<Vec<u8>> {
    let name = plugin
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let spawned = spawn(
        || {
            let mut cmd = Command::new(plugin);
            vars.set_on(&mut cmd);
            cmd.stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            cmd
        },
        DELEGATE_BUSY,
    );
    let mut child = spawned.map_err(|e| {
        Error::io(format!(
            "cannot run plugin {name} ({}): {e}",
            plugin.display()
        ))
    })?;
    if let Some(mut input) = child.stdin.take() {
        // A plugin may exit without reading stdin: a broken pipe here is not our error.
        let _ = input.write_all(stdin);
    }
    let output = child
        .wait_with_output()
        .map_err(|e| Error::io(format!("waiting for plugin {name}: {e}")))?;
    if output.status.success() {
        return Ok(output.stdout);
    }
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
    Err(match Error::from_json(&output.stdout) {
        Some(mut e) => {
            e.msg = format!("plugin {name}: {}", e.msg);
            e
        }
        None => Error::plugin(
            plugin_code::DELEGATE,
            format!("plugin {name} failed ({})", output.status),
        )
        .with_details(if stderr.is_empty() {
            String::from_utf8_lossy(&output.stdout).into_owned()
        } else {
            stderr
        }),
    })
}

/// Runs the plugin and reads its stdout as a result.
pub fn exec_with_result(plugin: &Path, vars: &Vars, stdin: &[u8]) -> Result<CniResult> {
    let out = exec(plugin, vars, stdin)?;
    CniResult::parse(&out)
        .map_err(|e| Error::decode(format!("plugin {}: {}", plugin.display(), e.msg)))
}

/// ETXTBSY without a libc dependency: 26 on every Linux architecture.
const ETXTBSY: i32 = 26;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_in_path_refuses_paths_and_names_the_dirs() {
        let dirs = vec![
            PathBuf::from("/nonexistent-a"),
            PathBuf::from("/nonexistent-b"),
        ];
        assert_eq!(find_in_path("../sh", &dirs).unwrap_err().code.number(), 7);
        let e = find_in_path("host-local", &dirs).unwrap_err();
        assert!(e.msg.contains("/nonexistent-b"), "{e}");
        assert_eq!(find_in_path("x", &[]).unwrap_err().code.number(), 4);
        assert_eq!(
            find_in_path("sh", &[PathBuf::from("/bin")]).unwrap(),
            PathBuf::from("/bin/sh")
        );
    }

    #[test]
    fn a_binary_being_written_is_retried_until_it_is_closed() {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = std::env::temp_dir().join(format!("podwire-busy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bin = dir.join("plugin");
        let mut writer = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o755)
            .open(&bin)
            .unwrap();
        writer.write_all(b"#!/bin/sh\nexit 0\n").unwrap();
        let busy = BusyRetry {
            retries: 0,
            wait: Duration::from_millis(20),
        };
        let e = spawn(|| Command::new(&bin), busy).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(ETXTBSY), "open for writing: busy");
        let closer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(60));
            drop(writer);
        });
        let busy = BusyRetry {
            retries: 50,
            wait: Duration::from_millis(20),
        };
        let status = spawn(|| Command::new(&bin), busy).unwrap().wait().unwrap();
        closer.join().unwrap();
        assert!(status.success());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failing_plugin_without_error_json_is_a_delegate_error_with_stderr() {
        let vars = Vars {
            command: "ADD",
            container_id: "c",
            netns: "",
            ifname: "eth0",
            args: "",
            path: OsStr::new(""),
        };
        let e = exec(Path::new("/bin/false"), &vars, b"{}").unwrap_err();
        assert_eq!(e.code.number(), plugin_code::DELEGATE);
        assert!(e.msg.contains("false"));
    }
}
