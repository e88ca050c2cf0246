//! End-to-end suites: podwire under containerd's CRI and Podman
