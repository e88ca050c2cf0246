//! A watcher-fed mirror of the Nodes (or of any kind), as an agent keeps one: `kube::runtime::watcher` with its
//! own kube client (from a kubeconfig, as the agent's `--kubeconfig`) on its own thread and
//! current-thread runtime, folding the events into a map the test reads.
#![allow(dead_code)]

use futures::StreamExt;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kubesim::{Node, Server};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct MirrorState {
    /// name -> podCIDR (empty when none), as the mirror last saw it (for other kinds: key ->
    /// summary, see [`Mirror::of`]).
    pub nodes: BTreeMap<String, String>,
    /// "apply n1 10.1.0.0/24", "delete n1", "init", "init-done", "error …", in order.
    pub log: Vec<String>,
    buffer: BTreeMap<String, String>,
}

pub struct Mirror {
    state: Arc<(Mutex<MirrorState>, Condvar)>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn cidr(node: &Node) -> String {
    node.spec
        .as_ref()
        .and_then(|s| s.pod_cidr.clone())
        .unwrap_or_default()
}

fn name(node: &Node) -> String {
    node.metadata.name.clone().unwrap_or_default()
}

impl Mirror {
    pub fn start(kubeconfig: &Path, config: watcher::Config) -> Mirror {
        Mirror::start_in(None, kubeconfig, config)
    }

    /// The same, its thread inside the network namespace at `netns` (as an agent in its node).
    pub fn start_in(netns: Option<&Path>, kubeconfig: &Path, config: watcher::Config) -> Mirror {
        Mirror::of::<Node>(netns, kubeconfig, config, |n| (name(n), cidr(n)))
    }

    /// A mirror of every `K` (all namespaces): `describe` gives an object's key and the summary
    /// the mirror keeps of it (and logs: "apply KEY SUMMARY").
    pub fn of<K>(
        netns: Option<&Path>,
        kubeconfig: &Path,
        config: watcher::Config,
        describe: fn(&K) -> (String, String),
    ) -> Mirror
    where
        K: kube::Resource<DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug
            + Send
            + 'static,
    {
        let netns = netns.map(Path::to_path_buf);
        let state = Arc::new((Mutex::new(MirrorState::default()), Condvar::new()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = state.clone();
        let kubeconfig = kubeconfig.to_path_buf();
        let thread = std::thread::spawn(move || {
            let _inside = netns.map(|path| {
                let ns = kernel::Netns::open(&path).unwrap();
                ns.enter().unwrap()
            });
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let client = client(&kubeconfig).await;
                let api: kube::Api<K> = kube::Api::all(client);
                let mut events = watcher::watcher(api, config).default_backoff().boxed();
                let fold = async {
                    while let Some(event) = events.next().await {
                        let (lock, wake) = &*shared;
                        let mut s = lock.lock().unwrap();
                        match event {
                            Ok(Event::Init) => {
                                s.buffer.clear();
                                s.log.push("init".into());
                            }
                            Ok(Event::InitApply(o)) => {
                                let (k, v) = describe(&o);
                                s.buffer.insert(k, v);
                            }
                            Ok(Event::InitDone) => {
                                s.nodes = std::mem::take(&mut s.buffer);
                                s.log.push("init-done".into());
                            }
                            Ok(Event::Apply(o)) => {
                                let (k, v) = describe(&o);
                                s.log.push(format!("apply {k} {v}"));
                                s.nodes.insert(k, v);
                            }
                            Ok(Event::Delete(o)) => {
                                let (k, _) = describe(&o);
                                s.log.push(format!("delete {k}"));
                                s.nodes.remove(&k);
                            }
                            Err(e) => s.log.push(format!("error {e}")),
                        }
                        wake.notify_all();
                    }
                };
                tokio::select! {
                    _ = stopped => {}
                    _ = fold => {}
                }
            })
        });
        Mirror {
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Waits until `check` holds on the state; panics with the state after `timeout`.
    pub fn wait(&self, what: &str, timeout: Duration, check: impl Fn(&MirrorState) -> bool) {
        let end = Instant::now() + timeout;
        let (lock, wake) = &*self.state;
        let mut s = lock.lock().unwrap();
        while !check(&s) {
            let left = end.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {what}: nodes {:?}, log {:?}",
                s.nodes,
                s.log
            );
            s = wake.wait_timeout(s, left).unwrap().0;
        }
    }

    /// Waits until the mirror holds exactly `want` (name -> podCIDR).
    pub fn wait_for_nodes(&self, want: &BTreeMap<String, String>) {
        self.wait("the nodes", Duration::from_secs(10), |s| &s.nodes == want);
    }

    pub fn with<T>(&self, read: impl FnOnce(&MirrorState) -> T) -> T {
        read(&self.state.0.lock().unwrap())
    }

    pub fn log(&self) -> Vec<String> {
        self.with(|s| s.log.clone())
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A kube client from a kubeconfig file, as the agent makes one.
pub async fn client(kubeconfig: &Path) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

/// A server on 127.0.0.1 with its kubeconfig written to a unique temporary file.
pub struct TestServer {
    pub server: Server,
    pub kubeconfig: PathBuf,
}

impl TestServer {
    pub fn start(options: kubesim::Options) -> TestServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = Server::start_with(listener, options).unwrap();
        let kubeconfig = std::env::temp_dir().join(format!(
            "kubesim-{}-{}.kubeconfig",
            std::process::id(),
            server.local_addr().port()
        ));
        server.write_kubeconfig(&kubeconfig).unwrap();
        TestServer { server, kubeconfig }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.kubeconfig);
    }
}

/// The server's Nodes as name -> podCIDR, to compare with a mirror.
pub fn expected(server: &Server) -> BTreeMap<String, String> {
    server.nodes().iter().map(|n| (name(n), cidr(n))).collect()
}

/// The Status of a failed kube call: (code, reason, message).
pub fn api_status(e: kube::Error) -> (u16, String, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.reason, s.message),
        other => panic!("not an API error: {other}"),
    }
}

/// One plain HTTP/1.1 request (`Connection: close`): (status code, body).
pub fn http(addr: std::net::SocketAddr, method: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    write!(
        conn,
        "{method} {path} HTTP/1.1\r\nHost: kubesim\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    let code = response[9..12].parse().unwrap();
    let body = response.split_once("\r\n\r\n").unwrap().1.to_string();
    (code, body)
}

/// Runs an async block on a fresh current-thread runtime (tests are sync: the server and the
/// mirrors have their own threads).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}
