//! Exec'ing another plugin the way libcni does (`pkg/invoke`): found in `CNI_PATH`, given the
//! `CNI_*` variables and the config on stdin, its stdout read as a result or as an error JSON.
//! Main plugins use it to delegate to an IPAM plugin.

use crate::error::{plugin_code, Error, Result};
use crate::result::CniResult;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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

/// The environment of one call.
pub struct Call<'a> {
    pub command: &'a str,
    pub container_id: &'a str,
    pub netns: &'a str,
    pub ifname: &'a str,
    pub args: &'a str,
    pub path: &'a [PathBuf],
}

/// Runs the plugin; returns its stdout on success, its error (named after the plugin) otherwise.
/// A binary that is being written (ETXTBSY) is retried, as libcni does.
pub fn exec(plugin: &Path, call: &Call, stdin: &[u8]) -> Result<Vec<u8>> {
    let name = plugin
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let path = std::env::join_paths(call.path)
        .map_err(|e| Error::invalid_env(format!("bad CNI_PATH: {e}")))?;
    let mut attempt = 0;
    let output = loop {
        let spawned = Command::new(plugin)
            .env("CNI_COMMAND", call.command)
            .env("CNI_CONTAINERID", call.container_id)
            .env("CNI_NETNS", call.netns)
            .env("CNI_IFNAME", call.ifname)
            .env("CNI_ARGS", call.args)
            .env("CNI_PATH", &path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        match spawned {
            Err(e) if e.raw_os_error() == Some(libc_etxtbsy()) && attempt < 5 => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(200 * attempt));
            }
            Err(e) => {
                return Err(Error::io(format!(
                    "cannot run plugin {name} ({}): {e}",
                    plugin.display()
                )))
            }
            Ok(mut child) => {
                if let Some(mut input) = child.stdin.take() {
                    // A plugin may exit without reading stdin: a broken pipe here is not our error.
                    let _ = input.write_all(stdin);
                }
                break child
                    .wait_with_output()
                    .map_err(|e| Error::io(format!("waiting for plugin {name}: {e}")))?;
            }
        }
    };
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
pub fn exec_with_result(plugin: &Path, call: &Call, stdin: &[u8]) -> Result<CniResult> {
    let out = exec(plugin, call, stdin)?;
    CniResult::parse(&out)
        .map_err(|e| Error::decode(format!("plugin {}: {}", plugin.display(), e.msg)))
}

/// ETXTBSY without a libc dependency: 26 on every Linux architecture.
const fn libc_etxtbsy() -> i32 {
    26
}

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
    fn a_failing_plugin_without_error_json_is_a_delegate_error_with_stderr() {
        let call = Call {
            command: "ADD",
            container_id: "c",
            netns: "",
            ifname: "eth0",
            args: "",
            path: &[],
        };
        let e = exec(Path::new("/bin/false"), &call, b"{}").unwrap_err();
        assert_eq!(e.code.number(), plugin_code::DELEGATE);
        assert!(e.msg.contains("false"));
    }
}
