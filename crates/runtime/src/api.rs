//! Running a network config list (libcni's `CNIConfig`): ADD in order with each result as the
//! next plugin's `prevResult`, DEL in reverse with the cached result, CHECK, GC and STATUS.
//! Every plugin gets the list's `name` and `cniVersion`, and in `runtimeConfig` only the
//! capability arguments it declares.

use crate::cache::{Cache, CacheEntry};
use crate::conf::{version_at_least, NetworkConfigList, PluginConfig};
use crate::error::{Error, Op, Result};
use crate::exec::{find_in_path, Args, Exec, Output};
use cni::version::Version;
use cni::CniResult;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::PathBuf;

/// The arguments of one attachment (libcni's `RuntimeConf`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuntimeConf {
    pub container_id: String,
    pub netns: String,
    pub ifname: String,
    /// `CNI_ARGS` pairs, in order.
    pub args: Vec<(String, String)>,
    /// Capability arguments (e.g. `portMappings`); each plugin sees only those it declares.
    pub capability_args: Map<String, Value>,
}

/// An attachment the runtime still uses; GC leaves it alone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GcAttachment {
    #[serde(rename = "containerID")]
    pub container_id: String,
    #[serde(rename = "ifname")]
    pub ifname: String,
}

/// What a GC did: the stale attachments it deleted (each DEL succeeded, its cache entry gone),
/// and the errors met on the way, joined (the GC goes on past each).
#[derive(Debug)]
#[must_use]
pub struct GcOutcome {
    pub removed: Vec<GcAttachment>,
    pub result: Result<()>,
}

/// One plugin exec of a chain and how long it took (what `podwirectl add/del` reports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginRun {
    pub kind: String,
    pub binary: PathBuf,
    pub elapsed: std::time::Duration,
    pub ok: bool,
}

/// Runs plugins found in `path`, caching results under `cache`.
#[derive(Debug, Clone)]
pub struct CniConfig {
    pub path: Vec<PathBuf>,
    pub cache: Cache,
    pub exec: Exec,
}

/// Where the spec added each command.
const CHECK_SINCE: Version = Version(0, 4, 0);
const CACHED_DEL_SINCE: Version = Version(0, 4, 0);
const GC_STATUS_SINCE: Version = Version(1, 1, 0);

/// The config one plugin gets on stdin (libcni's `buildOneConfig`): the list's `name` and
/// `cniVersion`, the previous result, and `runtimeConfig` holding the capability arguments the
/// plugin declares (replacing any it had, and only when there is one).
pub fn build_plugin_config(
    list: &NetworkConfigList,
    plugin: &PluginConfig,
    prev_result: Option<&Value>,
    rt: Option<&RuntimeConf>,
) -> Vec<u8> {
    let mut conf = plugin.raw.clone();
    conf.insert("name".into(), list.name.clone().into());
    conf.insert("cniVersion".into(), list.cni_version.clone().into());
    if let Some(prev) = prev_result {
        conf.insert("prevResult".into(), prev.clone());
    }
    if let Some(rt) = rt {
        let rc: Map<String, Value> = plugin
            .enabled_capabilities()
            .filter_map(|cap| {
                rt.capability_args
                    .get(cap)
                    .map(|v| (cap.to_string(), v.clone()))
            })
            .collect();
        if !rc.is_empty() {
            conf.insert("runtimeConfig".into(), Value::Object(rc));
        }
    }
    serde_json::to_vec(&Value::Object(conf)).expect("JSON always serialises")
}

/// libcni's `fixupResultVersion` + `create.Create`: a result without `cniVersion` is taken to
/// be in the config's version; then it must parse as a result of its version.
fn parse_result(stdout: &[u8], config_version: &str) -> std::result::Result<CniResult, cni::Error> {
    let v: Value = serde_json::from_slice(stdout).map_err(|e| {
        cni::Error::decode(format!(
            "cannot decode the plugin's result {:?}: {e}",
            String::from_utf8_lossy(stdout).trim()
        ))
    })?;
    let mut obj = match v {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        other => {
            return Err(cni::Error::decode(format!(
                "plugin result is not an object: {other}"
            )))
        }
    };
    if obj
        .get("cniVersion")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        obj.insert("cniVersion".into(), config_version.into());
    }
    CniResult::from_value(&Value::Object(obj))
}

/// The result as JSON in the version it came in.
pub fn result_json(r: &CniResult) -> Value {
    r.to_value(&r.cni_version)
        .expect("a parsed result converts to its own version")
}

impl CniConfig {
    /// Plugins from `path`, cache in libcni's default `/var/lib/cni`, no timeout.
    pub fn new(path: Vec<PathBuf>) -> CniConfig {
        CniConfig {
            path,
            cache: Cache::new(crate::cache::DEFAULT_DIR),
            exec: Exec::default(),
        }
    }

    pub fn with_cache_dir(mut self, dir: impl Into<PathBuf>) -> CniConfig {
        self.cache = Cache::new(dir);
        self
    }

    pub fn with_exec(mut self, exec: Exec) -> CniConfig {
        self.exec = exec;
        self
    }

    fn cni_path(&self) -> String {
        self.path
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    }

    fn args(&self, op: Op, rt: Option<&RuntimeConf>) -> Args {
        let rt = rt.cloned().unwrap_or_default();
        Args {
            command: op.command().into(),
            container_id: rt.container_id,
            netns: rt.netns,
            plugin_args: rt.args,
            ifname: rt.ifname,
            path: self.cni_path(),
        }
    }

    /// Finds every plugin of the list before any runs, so a missing binary never leaves an
    /// attachment half made.
    fn resolve(&self, list: &NetworkConfigList, op: Op) -> Result<Vec<PathBuf>> {
        list.plugins
            .iter()
            .map(|p| {
                find_in_path(&p.kind, &self.path).map_err(|e| e.for_plugin(&p.kind, &list.name, op))
            })
            .collect()
    }

    fn run(
        &self,
        list: &NetworkConfigList,
        plugin: &PluginConfig,
        binary: &std::path::Path,
        op: Op,
        stdin: &[u8],
        rt: Option<&RuntimeConf>,
    ) -> Result<Output> {
        self.exec
            .run(binary, stdin, &self.args(op, rt))
            .map_err(|e| e.for_plugin(&plugin.kind, &list.name, op))
    }

    /// libcni's validation of an attachment's names, before any plugin runs.
    fn validate(list: &NetworkConfigList, rt: &RuntimeConf) -> Result<()> {
        cni::validate::container_id(&rt.container_id)?;
        cni::validate::network_name(&list.name)?;
        cni::validate::interface_name(&rt.ifname)?;
        Ok(())
    }

    fn version_at_least(list: &NetworkConfigList, min: Version) -> Result<bool> {
        version_at_least(&list.cni_version, min).map_err(|e| {
            Error::new(cni::Error::incompatible_version(format!(
                "network {:?}: invalid cniVersion {:?}: {}",
                list.name, list.cni_version, e.cni.msg
            )))
        })
    }

    /// Runs one plugin and notes how long its exec took.
    #[allow(clippy::too_many_arguments)]
    fn run_timed(
        &self,
        list: &NetworkConfigList,
        plugin: &PluginConfig,
        binary: &std::path::Path,
        op: Op,
        stdin: &[u8],
        rt: Option<&RuntimeConf>,
        runs: &mut Vec<PluginRun>,
    ) -> Result<Output> {
        let started = std::time::Instant::now();
        let out = self.run(list, plugin, binary, op, stdin, rt);
        runs.push(PluginRun {
            kind: plugin.kind.clone(),
            binary: binary.to_path_buf(),
            elapsed: started.elapsed(),
            ok: out.is_ok(),
        });
        out
    }

    /// ADD: runs the plugins in order, caches and returns the last one's result.
    pub fn add_network_list(
        &self,
        list: &NetworkConfigList,
        rt: &RuntimeConf,
    ) -> Result<CniResult> {
        self.add_network_list_timed(list, rt, &mut Vec::new())
    }

    /// ADD, noting each plugin's exec time in `runs` (failed ones too).
    pub fn add_network_list_timed(
        &self,
        list: &NetworkConfigList,
        rt: &RuntimeConf,
        runs: &mut Vec<PluginRun>,
    ) -> Result<CniResult> {
        Self::validate(list, rt)?;
        let binaries = self.resolve(list, Op::Add)?;
        let mut result: Option<CniResult> = None;
        for (plugin, binary) in list.plugins.iter().zip(&binaries) {
            let prev = result.as_ref().map(result_json);
            let stdin = build_plugin_config(list, plugin, prev.as_ref(), Some(rt));
            let out = self.run_timed(list, plugin, binary, Op::Add, &stdin, Some(rt), runs)?;
            let r = parse_result(&out.stdout, &list.cni_version)
                .map_err(|e| Error::new(e).for_plugin(&plugin.kind, &list.name, Op::Add))?;
            result = Some(r);
        }
        let result = result.expect("a loaded list has at least one plugin");
        let entry = CacheEntry {
            container_id: rt.container_id.clone(),
            network_name: list.name.clone(),
            ifname: rt.ifname.clone(),
            netns: rt.netns.clone(),
            config: list.bytes.clone(),
            cni_args: rt.args.clone(),
            capability_args: rt.capability_args.clone(),
            result: Some(result_json(&result)),
        };
        self.cache.write(&entry).map_err(|mut e| {
            e.cni.msg = format!(
                "failed to set network {:?} cached result: {}",
                list.name, e.cni.msg
            );
            e
        })?;
        Ok(result)
    }

    /// CHECK: every plugin with the cached result as `prevResult`. A no-op with `disableCheck`.
    pub fn check_network_list(&self, list: &NetworkConfigList, rt: &RuntimeConf) -> Result<()> {
        if !Self::version_at_least(list, CHECK_SINCE)? {
            return Err(Error::new(cni::Error::incompatible_version(format!(
                "configuration version {:?} does not support the CHECK command (needs 0.4.0 or later)",
                list.cni_version
            ))));
        }
        if list.disable_check {
            return Ok(());
        }
        Self::validate(list, rt)?;
        let cached = self
            .cache
            .read_result(&list.name, &rt.container_id, &rt.ifname, &list.cni_version)
            .map_err(|mut e| {
                e.cni.msg = format!(
                    "failed to get network {:?} cached result: {}",
                    list.name, e.cni.msg
                );
                e
            })?;
        let binaries = self.resolve(list, Op::Check)?;
        for (plugin, binary) in list.plugins.iter().zip(&binaries) {
            let stdin = build_plugin_config(list, plugin, cached.as_ref(), Some(rt));
            self.run(list, plugin, binary, Op::Check, &stdin, Some(rt))?;
        }
        Ok(())
    }

    /// DEL: the plugins in reverse order with the cached result; then the cache entry goes.
    /// A cache entry that cannot be read is removed and DEL goes on without it.
    pub fn del_network_list(&self, list: &NetworkConfigList, rt: &RuntimeConf) -> Result<()> {
        self.del_network_list_timed(list, rt, &mut Vec::new())
    }

    /// DEL, noting each plugin's exec time in `runs`.
    pub fn del_network_list_timed(
        &self,
        list: &NetworkConfigList,
        rt: &RuntimeConf,
        runs: &mut Vec<PluginRun>,
    ) -> Result<()> {
        Self::validate(list, rt)?;
        let mut cached = None;
        if Self::version_at_least(list, CACHED_DEL_SINCE)? {
            match self.cache.read_result(
                &list.name,
                &rt.container_id,
                &rt.ifname,
                &list.cni_version,
            ) {
                Ok(r) => cached = r,
                Err(_) => {
                    let _ = self.cache.remove(&list.name, &rt.container_id, &rt.ifname);
                }
            }
        }
        let binaries = self.resolve(list, Op::Del)?;
        for (plugin, binary) in list.plugins.iter().zip(&binaries).rev() {
            let stdin = build_plugin_config(list, plugin, cached.as_ref(), Some(rt));
            self.run_timed(list, plugin, binary, Op::Del, &stdin, Some(rt), runs)?;
        }
        let _ = self.cache.remove(&list.name, &rt.container_id, &rt.ifname);
        Ok(())
    }

    /// GC: first DEL for every cached attachment of this network not in `valid` (`None`: none
    /// is valid, as cnitool's `gc`), then, for lists at 1.1.0 or later, GC to every plugin with
    /// `cni.dev/valid-attachments`. All errors are collected and joined. A no-op with `disableGC`.
    pub fn gc_network_list(
        &self,
        list: &NetworkConfigList,
        valid: Option<&[GcAttachment]>,
    ) -> GcOutcome {
        let mut removed = Vec::new();
        let result = self.gc_into(list, valid, &mut removed);
        GcOutcome { removed, result }
    }

    fn gc_into(
        &self,
        list: &NetworkConfigList,
        valid: Option<&[GcAttachment]>,
        removed: &mut Vec<GcAttachment>,
    ) -> Result<()> {
        if list.disable_gc {
            return Ok(());
        }
        let mut errs = Vec::new();
        let keep: std::collections::HashSet<&GcAttachment> =
            valid.unwrap_or_default().iter().collect();
        for cached in self.cache.attachments(None)? {
            if cached.network_name != list.name {
                continue;
            }
            let id = GcAttachment {
                container_id: cached.container_id.clone(),
                ifname: cached.ifname.clone(),
            };
            if keep.contains(&id) {
                continue;
            }
            let rt = RuntimeConf {
                container_id: cached.container_id,
                netns: cached.netns,
                ifname: cached.ifname,
                args: cached.cni_args,
                capability_args: cached.capability_args,
            };
            match self.del_network_list(list, &rt) {
                Ok(()) => removed.push(id),
                Err(mut e) => {
                    e.cni.msg = format!(
                        "failed to delete stale attachment {} {}: {}",
                        rt.container_id, rt.ifname, e.cni.msg
                    );
                    errs.push(e);
                }
            }
        }
        if Self::version_at_least(list, GC_STATUS_SINCE)? {
            // Always sent, empty when nothing is valid: the same meaning as the DEL pass above
            // (a plugin refuses GC without the list rather than guess).
            let valid_json = serde_json::to_value(valid.unwrap_or_default()).expect("serialises");
            for plugin in &list.plugins {
                let mut conf = plugin.raw.clone();
                conf.insert("name".into(), list.name.clone().into());
                conf.insert("cniVersion".into(), list.cni_version.clone().into());
                conf.insert("cni.dev/valid-attachments".into(), valid_json.clone());
                // The spec's first text named it this way; libcni sends both.
                conf.insert("cni.dev/attachments".into(), valid_json.clone());
                let stdin = serde_json::to_vec(&Value::Object(conf)).expect("serialises");
                let res = find_in_path(&plugin.kind, &self.path)
                    .map_err(|e| e.for_plugin(&plugin.kind, &list.name, Op::Gc))
                    .and_then(|bin| self.run(list, plugin, &bin, Op::Gc, &stdin, None));
                if let Err(e) = res {
                    errs.push(e);
                }
            }
        }
        match Error::join(errs) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// STATUS: asks each plugin whether it is ready for ADDs; the first error is returned.
    /// Lists older than 1.1.0 have no STATUS and are taken as ready.
    pub fn status_network_list(&self, list: &NetworkConfigList) -> Result<()> {
        if !Self::version_at_least(list, GC_STATUS_SINCE)? {
            return Ok(());
        }
        let binaries = self.resolve(list, Op::Status)?;
        for (plugin, binary) in list.plugins.iter().zip(&binaries) {
            let stdin = build_plugin_config(list, plugin, None, None);
            self.run(list, plugin, binary, Op::Status, &stdin, None)?;
        }
        Ok(())
    }

    /// The cached result of the last ADD, converted to the list's version; `None` if none.
    pub fn cached_result(
        &self,
        list: &NetworkConfigList,
        rt: &RuntimeConf,
    ) -> Result<Option<CniResult>> {
        Self::validate(list, rt)?;
        match self
            .cache
            .read_result(&list.name, &rt.container_id, &rt.ifname, &list.cni_version)?
        {
            Some(v) => Ok(Some(CniResult::from_value(&v)?)),
            None => Ok(None),
        }
    }

    /// The config bytes cached by the last ADD and `rt` with the cached `CNI_ARGS` and
    /// capability arguments (libcni's `GetNetworkListCachedConfig`); `None` if none.
    pub fn cached_config(
        &self,
        list: &NetworkConfigList,
        rt: &RuntimeConf,
    ) -> Result<Option<(Vec<u8>, RuntimeConf)>> {
        Self::validate(list, rt)?;
        let Some(entry) = self.cache.read(&list.name, &rt.container_id, &rt.ifname)? else {
            return Ok(None);
        };
        let mut out = rt.clone();
        if !entry.cni_args.is_empty() {
            out.args = entry.cni_args;
        }
        out.capability_args = entry.capability_args;
        Ok(Some((entry.config, out)))
    }

    /// Cached attachments, optionally of one container only.
    pub fn cached_attachments(&self, container_id: Option<&str>) -> Result<Vec<CacheEntry>> {
        self.cache.attachments(container_id)
    }

    /// libcni's `ValidateNetworkList`: every plugin exists and speaks the list's version.
    /// Returns the capabilities the list enables. Errors for all plugins are joined.
    pub fn validate_network_list(&self, list: &NetworkConfigList) -> Result<Vec<String>> {
        let want = if list.cni_version.is_empty() {
            "0.1.0"
        } else {
            list.cni_version.as_str()
        };
        let mut errs = Vec::new();
        for plugin in &list.plugins {
            let res = find_in_path(&plugin.kind, &self.path)
                .and_then(|bin| self.exec.version_info(&bin))
                .and_then(|versions| {
                    if versions.iter().any(|v| v == want) {
                        Ok(())
                    } else {
                        Err(Error::new(cni::Error::incompatible_version(format!(
                            "plugin does not support config version {want:?} (it supports {})",
                            versions.join(", ")
                        ))))
                    }
                })
                .map_err(|e| e.for_plugin(&plugin.kind, &list.name, Op::Version));
            if let Err(e) = res {
                errs.push(e);
            }
        }
        match Error::join(errs) {
            Some(e) => Err(e),
            None => Ok(list.capabilities()),
        }
    }

    /// The spec versions a plugin speaks.
    pub fn version_info(&self, plugin_type: &str) -> Result<Vec<String>> {
        let bin = find_in_path(plugin_type, &self.path)?;
        self.exec.version_info(&bin)
    }
}
