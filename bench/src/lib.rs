//! Benchmarks: podwire against the reference plugins and the kernel floor
