//! Files a runtime or a later teardown reads while we may be writing them: written to a temp file
//! in the same directory, then renamed over, so a reader sees the old file or the new one, never
//! half of one. An identical file is left alone (not even its mtime changes).

use cni::{Error, Result};
use std::fs::{self, OpenOptions, Permissions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Writes `content` to `path` with `mode` unless the file already holds exactly that with that
/// mode. Returns whether it wrote. Creates the parent directory (0755) if missing.
pub fn write_atomic(path: &Path, content: &[u8], mode: u32) -> Result<bool> {
    let io = |what: &str, e: std::io::Error| Error::io(format!("{what} {}: {e}", path.display()));
    if let (Ok(old), Ok(meta)) = (fs::read(path), fs::metadata(path)) {
        if old == content && meta.permissions().mode() & 0o7777 == mode {
            return Ok(false);
        }
    }
    let dir = path
        .parent()
        .ok_or_else(|| Error::invalid_config(format!("{} has no directory", path.display())))?;
    fs::create_dir_all(dir).map_err(|e| io("create the directory of", e))?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    // A dot name: runtimes skip hidden files and ones without a .conf/.conflist/.json suffix.
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(content)?;
        // The umask may have narrowed the mode given at creation.
        f.set_permissions(Permissions::from_mode(mode))?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(io("write", e));
    }
    Ok(true)
}

/// Removes a file; returns whether it was there.
pub fn remove(path: &Path) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(format!("remove {}: {e}", path.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn writes_once_then_leaves_an_identical_file_alone() {
        let dir = std::env::temp_dir().join(format!("podwire-node-files-{}", std::process::id()));
        let path = dir.join("sub/10-x.conflist");
        assert!(write_atomic(&path, b"one", 0o644).unwrap());
        let ino = fs::metadata(&path).unwrap().ino();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o644);
        assert!(!write_atomic(&path, b"one", 0o644).unwrap());
        assert_eq!(fs::metadata(&path).unwrap().ino(), ino, "rewritten");
        assert!(write_atomic(&path, b"two", 0o644).unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert!(write_atomic(&path, b"two", 0o600).unwrap(), "mode change");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["10-x.conflist"], "temp file left behind");
        assert!(remove(&path).unwrap());
        assert!(!remove(&path).unwrap());
        fs::remove_dir_all(&dir).unwrap();
    }
}
