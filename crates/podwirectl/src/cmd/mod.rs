//! The subcommands, one module per family: each takes its parsed flags, calls the library that
//! does the work, and prints.

pub mod gc;
pub mod inspect;
pub mod netns;
pub mod node;
pub mod plugin;
