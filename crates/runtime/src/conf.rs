//! Loading network configs from a directory the way libcni does (`LoadNetworkConf`):
//! `*.conflist` files in sorted order first, then `*.conf`/`*.json` single-plugin configs
//! upconverted to a one-plugin list; the first whose `name` matches wins. A file that does
//! not parse stops the search with an error naming that file, as in libcni.

use crate::error::{Error, Result};
use cni::version::{self, Version};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One plugin's entry in a list: the fields the runtime needs plus the raw JSON it forwards.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConfig {
    /// `type`: the plugin binary's name.
    pub kind: String,
    /// `name`, if the entry has one (the list's name is injected anyway).
    pub name: String,
    /// `capabilities`: only enabled ones get their `runtimeConfig` key.
    pub capabilities: BTreeMap<String, bool>,
    /// The entry as written, forwarded verbatim (plus the injected keys).
    pub raw: Map<String, Value>,
}

/// A network configuration list (libcni's `NetworkConfigList`).
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfigList {
    pub name: String,
    /// The version the list runs at: from `cniVersions` if given, else `cniVersion`.
    pub cni_version: String,
    pub disable_check: bool,
    pub disable_gc: bool,
    pub load_only_inlined_plugins: bool,
    pub plugins: Vec<PluginConfig>,
    /// The bytes the list was parsed from; stored (base64) in the result cache as libcni does.
    pub bytes: Vec<u8>,
    /// Where the list was loaded from, if from a file.
    pub file: Option<PathBuf>,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::new(cni::Error::invalid_config(msg))
}

fn as_str<'a>(obj: &'a Map<String, Value>, key: &str, what: &str) -> Result<Option<&'a str>> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(bad(format!(
            "{what}: {key:?} must be a string, not {other}"
        ))),
    }
}

/// Compares versions as libcni does; an empty version counts as 0.1.0 (the spec's default).
pub(crate) fn version_at_least(v: &str, min: Version) -> Result<bool> {
    if v.is_empty() {
        return Ok(Version(0, 1, 0) >= min);
    }
    Ok(Version::parse(v)? >= min)
}

impl PluginConfig {
    pub fn from_value(v: Value) -> Result<PluginConfig> {
        let Value::Object(raw) = v else {
            return Err(bad(format!("plugin config must be a JSON object, not {v}")));
        };
        let what = "plugin config";
        let kind = as_str(&raw, "type", what)?.unwrap_or("").to_string();
        if kind.is_empty() {
            return Err(bad("plugin config has no \"type\""));
        }
        let name = as_str(&raw, "name", what)?.unwrap_or("").to_string();
        as_str(&raw, "cniVersion", what)?;
        let mut capabilities = BTreeMap::new();
        match raw.get("capabilities") {
            None | Some(Value::Null) => {}
            Some(Value::Object(caps)) => {
                for (k, v) in caps {
                    let on = v.as_bool().ok_or_else(|| {
                        bad(format!(
                            "plugin {kind:?}: capability {k:?} must be true or false, not {v}"
                        ))
                    })?;
                    capabilities.insert(k.clone(), on);
                }
            }
            Some(other) => {
                return Err(bad(format!(
                    "plugin {kind:?}: \"capabilities\" must be an object, not {other}"
                )))
            }
        }
        Ok(PluginConfig {
            kind,
            name,
            capabilities,
            raw,
        })
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<PluginConfig> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| {
            Error::new(cni::Error::decode(format!(
                "cannot decode plugin config: {e}"
            )))
        })?;
        Self::from_value(v)
    }

    /// Capabilities this plugin declares as enabled.
    pub fn enabled_capabilities(&self) -> impl Iterator<Item = &str> {
        self.capabilities
            .iter()
            .filter(|(_, on)| **on)
            .map(|(k, _)| k.as_str())
    }
}

/// `true`/`false` or the strings "true"/"false" (any case), as libcni accepts.
fn read_bool(obj: &Map<String, Value>, key: &str) -> Result<bool> {
    match obj.get(key) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(bad(format!(
                "invalid value {s:?} for {key:?}: want true or false"
            ))),
        },
        Some(other) => Err(bad(format!(
            "invalid value {other} for {key:?}: want true or false"
        ))),
    }
}

/// libcni's version choice: the highest of `cniVersions` plus `cniVersion` that this
/// implementation knows (≤ the newest spec version); the rest are skipped.
fn select_version(obj: &Map<String, Value>) -> Result<String> {
    let mut cni_version = as_str(obj, "cniVersion", "network config list")?
        .unwrap_or("")
        .to_string();
    let Some(raw) = obj.get("cniVersions") else {
        return Ok(cni_version);
    };
    let list = raw
        .as_array()
        .ok_or_else(|| bad(format!("\"cniVersions\" must be a list, not {raw}")))?;
    let current = Version::parse(version::CURRENT)?;
    let mut candidates: Vec<(Version, String)> = Vec::new();
    for (i, v) in list.iter().enumerate() {
        let s = v
            .as_str()
            .ok_or_else(|| bad(format!("cniVersions[{i}] must be a string, not {v}")))?;
        let parsed = Version::parse(s).map_err(|e| {
            bad(format!(
                "invalid cniVersions entry {s:?} at index {i}: {}",
                e.msg
            ))
        })?;
        if parsed <= current {
            candidates.push((parsed, s.to_string()));
        }
    }
    if !cni_version.is_empty() {
        let parsed = Version::parse(&cni_version)
            .map_err(|e| bad(format!("invalid cniVersion {cni_version:?}: {}", e.msg)))?;
        if parsed <= current {
            candidates.push((parsed, cni_version.clone()));
        }
    }
    if let Some((_, best)) = candidates.into_iter().max_by(|a, b| a.0.cmp(&b.0)) {
        cni_version = best;
    }
    Ok(cni_version)
}

impl NetworkConfigList {
    /// Parses a conflist (libcni's `NetworkConfFromBytes`). A list with no `plugins` key and
    /// `loadOnlyInlinedPlugins` unset parses with no plugins: `from_file` adds the ones in
    /// `<dir>/<name>/*.conf`.
    pub fn from_bytes(bytes: &[u8]) -> Result<NetworkConfigList> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| {
            Error::new(cni::Error::decode(format!(
                "cannot decode network config list: {e}"
            )))
        })?;
        let Value::Object(obj) = v else {
            return Err(bad("network config list must be a JSON object"));
        };
        let name = as_str(&obj, "name", "network config list")?
            .ok_or_else(|| bad("network config list has no \"name\""))?
            .to_string();
        let cni_version = select_version(&obj)?;
        if !cni_version.is_empty() {
            Version::parse(&cni_version)
                .map_err(|e| bad(format!("invalid cniVersion {cni_version:?}: {}", e.msg)))?;
        }
        let mut list = NetworkConfigList {
            name,
            cni_version,
            disable_check: read_bool(&obj, "disableCheck")?,
            disable_gc: read_bool(&obj, "disableGC")?,
            load_only_inlined_plugins: read_bool(&obj, "loadOnlyInlinedPlugins")?,
            plugins: Vec::new(),
            bytes: bytes.to_vec(),
            file: None,
        };
        let Some(plugins) = obj.get("plugins") else {
            if list.load_only_inlined_plugins {
                return Err(bad(
                    "\"loadOnlyInlinedPlugins\" is true but the list has no \"plugins\"",
                ));
            }
            return Ok(list);
        };
        let plugins = plugins
            .as_array()
            .ok_or_else(|| bad(format!("\"plugins\" must be a list, not {plugins}")))?;
        if plugins.is_empty() {
            return Err(bad(format!("network {:?} has no plugins", list.name)));
        }
        for (i, p) in plugins.iter().enumerate() {
            let conf = PluginConfig::from_value(p.clone()).map_err(|mut e| {
                e.cni.msg = format!("plugin {i}: {}", e.cni.msg);
                e
            })?;
            list.plugins.push(conf);
        }
        Ok(list)
    }

    /// Reads a conflist file (libcni's `NetworkConfFromFile`): unless `loadOnlyInlinedPlugins`,
    /// plugin configs in `<dir>/<name>/*.conf` are appended. Errors name the file.
    pub fn from_file(path: &Path) -> Result<NetworkConfigList> {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::new(cni::Error::io(format!("cannot read: {e}"))).in_file(path))?;
        let mut list = Self::from_bytes(&bytes).map_err(|e| e.in_file(path))?;
        list.file = Some(path.to_path_buf());
        if !list.load_only_inlined_plugins {
            let dir = path.parent().unwrap_or(Path::new(".")).join(&list.name);
            for file in conf_files(&dir, &["conf"])? {
                let bytes = std::fs::read(&file).map_err(|e| {
                    Error::new(cni::Error::io(format!("cannot read: {e}"))).in_file(&file)
                })?;
                list.plugins
                    .push(PluginConfig::from_bytes(&bytes).map_err(|e| e.in_file(&file))?);
            }
        }
        if list.plugins.is_empty() {
            return Err(
                bad(format!("network {:?} has no plugin configs", list.name)).in_file(path),
            );
        }
        Ok(list)
    }

    /// Upconverts a single plugin config (`*.conf`) into a one-plugin list, as libcni does:
    /// the list's bytes are `{"cniVersion", "name", "plugins": [conf]}`.
    pub fn from_conf(conf: &PluginConfig) -> Result<NetworkConfigList> {
        let get = |k: &str| {
            conf.raw
                .get(k)
                .cloned()
                .unwrap_or(Value::String(String::new()))
        };
        let list = serde_json::json!({
            "cniVersion": get("cniVersion"),
            "name": get("name"),
            "plugins": [Value::Object(conf.raw.clone())],
        });
        Self::from_bytes(&serde_json::to_vec(&list).expect("JSON always serialises"))
    }

    /// Capabilities enabled by any plugin of the list, sorted.
    pub fn capabilities(&self) -> Vec<String> {
        let mut caps: Vec<String> = self
            .plugins
            .iter()
            .flat_map(|p| p.enabled_capabilities().map(str::to_string))
            .collect();
        caps.sort();
        caps.dedup();
        caps
    }
}

/// Files directly in `dir` whose extension is one of `exts`, sorted by path. A missing
/// directory has none (not an error), as in libcni.
pub fn conf_files(dir: &Path, exts: &[&str]) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::new(cni::Error::io(format!("cannot list: {e}"))).in_file(dir)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry
            .map_err(|e| Error::new(cni::Error::io(format!("cannot list: {e}"))).in_file(dir))?;
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        let path = entry.path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if exts.contains(&ext) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Finds network `name` in `dir`: conflists first, then single configs (libcni's `LoadNetworkConf`).
pub fn load_network(dir: &Path, name: &str) -> Result<NetworkConfigList> {
    let lists = conf_files(dir, &["conflist"])?;
    for file in &lists {
        let list = NetworkConfigList::from_file(file)?;
        if list.name == name {
            return Ok(list);
        }
    }
    let singles = conf_files(dir, &["conf", "json"])?;
    if lists.is_empty() && singles.is_empty() {
        return Err(bad(format!(
            "no network configs found in {}",
            dir.display()
        )));
    }
    for file in &singles {
        let bytes = std::fs::read(file)
            .map_err(|e| Error::new(cni::Error::io(format!("cannot read: {e}"))).in_file(file))?;
        let conf = PluginConfig::from_bytes(&bytes).map_err(|e| e.in_file(file))?;
        if conf.name == name {
            let mut list = NetworkConfigList::from_conf(&conf).map_err(|e| e.in_file(file))?;
            list.file = Some(file.clone());
            return Ok(list);
        }
    }
    Err(bad(format!(
        "no network config named {name:?} in {}",
        dir.display()
    )))
}

/// Every network in `dir` by name, in the order libcni would find them (a name found twice
/// keeps its first file). Files that do not parse are returned as errors alongside.
pub fn list_networks(dir: &Path) -> Result<Vec<Result<NetworkConfigList>>> {
    let mut out: Vec<Result<NetworkConfigList>> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for file in conf_files(dir, &["conflist"])? {
        let r = NetworkConfigList::from_file(&file);
        if let Ok(l) = &r {
            if !seen.insert(l.name.clone()) {
                continue;
            }
        }
        out.push(r);
    }
    for file in conf_files(dir, &["conf", "json"])? {
        let r = std::fs::read(&file)
            .map_err(|e| Error::new(cni::Error::io(format!("cannot read: {e}"))))
            .and_then(|b| PluginConfig::from_bytes(&b))
            .and_then(|c| NetworkConfigList::from_conf(&c))
            .map(|mut l| {
                l.file = Some(file.clone());
                l
            })
            .map_err(|e| e.in_file(&file));
        if let Ok(l) = &r {
            if !seen.insert(l.name.clone()) {
                continue;
            }
        }
        out.push(r);
    }
    Ok(out)
}
