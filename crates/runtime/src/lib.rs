//! podwire's runtime library: the libcni side of CNI, for runtimes and tools.
//!
//! - [`conf`]: load networks from a config directory as libcni does (`*.conflist` first, then
//!   single `*.conf`/`*.json` configs upconverted to lists)
//! - [`api`]: run a list: ADD (chained `prevResult`), CHECK, DEL (reverse, cached result),
//!   GC (stale cached attachments, then plugin GC) and STATUS
//! - [`exec`]: find and run one plugin: `CNI_*` environment, ETXTBSY retry, timeout
//! - [`cache`]: the result cache in libcni's `cniCacheV1` format
//! - [`error`]: errors naming the file or plugin and carrying the CNI code

pub mod api;
mod b64;
pub mod cache;
pub mod conf;
pub mod error;
pub mod exec;

pub use api::{
    build_plugin_config, result_json, CniConfig, GcAttachment, GcOutcome, PluginRun, RuntimeConf,
};
pub use cache::{Cache, CacheEntry};
pub use conf::{load_network, NetworkConfigList, PluginConfig};
pub use error::{Error, Op, PluginRef, Result};
pub use exec::{find_in_path, Args, Exec, Output};
