//! Turning kernel errors into CNI errors a person can act on.

use cni::error::plugin_code;
use cni::Error;

/// A failed kernel operation: plugin code 100, the operation and errno in the message.
pub fn kernel(e: kernel::Error) -> Error {
    Error::plugin(plugin_code::KERNEL, e.to_string())
}

/// Opening `CNI_NETNS`: a path that is missing or not a netns is the runtime's mistake (code 4).
pub fn netns(path: &str, e: kernel::Error) -> Error {
    Error::invalid_env(e.netns_open_message(path))
}
