//! Allocation + release cost at the 1st, 1,000th and 4,000th allocation in a /20, for
//! podwire-ipam (exec'd like a runtime does, and called in-process like the bridge plugin does)
//! and Debian's reference host-local, A/B interleaved in the same run.
//!
//! `cargo bench -p podwire-ipam --bench alloc` (about a minute). Not a test: it asserts nothing.
//!
//! Each implementation has its own state directory, pre-filled to N-1 allocations by writing
//! host-local's files directly (both read them; podwire indexes them once, in an untimed
//! warm-up). Then one attachment is added and deleted, `REPS` times, and the median is shown.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PODWIRE: &str = env!("CARGO_BIN_EXE_podwire-ipam");
const HOST_LOCAL: &str = "/usr/lib/cni/host-local";
const CHECKPOINTS: [usize; 3] = [1, 1000, 4000];
const REPS: usize = 31;
const WARMUP: usize = 2;
const NET: &str = "bench";

#[derive(Clone, Copy, PartialEq)]
enum Impl {
    HostLocal,
    PodwireExec,
    PodwireInProcess,
}

impl Impl {
    fn name(self) -> &'static str {
        match self {
            Impl::HostLocal => "host-local (exec)",
            Impl::PodwireExec => "podwire-ipam (exec)",
            Impl::PodwireInProcess => "podwire-ipam (in-process)",
        }
    }
}

struct Subject {
    which: Impl,
    dir: PathBuf,
    conf: Vec<u8>,
    filled: usize,
}

/// The n-th address of 10.200.0.0/20 after the gateway (.1).
fn nth(n: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 200, 0, 0)) + 2 + n as u32)
}

impl Subject {
    fn new(which: Impl, root: &Path) -> Subject {
        let dir = root.join(match which {
            Impl::HostLocal => "hl",
            Impl::PodwireExec => "pw-exec",
            Impl::PodwireInProcess => "pw-inproc",
        });
        let kind = if which == Impl::HostLocal {
            "host-local"
        } else {
            "podwire-ipam"
        };
        let conf = serde_json::json!({
            "cniVersion": "1.0.0", "name": NET, "type": "bench",
            "ipam": {"type": kind, "subnet": "10.200.0.0/20", "dataDir": dir}
        });
        Subject {
            which,
            dir,
            conf: conf.to_string().into_bytes(),
            filled: 0,
        }
    }

    /// Brings the directory to `n` allocations, written in host-local's format.
    fn fill_to(&mut self, n: usize) {
        let net = self.dir.join(NET);
        std::fs::create_dir_all(&net).unwrap();
        while self.filled < n {
            let ip = nth(self.filled);
            std::fs::write(
                net.join(ip.to_string()),
                format!("pre{}\r\neth0", self.filled),
            )
            .unwrap();
            self.filled += 1;
        }
        if n > 0 {
            std::fs::write(net.join("last_reserved_ip.0"), nth(n - 1).to_string()).unwrap();
        }
    }

    fn call(&self, command: &str, id: &str) {
        match self.which {
            Impl::PodwireInProcess => {
                let a = cni::CmdArgs {
                    command: cni::Command::parse(command).unwrap(),
                    container_id: id.into(),
                    netns: "/var/run/netns/bench".into(),
                    ifname: "eth0".into(),
                    args: Default::default(),
                    path: Vec::new(),
                    stdin: self.conf.clone(),
                    conf: cni::NetConf::parse(&self.conf).unwrap(),
                };
                let r = if command == "ADD" {
                    ipam::add(&a).map(|_| ())
                } else {
                    ipam::del(&a)
                };
                r.unwrap_or_else(|e| panic!("{command} {id}: {e}"));
            }
            _ => {
                let bin = if self.which == Impl::HostLocal {
                    HOST_LOCAL
                } else {
                    PODWIRE
                };
                let mut child = Command::new(bin)
                    .env_clear()
                    .env("CNI_COMMAND", command)
                    .env("CNI_CONTAINERID", id)
                    .env("CNI_NETNS", "/var/run/netns/bench")
                    .env("CNI_IFNAME", "eth0")
                    .env("CNI_PATH", "/usr/lib/cni")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                child.stdin.take().unwrap().write_all(&self.conf).unwrap();
                let out = child.wait_with_output().unwrap();
                assert!(
                    out.status.success(),
                    "{} {command} {id}: {}",
                    self.which.name(),
                    String::from_utf8_lossy(&out.stdout)
                );
            }
        }
    }

    fn add_del(&self, id: &str) -> Duration {
        let t = Instant::now();
        self.call("ADD", id);
        self.call("DEL", id);
        t.elapsed()
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:8.3} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    if !Path::new(HOST_LOCAL).exists() {
        eprintln!("{HOST_LOCAL} is missing (apt-get install containernetworking-plugins)");
        std::process::exit(1);
    }
    let root = std::env::temp_dir().join(format!("podwire-ipam-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let order = [Impl::HostLocal, Impl::PodwireExec, Impl::PodwireInProcess];
    let mut subjects: Vec<Subject> = order.iter().map(|w| Subject::new(*w, &root)).collect();
    // medians[checkpoint][impl]
    let mut medians = Vec::new();
    let started = Instant::now();
    for &n in &CHECKPOINTS {
        for s in subjects.iter_mut() {
            s.fill_to(n - 1);
            for w in 0..WARMUP {
                s.add_del(&format!("warm{n}x{w}"));
            }
        }
        let mut samples = vec![Vec::new(); subjects.len()];
        for rep in 0..REPS {
            // Interleaved, with the order rotated each round so none always goes first.
            for k in 0..subjects.len() {
                let i = (k + rep) % subjects.len();
                samples[i].push(subjects[i].add_del(&format!("probe{n}x{rep}")));
            }
        }
        medians.push(samples.into_iter().map(median).collect::<Vec<_>>());
    }
    println!(
        "alloc+release of one attachment in 10.200.0.0/20 (4093 addresses), median of {REPS}, \
         at the N-th allocation:"
    );
    print!("{:<27}", "");
    for n in CHECKPOINTS {
        print!("{:>14}", format!("N={n}"));
    }
    println!("{:>16}", "N=4000 / N=1");
    for (i, w) in order.iter().enumerate() {
        print!("{:<27}", w.name());
        for m in &medians {
            print!("{:>14}", ms(m[i]));
        }
        let ratio = medians[2][i].as_secs_f64() / medians[0][i].as_secs_f64();
        println!("{:>15.2}x", ratio);
    }
    print!("{:<27}", "host-local / podwire exec");
    for m in &medians {
        print!("{:>13.1}x", m[0].as_secs_f64() / m[1].as_secs_f64());
    }
    println!();
    println!("(total {:.1} s)", started.elapsed().as_secs_f64());
    let _ = std::fs::remove_dir_all(&root);
}
