//! The CNI specification as Rust types, shared by every podwire plugin and the runtime library.
//!
//! - [`config`]: a plugin's config and conflists, keeping unknown fields for chaining
//! - [`result`]: results of every version (0.1.0 – 1.1.0) and conversion between them
//! - [`error`]: the spec's error codes and error JSON
//! - [`validate`]: libcni's rules for container IDs, network and interface names
//! - [`args`]: `CNI_ARGS` parsing
//! - [`addr`]: subnets read as Go reads them (no leading-zero octets)
//! - [`skel`]: the plugin entry point (environment, dispatch, panics → error JSON)
//! - [`invoke`]: exec'ing a delegate plugin (e.g. IPAM) as libcni does
//! - [`log`]: stderr / log-file logging, never stdout
//! - [`trace`]: the timed steps of one operation, one JSON line in the log file

pub mod addr;
pub mod args;
pub mod config;
pub mod error;
pub mod invoke;
pub mod log;
pub mod result;
pub mod skel;
pub mod trace;
pub mod validate;
pub mod version;

pub use config::{IpamConf, NetConf, NetConfList};
pub use error::{Code, Error, Result};
pub use result::{CniResult, Dns, Interface, IpConfig, Route};
pub use skel::{CmdArgs, Command, Plugin};
