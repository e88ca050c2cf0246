//! IP forwarding for the families the node routes pods for. Only a value we changed is recorded
//! (with the value before), so teardown puts back exactly that.
//!
//! The sysctls are read under a configurable directory because a container sees the host's
//! /proc/sys read-only; the DaemonSet mounts it writable at another path. With hostNetwork the
//! files there still show the host's netns (/proc/sys/net follows the reader's netns).

use crate::Changes;
use cni::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

pub const IPV4: &str = kernel::sysctl::IPV4_FORWARD;
pub const IPV6: &str = kernel::sysctl::IPV6_FORWARD;

pub fn key(v6: bool) -> &'static str {
    if v6 {
        IPV6
    } else {
        IPV4
    }
}

fn is_proc_sys(dir: &Path) -> bool {
    dir == Path::new(crate::config::DEFAULT_SYSCTL_DIR)
}

pub fn read(dir: &Path, key: &str) -> Result<String> {
    let r = if is_proc_sys(dir) {
        kernel::sysctl::read(key).map_err(|e| e.to_string())
    } else {
        std::fs::read_to_string(dir.join(key))
            .map(|s| s.trim_end().to_string())
            .map_err(|e| format!("read {}: {e}", dir.join(key).display()))
    };
    r.map_err(Error::io)
}

pub fn write(dir: &Path, key: &str, value: &str) -> Result<()> {
    let r = if is_proc_sys(dir) {
        kernel::sysctl::write(key, value).map_err(|e| e.to_string())
    } else {
        std::fs::write(dir.join(key), value)
            .map_err(|e| format!("write {}={value}: {e}", dir.join(key).display()))
    };
    r.map_err(|e| {
        Error::io(format!(
            "{e} (a container needs the host's /proc/sys mounted writable and --sysctl-dir)"
        ))
    })
}

/// Turns forwarding on for `keys`; restores the ones recorded earlier that are no longer wanted.
pub fn apply(
    dir: &Path,
    keys: &[&str],
    before: &mut BTreeMap<String, String>,
    changes: &mut Changes,
    save: &mut dyn FnMut(&BTreeMap<String, String>) -> Result<()>,
) -> Result<()> {
    for (key, old) in before.clone() {
        if !keys.contains(&key.as_str()) {
            write(dir, &key, &old)?;
            before.remove(&key);
            save(before)?;
            changes.push(format!("restored {key}={old}"));
        }
    }
    for &key in keys {
        let now = read(dir, key)?;
        if now == "1" {
            continue;
        }
        // Recorded first: a failed write still leaves the original value known.
        before.entry(key.to_string()).or_insert(now);
        save(before)?;
        write(dir, key, "1")?;
        changes.push(format!("set {key}=1"));
    }
    Ok(())
}

/// Puts back every recorded value.
pub fn restore(
    dir: &Path,
    before: &mut BTreeMap<String, String>,
    changes: &mut Changes,
) -> Result<()> {
    for (key, old) in std::mem::take(before) {
        write(dir, &key, &old)?;
        changes.push(format!("restored {key}={old}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_only_what_it_changes_and_restores_it() {
        let dir = std::env::temp_dir().join(format!("podwire-node-sysctl-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("net/ipv4")).unwrap();
        std::fs::create_dir_all(dir.join("net/ipv6/conf/all")).unwrap();
        std::fs::write(dir.join(IPV4), "0\n").unwrap();
        std::fs::write(dir.join(IPV6), "1\n").unwrap();
        let mut before = BTreeMap::new();
        let mut changes = Vec::new();
        let mut saves = 0;
        apply(&dir, &[IPV4, IPV6], &mut before, &mut changes, &mut |_| {
            saves += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(read(&dir, IPV4).unwrap(), "1");
        assert_eq!(before.len(), 1, "{before:?}");
        assert_eq!(before[IPV4], "0");
        assert_eq!(changes, vec![format!("set {IPV4}=1")]);
        assert!(saves >= 1);
        // Single-stack now: IPv4 no longer wanted -> back to 0.
        changes.clear();
        apply(&dir, &[IPV6], &mut before, &mut changes, &mut |_| Ok(())).unwrap();
        assert_eq!(read(&dir, IPV4).unwrap(), "0");
        assert!(before.is_empty());
        apply(&dir, &[IPV4], &mut before, &mut changes, &mut |_| Ok(())).unwrap();
        restore(&dir, &mut before, &mut changes).unwrap();
        assert_eq!(read(&dir, IPV4).unwrap(), "0");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
