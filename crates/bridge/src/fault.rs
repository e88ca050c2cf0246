//! Named steps of ADD at which the crash suite can SIGKILL the plugin (`fault-injection` feature,
//! `PODWIRE_FAULT=<step>`); a no-op in normal builds. See `ipam::fault`.

pub use ipam::fault::point;
