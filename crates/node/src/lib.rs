//! Node setup: from a node's podCIDR to a working podwire node, the talk's `configure.sh` made
//! safe to run twice and undoable.
//!
//! - [`setup::setup`] writes the conflist (atomically), creates the bridge with its gateway
//!   address(es), turns on forwarding and installs the nftables table `inet podwire-node`
//!   (forward accept for the cluster CIDR, masquerade from the pod CIDR to outside it), recording
//!   what it did under a state directory; [`setup::teardown`] undoes exactly that.
//! - [`kubernetes`] (feature `kubernetes`) reads the node's `spec.podCIDRs` from the API server.
//! - [`agent`] (feature `kubernetes`) is the node agent: one watch over all Nodes, this node's
//!   setup and the routes to its peers ([`peers`]) kept as the cluster says.
//! - [`cli`] holds the `clap` options and runners the `podwirectl node` subcommands use; it
//!   builds the typed configs ([`NodeConfig`], `agent::AgentConfig`) the rest is given.
//!
//! Everything acts on the calling thread's network namespace, so tests run it inside a throwaway
//! one.

#[cfg(feature = "kubernetes")]
pub mod agent;
pub mod bridge;
pub mod cli;
pub mod config;
pub mod conflist;
pub mod files;
pub mod forwarding;
pub mod install;
#[cfg(feature = "kubernetes")]
pub mod kubernetes;
pub mod peers;
pub mod policy;
pub mod rules;
pub mod setup;
pub mod state;

pub use config::{NodeConfig, Plan};
pub use setup::{setup, teardown, Outcome, TeardownOptions};

/// What a run changed, one human-readable line each.
pub type Changes = Vec<String>;
