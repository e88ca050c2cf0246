//! The result cache, file for file what libcni writes, so containerd's libcni and podwire can
//! take over each other's attachments: `<dir>/results/<network>-<containerID>-<ifname>`, a JSON
//! object of kind `cniCacheV1` holding the list's config bytes (base64, as Go writes `[]byte`),
//! the runtime arguments and the last plugin's result. Directory 0700, files 0600.
//! Files are replaced atomically (temp file + rename), so a reader never sees half a file.
//! They are not fsync'd (neither does libcni): an entry only describes an attachment inside a
//! network namespace, and no namespace outlives the power loss that could lose the entry. DEL
//! goes on without an entry it cannot read, so a torn file after a crash costs nothing.

use crate::b64;
use crate::error::{Error, Result};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The `kind` libcni stamps on its cache files.
pub const KIND_V1: &str = "cniCacheV1";

/// libcni's default cache directory.
pub const DEFAULT_DIR: &str = "/var/lib/cni";

/// One cached attachment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CacheEntry {
    pub container_id: String,
    pub network_name: String,
    pub ifname: String,
    /// Written by newer libcni (and podwire); absent in files from libcni 1.1 (containerd 1.6).
    pub netns: String,
    /// The network config list's bytes as loaded.
    pub config: Vec<u8>,
    pub cni_args: Vec<(String, String)>,
    pub capability_args: Map<String, Value>,
    /// The last plugin's result, in the version it was returned in.
    pub result: Option<Value>,
}

/// The on-disk layout: field names and order as libcni's `cachedInfo`.
#[derive(Serialize, Deserialize)]
struct CachedInfo {
    #[serde(default)]
    kind: String,
    #[serde(rename = "containerId", default)]
    container_id: String,
    #[serde(with = "go_bytes", default)]
    config: Vec<u8>,
    #[serde(rename = "ifName", default)]
    if_name: String,
    #[serde(rename = "networkName", default)]
    network_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    netns: String,
    #[serde(
        rename = "cniArgs",
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "null_as_none"
    )]
    cni_args: Option<Vec<[String; 2]>>,
    #[serde(
        rename = "capabilityArgs",
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "null_as_none"
    )]
    capability_args: Option<Map<String, Value>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "null_as_none"
    )]
    result: Option<Map<String, Value>>,
}

fn null_as_none<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> std::result::Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)
}

/// Go's `[]byte` in JSON: a base64 string, or null for nil.
mod go_bytes {
    use super::*;
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&b64::encode(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<u8>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(Vec::new()),
            Some(s) => b64::decode(&s)
                .ok_or_else(|| serde::de::Error::custom("config is not valid base64")),
        }
    }
}

impl From<&CacheEntry> for CachedInfo {
    fn from(e: &CacheEntry) -> Self {
        CachedInfo {
            kind: KIND_V1.into(),
            container_id: e.container_id.clone(),
            config: e.config.clone(),
            if_name: e.ifname.clone(),
            network_name: e.network_name.clone(),
            netns: e.netns.clone(),
            // omitempty in Go: an empty list or map is left out.
            cni_args: (!e.cni_args.is_empty()).then(|| {
                e.cni_args
                    .iter()
                    .map(|(k, v)| [k.clone(), v.clone()])
                    .collect()
            }),
            capability_args: (!e.capability_args.is_empty()).then(|| e.capability_args.clone()),
            result: match &e.result {
                Some(Value::Object(m)) if !m.is_empty() => Some(m.clone()),
                _ => None,
            },
        }
    }
}

impl From<CachedInfo> for CacheEntry {
    fn from(c: CachedInfo) -> Self {
        CacheEntry {
            container_id: c.container_id,
            network_name: c.network_name,
            ifname: c.if_name,
            netns: c.netns,
            config: c.config,
            cni_args: c
                .cni_args
                .unwrap_or_default()
                .into_iter()
                .map(|[k, v]| (k, v))
                .collect(),
            capability_args: c.capability_args.unwrap_or_default(),
            result: c.result.map(Value::Object),
        }
    }
}

impl CacheEntry {
    /// The entry as libcni's JSON.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&CachedInfo::from(self)).expect("cache entry always serialises")
    }

    /// Reads a `cniCacheV1` file's JSON; anything else is an error.
    pub fn from_json(bytes: &[u8]) -> Result<CacheEntry> {
        let info: CachedInfo = serde_json::from_slice(bytes).map_err(|e| {
            Error::new(cni::Error::decode(format!(
                "cannot decode cache entry: {e}"
            )))
        })?;
        if info.kind != KIND_V1 {
            return Err(Error::new(cni::Error::decode(format!(
                "cache entry has kind {:?}, want {KIND_V1:?}",
                info.kind
            ))));
        }
        Ok(info.into())
    }
}

/// A cache directory (libcni's `CacheDir`, default `/var/lib/cni`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    dir: PathBuf,
}

/// Reads a cache file, refusing a symlink (ELOOP) instead of following it.
fn read_nofollow(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut f, &mut bytes)?;
    Ok(bytes)
}

fn refuse_symlink(dir: &Path) -> Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => Err(Error::new(cni::Error::io(format!(
            "cache directory {} is a symlink; refusing to follow it",
            dir.display()
        )))),
        _ => Ok(()),
    }
}

fn cache_err(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::new(cni::Error::io(format!(
        "cannot {what} cache file {}: {e}",
        path.display()
    )))
}

impl Cache {
    pub fn new(dir: impl Into<PathBuf>) -> Cache {
        Cache { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn results_dir(&self) -> PathBuf {
        self.dir.join("results")
    }

    /// `<dir>/results/<network>-<containerID>-<ifname>`; all three must be non-empty.
    pub fn file_path(&self, network: &str, container_id: &str, ifname: &str) -> Result<PathBuf> {
        if network.is_empty() || container_id.is_empty() || ifname.is_empty() {
            return Err(Error::new(cni::Error::invalid_env(format!(
                "cache file path needs network name ({network:?}), container ID ({container_id:?}) and interface name ({ifname:?})"
            ))));
        }
        Ok(self
            .results_dir()
            .join(format!("{network}-{container_id}-{ifname}")))
    }

    /// Writes (replaces) the entry's file.
    pub fn write(&self, entry: &CacheEntry) -> Result<PathBuf> {
        let path = self.file_path(&entry.network_name, &entry.container_id, &entry.ifname)?;
        let dir = self.results_dir();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| cache_err(&dir, "create the directory of", e))?;
        // We run as root: a planted symlink must never steer a write elsewhere.
        refuse_symlink(&self.dir)?;
        refuse_symlink(&dir)?;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("entry");
        let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
        // A leftover of a killed writer with our pid: unlink (never follows a link).
        let _ = std::fs::remove_file(&tmp);
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&tmp)?;
            f.write_all(&entry.to_json())?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            cache_err(&path, "write", e)
        })?;
        Ok(path)
    }

    /// The entry, `None` if there is no file. A file that is not `cniCacheV1` JSON is an error.
    pub fn read(
        &self,
        network: &str,
        container_id: &str,
        ifname: &str,
    ) -> Result<Option<CacheEntry>> {
        let path = self.file_path(network, container_id, ifname)?;
        match read_nofollow(&path) {
            Ok(bytes) => CacheEntry::from_json(&bytes)
                .map(Some)
                .map_err(|e| e.in_file(&path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(cache_err(&path, "read", e)),
        }
    }

    /// The cached result, converted to `cni_version`. Also reads the pre-`cniCacheV1` layout
    /// (the file is the bare result), as libcni does. `None` if there is no file.
    pub fn read_result(
        &self,
        network: &str,
        container_id: &str,
        ifname: &str,
        cni_version: &str,
    ) -> Result<Option<Value>> {
        let path = self.file_path(network, container_id, ifname)?;
        let bytes = match read_nofollow(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(cache_err(&path, "read", e)),
        };
        let raw = match CacheEntry::from_json(&bytes) {
            Ok(entry) => match entry.result {
                Some(r) => r,
                None => return Ok(None),
            },
            Err(_) => serde_json::from_slice::<Value>(&bytes).map_err(|e| {
                Error::new(cni::Error::decode(format!(
                    "cannot decode cached result: {e}"
                )))
                .in_file(&path)
            })?,
        };
        cni::CniResult::convert(&raw, cni_version)
            .map(Some)
            .map_err(|e| {
                Error::new(cni::Error::new(
                    e.code,
                    format!(
                        "cannot convert cached result to version {cni_version}: {}",
                        e.msg
                    ),
                ))
                .in_file(&path)
            })
    }

    /// Removes the entry's file; a missing file is fine.
    pub fn remove(&self, network: &str, container_id: &str, ifname: &str) -> Result<()> {
        let path = self.file_path(network, container_id, ifname)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(cache_err(&path, "remove", e)),
        }
    }

    /// Every readable `cniCacheV1` entry, sorted by file name, optionally only one container's
    /// (libcni's `GetCachedAttachments`). Unreadable or foreign files are skipped.
    pub fn attachments(&self, container_id: Option<&str>) -> Result<Vec<CacheEntry>> {
        let dir = self.results_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(cache_err(&dir, "list", e)),
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        let mut out = Vec::new();
        for name in names {
            if let Some(cid) = container_id.filter(|c| !c.is_empty()) {
                let part = format!("-{cid}-");
                match name.find(&part) {
                    Some(pos) if pos > 0 && pos + part.len() < name.len() => {}
                    _ => continue,
                }
            }
            let Ok(bytes) = read_nofollow(&dir.join(&name)) else {
                continue;
            };
            let Ok(entry) = CacheEntry::from_json(&bytes) else {
                continue;
            };
            if container_id.is_some_and(|c| !c.is_empty() && entry.container_id != c) {
                continue;
            }
            if entry.ifname.is_empty() || entry.network_name.is_empty() {
                continue;
            }
            out.push(entry);
        }
        Ok(out)
    }
}
