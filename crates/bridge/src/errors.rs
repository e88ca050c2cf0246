//! Turning kernel errors into CNI errors a person can act on.

use cni::error::plugin_code;
use cni::Error;

/// A failed kernel operation: plugin code 100, the operation and errno in the message.
pub fn kernel(e: kernel::Error) -> Error {
    Error::plugin(plugin_code::KERNEL, e.to_string())
}

/// Opening `CNI_NETNS`: a path that is missing or not a netns is the runtime's mistake (code 4).
pub fn netns(path: &str, e: kernel::Error) -> Error {
    if e.is_not_found() {
        Error::invalid_env(format!("CNI_NETNS {path:?} does not exist"))
    } else if e.is_not_netns() {
        Error::invalid_env(format!("CNI_NETNS {path:?} is not a network namespace"))
    } else {
        Error::invalid_env(format!("cannot open CNI_NETNS {path:?}: {e}"))
    }
}
