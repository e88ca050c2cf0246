//! Benchmarks: podwire against the reference plugins (`bridge` + `host-local`) and the kernel
//! floor, side by side in one run. The binary `podwire-bench` (src/main.rs) runs them; the
//! modules are its parts:
//!
//! - [`scene`]: the throwaway node netns, pod netns and state dir, cleaned up on exit/Ctrl-C
//! - [`spawn`]: one plugin process, timed spawn → exit, peak RSS from `wait4`
//! - [`subjects`]: the plugins as configured for the run, the process floor
//! - [`floor`]: the kernel floor, in-process
//! - [`phases`]: the interleaved loops (sequential, growth, concurrent)
//! - [`ipam_alloc`]: IPAM alone, read from podwire-ipam's own benchmark
//! - [`cri`]: the hook for measuring under containerd's CRI
//! - [`chain`]: the whole node chain (loopback, main plugin, IPAM, portmap) through the runtime
//!   library, and the portmap plugin alone
//! - [`range`]: the portmap plugin alone with a 5,000-port range
//! - [`report`], [`table`], [`svg`], [`machine`], [`stats`]: the output

pub mod chain;
pub mod cri;
pub mod floor;
pub mod ipam_alloc;
pub mod machine;
pub mod phases;
pub mod range;
pub mod report;
pub mod scene;
pub mod spawn;
pub mod stats;
pub mod subjects;
pub mod svg;
pub mod table;
