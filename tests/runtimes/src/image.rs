//! Images without a registry: a static `pause` (the sandbox's PID 1) packed as an OCI image
//! archive for `ctr images import`, and a busybox rootfs tarball for `podman import`.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The sandbox image containerd's CRI is configured with (`sandbox_image`).
pub const PAUSE_IMAGE: &str = "localhost/podwire/pause:e2e";

/// PID 1 of a sandbox: sleeps until told to stop. A PID 1 ignores signals it has no handler for,
/// so SIGTERM/SIGINT get one.
const PAUSE_C: &str = r#"#include <signal.h>
#include <unistd.h>
static void stop(int sig) { (void)sig; _exit(0); }
int main(void) {
    signal(SIGTERM, stop);
    signal(SIGINT, stop);
    for (;;) pause();
}
"#;

/// Debian's `busybox-static`: ping, ip, sleep and a shell in one static binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// Compiles the static pause binary into `dir` with the C compiler (`build-essential`).
pub fn build_pause(dir: &Path) -> PathBuf {
    crate::cmd::require("cc", "build-essential");
    std::fs::create_dir_all(dir).expect("create build dir");
    let src = dir.join("pause.c");
    let bin = dir.join("pause");
    std::fs::write(&src, PAUSE_C).expect("write pause.c");
    crate::cmd::run(
        "cc",
        &[
            "-static",
            "-Os",
            "-s",
            "-o",
            bin.to_str().unwrap(),
            src.to_str().unwrap(),
        ],
    );
    bin
}

/// One file of an image layer.
pub struct Entry {
    pub path: String,
    pub kind: EntryKind,
}

pub enum EntryKind {
    Dir,
    File { data: Vec<u8>, mode: u32 },
    Symlink(String),
}

/// A layer (plain tar) holding `entries`, owned by root.
pub fn layer_tar(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_ustar();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        let path = e.path.trim_start_matches('/');
        match &e.kind {
            EntryKind::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, path, std::io::empty())
            }
            EntryKind::File { data, mode } => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, path, data.as_slice())
            }
            EntryKind::Symlink(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, path, target)
            }
        }
        .unwrap_or_else(|err| panic!("tar entry {}: {err}", e.path));
    }
    b.into_inner().expect("finish layer tar")
}

fn sha256(data: &[u8]) -> String {
    let hash = Sha256::digest(data);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// An OCI image layout archive (what `ctr images import` reads) of one layer, named `reference`
/// through the annotation containerd reads the image name from.
pub fn oci_archive(reference: &str, layer: &[u8], entrypoint: &[&str]) -> Vec<u8> {
    let layer_digest = sha256(layer);
    let config = json!({
        "architecture": oci_arch(),
        "os": "linux",
        "config": {"Entrypoint": entrypoint, "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    })
    .to_string()
    .into_bytes();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha256(&config),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer.len(),
        }],
    })
    .to_string()
    .into_bytes();
    let tag = reference.rsplit_once(':').map_or("latest", |(_, t)| t);
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha256(&manifest),
            "size": manifest.len(),
            "platform": {"architecture": oci_arch(), "os": "linux"},
            "annotations": {
                "io.containerd.image.name": reference,
                "org.opencontainers.image.ref.name": tag,
            },
        }],
    })
    .to_string()
    .into_bytes();

    let blob = |data: &[u8]| Entry {
        path: format!("blobs/sha256/{}", &sha256(data)["sha256:".len()..]),
        kind: EntryKind::File {
            data: data.to_vec(),
            mode: 0o644,
        },
    };
    let file = |path: &str, data: Vec<u8>| Entry {
        path: path.into(),
        kind: EntryKind::File { data, mode: 0o644 },
    };
    let dir = |path: &str| Entry {
        path: path.into(),
        kind: EntryKind::Dir,
    };
    layer_tar(&[
        file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        file("index.json", index),
        dir("blobs"),
        dir("blobs/sha256"),
        blob(&config),
        blob(&manifest),
        blob(layer),
    ])
}

/// The pause image as an OCI archive at `dir/pause.tar`.
pub fn pause_archive(dir: &Path) -> PathBuf {
    let pause = build_pause(dir);
    let data = std::fs::read(&pause).expect("read pause binary");
    let layer = layer_tar(&[Entry {
        path: "pause".into(),
        kind: EntryKind::File { data, mode: 0o755 },
    }]);
    let out = dir.join("pause.tar");
    std::fs::write(&out, oci_archive(PAUSE_IMAGE, &layer, &["/pause"])).expect("write pause.tar");
    out
}

/// The busybox image containerd's CRI runs containers of (`kubectl run --image=busybox`).
pub const BUSYBOX_IMAGE: &str = "localhost/podwire/busybox:e2e";

/// A root filesystem of busybox-static with the applets the suites use, as a tarball for
/// `podman import` at `dir/busybox.tar`.
pub fn busybox_rootfs(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).expect("create image dir");
    let out = dir.join("busybox.tar");
    std::fs::write(&out, busybox_layer()).expect("write busybox.tar");
    out
}

/// The busybox image as an OCI archive at `dir/busybox-oci.tar`, for `ctr images import`.
pub fn busybox_archive(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).expect("create image dir");
    let out = dir.join("busybox-oci.tar");
    let archive = oci_archive(BUSYBOX_IMAGE, &busybox_layer(), &["/bin/sh"]);
    std::fs::write(&out, archive).expect("write busybox-oci.tar");
    out
}

fn busybox_layer() -> Vec<u8> {
    crate::cmd::require("busybox", "busybox-static");
    let data = std::fs::read(BUSYBOX)
        .unwrap_or_else(|e| panic!("{BUSYBOX}: {e}: `apt-get install busybox-static`"));
    let mut entries: Vec<Entry> = ["bin", "dev", "etc", "proc", "sys", "tmp", "run"]
        .iter()
        .map(|d| Entry {
            path: (*d).into(),
            kind: EntryKind::Dir,
        })
        .collect();
    entries.push(Entry {
        path: "bin/busybox".into(),
        kind: EntryKind::File { data, mode: 0o755 },
    });
    for applet in [
        "sh", "ping", "ip", "sleep", "cat", "hostname", "ifconfig", "route", "wget", "httpd",
        "mkdir",
    ] {
        entries.push(Entry {
            path: format!("bin/{applet}"),
            kind: EntryKind::Symlink("busybox".into()),
        });
    }
    layer_tar(&entries)
}

/// Where the DaemonSet's image keeps podwire's binaries (deploy/Dockerfile's `COPY`).
pub const PODWIRE_BIN_DIR: &str = "opt/podwire/bin";

/// What containerd's CRI names an image reference (`podwire:0.1.0` →
/// `docker.io/library/podwire:0.1.0`), as it resolves a pod spec's `image`.
pub fn normalized_reference(image: &str) -> String {
    let (first, rest) = image.split_once('/').unwrap_or(("", image));
    let is_registry = first.contains('.') || first.contains(':') || first == "localhost";
    match (first, is_registry) {
        ("", _) => format!("docker.io/library/{rest}"),
        (_, true) => image.to_string(),
        (_, false) => format!("docker.io/{image}"),
    }
}

/// The podwire node image as deploy/Dockerfile lays it out on distroless/static: the static
/// `binaries` in /opt/podwire/bin, podwirectl the entrypoint, /etc/passwd and /etc/group naming
/// root and nonroot, /tmp; nothing else (no shell, no libc). Written to `dir/podwire-oci.tar`
/// as `reference` (normalized, as containerd names it).
pub fn podwire_archive(dir: &Path, reference: &str, binaries: &[PathBuf]) -> PathBuf {
    std::fs::create_dir_all(dir).expect("create image dir");
    let dir_entry = |p: &str| Entry {
        path: p.into(),
        kind: EntryKind::Dir,
    };
    let file = |p: &str, data: &[u8], mode: u32| Entry {
        path: p.into(),
        kind: EntryKind::File {
            data: data.to_vec(),
            mode,
        },
    };
    let mut entries = vec![
        dir_entry("etc"),
        file(
            "etc/passwd",
            b"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
            0o644,
        ),
        file("etc/group", b"root:x:0:\nnonroot:x:65532:\n", 0o644),
        dir_entry("tmp"),
        dir_entry("opt"),
        dir_entry("opt/podwire"),
        dir_entry(PODWIRE_BIN_DIR),
    ];
    for bin in binaries {
        let data = std::fs::read(bin).unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        let name = bin.file_name().expect("binary name").to_string_lossy();
        entries.push(file(&format!("{PODWIRE_BIN_DIR}/{name}"), &data, 0o755));
    }
    let out = dir.join("podwire-oci.tar");
    let entrypoint = format!("/{PODWIRE_BIN_DIR}/podwirectl");
    let archive = oci_archive(
        &normalized_reference(reference),
        &layer_tar(&entries),
        &[&entrypoint],
    );
    std::fs::write(&out, archive).expect("write podwire-oci.tar");
    out
}

/// The image config of an archive made by [`oci_archive`] (for tests of the packing itself).
pub fn archive_index(archive: &[u8]) -> Value {
    let mut a = tar::Archive::new(archive);
    for entry in a.entries().expect("read archive") {
        let mut entry = entry.expect("archive entry");
        if entry.path().expect("entry path").to_str() == Some("index.json") {
            return serde_json::from_reader(&mut entry).expect("index.json is JSON");
        }
    }
    panic!("archive has no index.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(archive: &[u8]) -> std::collections::HashMap<String, Vec<u8>> {
        let mut a = tar::Archive::new(archive);
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let path = e.path().unwrap().to_string_lossy().into_owned();
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut data).unwrap();
                (path, data)
            })
            .collect()
    }

    #[test]
    fn references_are_normalized_as_containerd_does() {
        assert_eq!(
            normalized_reference("podwire:0.1.0"),
            "docker.io/library/podwire:0.1.0"
        );
        assert_eq!(
            normalized_reference("me/podwire:1"),
            "docker.io/me/podwire:1"
        );
        assert_eq!(
            normalized_reference("ghcr.io/me/podwire:1"),
            "ghcr.io/me/podwire:1"
        );
        assert_eq!(normalized_reference(PAUSE_IMAGE), PAUSE_IMAGE);
    }

    #[test]
    fn oci_archive_is_a_consistent_image_layout() {
        let layer = layer_tar(&[Entry {
            path: "/pause".into(),
            kind: EntryKind::File {
                data: b"\x7fELF".to_vec(),
                mode: 0o755,
            },
        }]);
        let archive = oci_archive("localhost/x/pause:t1", &layer, &["/pause"]);
        let files = files(&archive);
        assert_eq!(files["oci-layout"], br#"{"imageLayoutVersion":"1.0.0"}"#);
        let index = archive_index(&archive);
        let m = &index["manifests"][0];
        assert_eq!(
            m["annotations"]["io.containerd.image.name"],
            "localhost/x/pause:t1"
        );
        assert_eq!(m["annotations"]["org.opencontainers.image.ref.name"], "t1");
        // every digest names a blob whose content hashes to it, with the stated size
        let blob = |d: &serde_json::Value| {
            let d = d.as_str().unwrap();
            let data = &files[&format!("blobs/sha256/{}", &d[7..])];
            assert_eq!(sha256(data), d);
            data.clone()
        };
        let manifest_bytes = blob(&m["digest"]);
        assert_eq!(m["size"], manifest_bytes.len());
        let manifest: serde_json::Value = serde_json::from_slice(&manifest_bytes).unwrap();
        let config: serde_json::Value =
            serde_json::from_slice(&blob(&manifest["config"]["digest"])).unwrap();
        assert_eq!(blob(&manifest["layers"][0]["digest"]), layer);
        assert_eq!(config["rootfs"]["diff_ids"][0], sha256(&layer));
        assert_eq!(config["config"]["Entrypoint"][0], "/pause");
        // the layer holds the file at a relative path, executable, owned by root
        let mut l = tar::Archive::new(layer.as_slice());
        let e = l.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(e.path().unwrap().to_str(), Some("pause"));
        assert_eq!(e.header().mode().unwrap(), 0o755);
        assert_eq!(e.header().uid().unwrap(), 0);
    }
}
