//! What setup did, so teardown undoes exactly that and nothing else: the conflist it wrote,
//! whether it created the bridge or only added addresses to an existing one, and the forwarding
//! values it changed (with the value before). Saved after every step that changes something, so a
//! setup that fails half-way can still be torn down.
//!
//! `<state_dir>/node.json`, guarded by `flock(<state_dir>/lock)` against a second setup (the
//! DaemonSet's loop and an admin's command) running at the same moment.

use crate::files;
use cni::{Error, Result};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

pub const STATE_FILE: &str = "node.json";
const FORMAT: u32 = 1;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub format: u32,
    /// The conflist we wrote (removed on teardown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflist: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<BridgeState>,
    /// sysctl key → its value before we set it to 1.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub forwarding: BTreeMap<String, String>,
    /// Our nftables table, "inet podwire-node", while it may exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nft_table: Option<String>,
    /// For people reading the file: what the last setup applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pod_cidrs: Vec<IpNet>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_cidrs: Vec<IpNet>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BridgeState {
    pub name: String,
    /// We created it: teardown deletes the link. Otherwise only our addresses go.
    pub created: bool,
    /// Addresses we added (gateways).
    #[serde(default)]
    pub addresses: Vec<IpNet>,
}

impl State {
    pub fn is_empty(&self) -> bool {
        self.conflist.is_none()
            && self.bridge.is_none()
            && self.forwarding.is_empty()
            && self.nft_table.is_none()
    }
}

/// The state file of one state directory, held under its lock.
pub struct Store {
    dir: PathBuf,
    _lock: File,
}

impl Store {
    /// Takes the directory's lock (blocking), creating the directory (0700) if needed.
    pub fn lock(dir: &Path) -> Result<Store> {
        let io =
            |what: &str, e: std::io::Error| Error::io(format!("{what} {}: {e}", dir.display()));
        fs::create_dir_all(dir).map_err(|e| io("create state directory", e))?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))
            .map_err(|e| io("open the lock in", e))?;
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(io("lock", std::io::Error::last_os_error()));
        }
        Ok(Store {
            dir: dir.to_path_buf(),
            _lock: lock,
        })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    /// The saved state; empty when there is none.
    pub fn load(&self) -> Result<State> {
        let path = self.path();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::default()),
            Err(e) => return Err(Error::io(format!("read {}: {e}", path.display()))),
        };
        let state: State = serde_json::from_slice(&bytes).map_err(|e| {
            Error::decode(format!(
                "{} is not podwire node state ({e}); move it away to start over",
                path.display()
            ))
        })?;
        if state.format != FORMAT {
            return Err(Error::decode(format!(
                "{} has format {}, this podwire reads {FORMAT}",
                path.display(),
                state.format
            )));
        }
        Ok(state)
    }

    /// Saves (atomically, only when different); an empty state removes the file.
    pub fn save(&self, state: &State) -> Result<()> {
        if state.is_empty() {
            return files::remove(&self.path()).map(drop);
        }
        let mut s = state.clone();
        s.format = FORMAT;
        let mut bytes = serde_json::to_vec_pretty(&s).expect("JSON always serialises");
        bytes.push(b'\n');
        files::write_atomic(&self.path(), &bytes, 0o644).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_empty_removes_the_file() {
        let dir = std::env::temp_dir().join(format!("podwire-node-state-{}", std::process::id()));
        let store = Store::lock(&dir).unwrap();
        assert_eq!(store.load().unwrap(), State::default());
        let mut s = State {
            conflist: Some("/etc/cni/net.d/10-podwire.conflist".into()),
            bridge: Some(BridgeState {
                name: "cni0".into(),
                created: true,
                addresses: vec!["10.244.1.1/24".parse().unwrap()],
            }),
            ..Default::default()
        };
        s.forwarding
            .insert("net/ipv4/ip_forward".into(), "0".into());
        store.save(&s).unwrap();
        s.format = FORMAT;
        assert_eq!(store.load().unwrap(), s);
        let text = fs::read_to_string(store.path()).unwrap();
        assert!(text.contains("\"created\": true"), "{text}");
        store.save(&State::default()).unwrap();
        assert!(!store.path().exists());
        fs::write(store.path(), b"{").unwrap();
        assert!(store.load().unwrap_err().msg.contains("move it away"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
