//! The server handle: runs the HTTP side on its own thread (a current-thread tokio runtime) on a
//! listener the caller made, so a test can bind it inside a network namespace; every method here
//! is synchronous and callable from any thread.

use crate::error::ApiError;
use crate::kinds::{Kind, NODES};
use crate::store::{Json, Part, Store};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::Metadata;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};

/// How a watch from a resourceVersion older than the kept history is refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Gone {
    /// HTTP 200, then one `{"type":"ERROR","object":<Status 410 Expired>}` line, then the end of
    /// the stream: what the API server does (kube's watcher then re-lists).
    #[default]
    InStream,
    /// HTTP 410 with the Status as the body. The API server answers a *list* this way (expired
    /// `continue` or `resourceVersionMatch=Exact`), never a watch; kube 5's watcher keeps
    /// retrying such a watch from the same resourceVersion instead of re-listing.
    HttpStatus,
}

/// Settings at start; the `set_*` methods change them while running.
#[derive(Clone, Debug)]
pub struct Options {
    /// Events kept for watches and consistent paged lists (the watch cache's window).
    pub history_limit: usize,
    /// How often a watch with `allowWatchBookmarks=true` gets a BOOKMARK (the API server: ~1 min).
    pub bookmark_interval: Duration,
    /// How long a watch without `timeoutSeconds` stays open (the API server: 30–60 min).
    pub default_watch_timeout: Duration,
    pub gone: Gone,
    /// Serve HTTPS with a CA and certificate made at start ([`Server::ca_pem`]); the
    /// certificate names the listener's address, localhost and the in-cluster names
    /// (kubernetes.default.svc…).
    pub tls: bool,
    /// More names or addresses for the certificate (e.g. the address clients use when the
    /// listener is bound to 0.0.0.0).
    pub tls_names: Vec<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            history_limit: 10_000,
            bookmark_interval: Duration::from_secs(60),
            default_watch_timeout: Duration::from_secs(1800),
            gone: Gone::InStream,
            tls: false,
            tls_names: Vec::new(),
        }
    }
}

/// What a bearer token may do: `user` for the messages, and (resource, verb) pairs such as
/// ("nodes", "watch") or ("nodes/status", "patch").
#[derive(Clone, Debug)]
pub(crate) struct Grant {
    pub user: String,
    pub allowed: HashSet<(String, String)>,
}

/// Requests answered so far, by kind, and the watches open now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// GET on the collection without `watch`.
    pub lists: u64,
    /// GET on the collection with `watch=1|true`.
    pub watches: u64,
    /// GET of one Node (or its status).
    pub gets: u64,
    /// POST, PUT, PATCH, DELETE.
    pub writes: u64,
    /// Discovery, health and anything unknown (admin endpoints are not counted).
    pub other: u64,
    /// Watches answered "410 Expired", in either form.
    pub expired: u64,
    pub open_watches: u64,
}

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Controls {
    /// Bumped by `close_watches`: every watch opened before ends.
    pub close_epoch: u64,
    pub paused: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub bookmark_interval: Duration,
    pub default_watch_timeout: Duration,
    pub gone: Gone,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub lists: AtomicU64,
    pub watches: AtomicU64,
    pub gets: AtomicU64,
    pub writes: AtomicU64,
    pub other: AtomicU64,
    pub expired: AtomicU64,
    pub open_watches: AtomicU64,
}

const REQUEST_LOG: usize = 1000;

/// What the HTTP side and the handle share.
pub(crate) struct Shared {
    store: Mutex<Store>,
    /// The current resourceVersion: wakes the watches after every change.
    pub changes: watch::Sender<u64>,
    pub controls: watch::Sender<Controls>,
    pub settings: Mutex<Settings>,
    pub counters: Counters,
    requests: Mutex<VecDeque<String>>,
    pub addr: SocketAddr,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Empty: anyone may do anything. Otherwise requests need one of these bearer tokens.
    grants: Mutex<HashMap<String, Grant>>,
}

impl Shared {
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs a change on the store and wakes the watches if it changed anything.
    pub fn write<T>(&self, change: impl FnOnce(&mut Store) -> T) -> T {
        let mut store = self.store();
        let before = store.rv();
        let out = change(&mut store);
        if store.rv() != before {
            self.changes.send_replace(store.rv());
        }
        out
    }

    pub fn settings(&self) -> Settings {
        self.settings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn record(&self, line: String) {
        let mut log = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        if log.len() == REQUEST_LOG {
            log.pop_front();
        }
        log.push_back(line);
    }

    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            lists: get(&c.lists),
            watches: get(&c.watches),
            gets: get(&c.gets),
            writes: get(&c.writes),
            other: get(&c.other),
            expired: get(&c.expired),
            open_watches: get(&c.open_watches),
        }
    }

    /// Authentication and RBAC as the API server answers them: 401 without a known bearer
    /// token (once any token is granted), 403 for a verb the token's grant lacks.
    pub fn authorize(
        &self,
        authorization: Option<&str>,
        resource: &str,
        group: &str,
        verb: &str,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> Result<(), ApiError> {
        let grants = self.grants.lock().unwrap_or_else(|p| p.into_inner());
        if grants.is_empty() {
            return Ok(());
        }
        let token = authorization
            .and_then(|a| a.strip_prefix("Bearer "))
            .unwrap_or("");
        let grant = grants.get(token).ok_or_else(ApiError::unauthorized)?;
        if grant
            .allowed
            .contains(&(resource.to_string(), verb.to_string()))
        {
            return Ok(());
        }
        Err(ApiError::forbidden(
            &grant.user,
            verb,
            resource,
            group,
            namespace,
            name,
        ))
    }

    pub fn close_watches(&self) {
        self.controls.send_modify(|c| c.close_epoch += 1);
    }

    pub fn set_paused(&self, paused: bool) {
        self.controls.send_modify(|c| c.paused = paused);
    }

    pub fn set_gone(&self, gone: Gone) {
        self.settings.lock().unwrap_or_else(|p| p.into_inner()).gone = gone;
    }

    pub fn set_bookmark_interval(&self, every: Duration) {
        self.settings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .bookmark_interval = every;
    }
}

/// A running stand-in API server. Dropping it stops the server and closes every connection.
pub struct Server {
    shared: Arc<Shared>,
    runtime: tokio::runtime::Handle,
    ca_pem: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves on `listener` (bound by the caller, in whatever network namespace it wants) with
    /// the default [`Options`].
    pub fn start(listener: TcpListener) -> io::Result<Server> {
        Server::start_with(listener, Options::default())
    }

    pub fn start_with(listener: TcpListener, options: Options) -> io::Result<Server> {
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let store = Store::new(options.history_limit);
        let tls = match options.tls {
            true => Some(crate::tls::make(addr.ip(), &options.tls_names)?),
            false => None,
        };
        let shared = Arc::new(Shared {
            changes: watch::Sender::new(store.rv()),
            store: Mutex::new(store),
            controls: watch::Sender::new(Controls::default()),
            settings: Mutex::new(Settings {
                bookmark_interval: options.bookmark_interval,
                default_watch_timeout: options.default_watch_timeout,
                gone: options.gone,
            }),
            counters: Counters::default(),
            requests: Mutex::new(VecDeque::new()),
            addr,
            tls: tls.as_ref().map(|t| t.config.clone()),
            grants: Mutex::new(HashMap::new()),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (stop, stopped) = oneshot::channel();
        let serving = shared.clone();
        let handle = runtime.handle().clone();
        let thread = std::thread::Builder::new()
            .name("kubesim".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => {
                            crate::http::serve(listener, serving, async {
                                let _ = stopped.await;
                            })
                            .await
                        }
                        Err(e) => eprintln!("kubesim: cannot serve on {addr}: {e}"),
                    }
                })
            })?;
        Ok(Server {
            shared,
            runtime: handle,
            ca_pem: tls.map(|t| t.ca_pem),
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Binds 127.0.0.1 on a free port (in the caller's network namespace) and serves there.
    pub fn start_local() -> io::Result<Server> {
        Server::start(TcpListener::bind("127.0.0.1:0")?)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// Serves on one more listener, e.g. 127.0.0.1 inside each node's network namespace, so
    /// every node reaches the one server on its own loopback without routes to it. With TLS,
    /// its address must be in the certificate (loopback is; else [`Options::tls_names`]).
    pub fn add_listener(&self, listener: TcpListener) -> io::Result<SocketAddr> {
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = self.shared.clone();
        // Ends with the runtime, when the Server is dropped.
        self.runtime.spawn(async move {
            match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => crate::http::serve(listener, shared, std::future::pending()).await,
                Err(e) => eprintln!("kubesim: cannot serve on {addr}: {e}"),
            }
        });
        Ok(addr)
    }

    /// `http://ip:port` (`https://` with [`Options::tls`]) of the first listener (127.0.0.1 /
    /// [::1] if it was bound to any address).
    pub fn url(&self) -> String {
        self.url_at(self.local_addr())
    }

    /// The same for the listener at `addr` (see [`Server::add_listener`]).
    pub fn url_at(&self, mut addr: SocketAddr) -> String {
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{addr}")
    }

    /// The CA certificate (PEM) clients must trust, with [`Options::tls`].
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// A kubeconfig for this server, as a YAML document: its URL, the CA with TLS, no
    /// credentials (see [`Server::kubeconfig_with_token`]).
    pub fn kubeconfig(&self) -> String {
        kubeconfig_yaml(&self.url(), self.ca_pem(), None)
    }

    /// A kubeconfig for the listener at `addr` (see [`Server::add_listener`]).
    pub fn kubeconfig_at(&self, addr: SocketAddr) -> String {
        kubeconfig_yaml(&self.url_at(addr), self.ca_pem(), None)
    }

    /// A kubeconfig whose user presents `token` (see [`Server::grant`]).
    pub fn kubeconfig_with_token(&self, token: &str) -> String {
        kubeconfig_yaml(&self.url(), self.ca_pem(), Some(token))
    }

    /// Writes what kubelet mounts at /var/run/secrets/kubernetes.io/serviceaccount into `dir`:
    /// `token`, `ca.crt` (needs [`Options::tls`]: kube's in-cluster config is https only) and
    /// `namespace` ("kube-system"). The pod also needs `KUBERNETES_SERVICE_HOST` and
    /// `KUBERNETES_SERVICE_PORT` set to [`Server::local_addr`].
    pub fn write_service_account(&self, dir: &Path, token: &str) -> io::Result<()> {
        let ca = self.ca_pem().ok_or_else(|| {
            io::Error::other("a service account needs the server started with Options::tls")
        })?;
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("token"), token)?;
        std::fs::write(dir.join("ca.crt"), ca)?;
        std::fs::write(dir.join("namespace"), "kube-system")
    }

    /// From now on requests need a bearer token, and `token` may do `verbs` on `resource`
    /// ("nodes", "pods", "namespaces", "networkpolicies", or "nodes/status" for a status
    /// subresource) in every namespace as `user`, as a ClusterRole bound to that user would
    /// allow. Call again to add resources.
    pub fn grant(&self, token: &str, user: &str, resource: &str, verbs: &[&str]) {
        let mut grants = self.shared.grants.lock().unwrap_or_else(|p| p.into_inner());
        let grant = grants.entry(token.to_string()).or_insert_with(|| Grant {
            user: user.to_string(),
            allowed: HashSet::new(),
        });
        for verb in verbs {
            grant
                .allowed
                .insert((resource.to_string(), verb.to_string()));
        }
    }

    /// Writes [`Server::kubeconfig`] to `path` (for an agent's `--kubeconfig`).
    pub fn write_kubeconfig(&self, path: &Path) -> io::Result<()> {
        std::fs::write(path, self.kubeconfig())
    }

    // ---- Objects, directly (no HTTP; watches see the changes as if made through the API) ----
    //
    // For every kind kubesim serves (Node, Namespace, Pod, NetworkPolicy); `namespace` is ""
    // for cluster-scoped kinds. A namespaced object needs its namespace to exist (404).

    /// Adds an object; fails (409 AlreadyExists) if one has its name. Returns it as stored
    /// (uid, creationTimestamp, resourceVersion set).
    pub fn create<K: Object>(&self, obj: &K) -> Result<K, ApiError> {
        let (kind, ns, _) = identify(obj);
        let value = to_value(obj);
        self.shared
            .write(|s| s.create(kind, &ns, value))
            .map(|json| parse(&json))
    }

    /// Creates the object or replaces the one with its name (everything as given; uid and
    /// creationTimestamp kept). One MODIFIED event, none if nothing changed.
    pub fn apply<K: Object>(&self, obj: &K) -> Result<K, ApiError> {
        let (kind, ns, name) = identify(obj);
        let mut value = to_value(obj);
        value["metadata"]
            .as_object_mut()
            .expect("metadata")
            .remove("resourceVersion");
        let json = self.shared.write(|s| match s.get(&kind.key(&ns, &name)) {
            Some(_) => s.update(kind, &ns, &name, value, Part::Whole),
            None => s.create(kind, &ns, value),
        });
        json.map(|json| parse(&json))
    }

    /// Changes an object in place (read, `change`, write under one lock: no conflict possible).
    pub fn modify<K: Object>(
        &self,
        namespace: &str,
        name: &str,
        change: impl FnOnce(&mut K),
    ) -> Result<K, ApiError> {
        let kind = kind_of::<K>();
        self.shared.write(|s| {
            let current = s
                .get(&kind.key(namespace, name))
                .ok_or_else(|| ApiError::not_found(kind.qualified, name))?;
            let mut obj: K = parse(&current);
            change(&mut obj);
            s.update(kind, namespace, name, to_value(&obj), Part::Whole)
                .map(|json| parse(&json))
        })
    }

    /// Deletes an object (a Namespace: with everything in it); returns its last state (stamped
    /// with the deletion's resourceVersion).
    pub fn delete<K: Object>(&self, namespace: &str, name: &str) -> Result<K, ApiError> {
        let kind = kind_of::<K>();
        self.shared
            .write(|s| s.delete(kind, namespace, name))
            .map(|json| parse(&json))
    }

    pub fn get<K: Object>(&self, namespace: &str, name: &str) -> Option<K> {
        let key = kind_of::<K>().key(namespace, name);
        self.shared.store().get(&key).map(|json| parse(&json))
    }

    /// Every object of the kind (of one namespace, or of all: None), in namespace and name order.
    pub fn list<K: Object>(&self, namespace: Option<&str>) -> Vec<K> {
        let prefix = kind_of::<K>().prefix(namespace);
        let all: Vec<Json> = self.shared.store().all(&prefix).cloned().collect();
        all.iter().map(|json| parse(json)).collect()
    }

    // ---- Nodes (the same, named as the multi-node tests have always called them) ----

    pub fn create_node(&self, node: &Node) -> Result<Node, ApiError> {
        self.create(node)
    }

    pub fn apply_node(&self, node: &Node) -> Node {
        self.apply(node)
            .expect("a Node that serializes is a valid Node")
    }

    pub fn modify_node(
        &self,
        name: &str,
        change: impl FnOnce(&mut Node),
    ) -> Result<Node, ApiError> {
        self.modify("", name, change)
    }

    pub fn delete_node(&self, name: &str) -> Result<Node, ApiError> {
        self.delete("", name)
    }

    /// Adds many Nodes under one lock (the scale fill); fails on the first name taken, keeping
    /// those added before it. Returns the resourceVersion after the last.
    pub fn add_nodes(&self, nodes: impl IntoIterator<Item = Node>) -> Result<u64, ApiError> {
        self.shared.write(|s| {
            for node in nodes {
                s.create(&NODES, "", to_value(&node))?;
            }
            Ok(s.rv())
        })
    }

    pub fn node(&self, name: &str) -> Option<Node> {
        self.get("", name)
    }

    /// Every Node, in name order.
    pub fn nodes(&self) -> Vec<Node> {
        self.list(None)
    }

    pub fn node_count(&self) -> usize {
        self.shared.store().count(&NODES.prefix(None))
    }

    /// The newest resourceVersion (what a list now would answer).
    pub fn resource_version(&self) -> u64 {
        self.shared.store().rv()
    }

    // ---- Test controls ----

    /// Ends every open watch now (a clean end of the chunked stream, as at a timeout or an API
    /// server restart); the clients re-watch from their last resourceVersion.
    pub fn close_watches(&self) {
        self.shared.close_watches()
    }

    /// Forgets all past events (an etcd compaction): the next watch or `Exact` list from any
    /// resourceVersion before now is answered 410 Expired, so clients must re-list.
    pub fn expire_history(&self) {
        self.shared.write(|s| s.compact())
    }

    /// Keeps only the last `events` events (0: every older resourceVersion expires at the next
    /// change).
    pub fn set_history_limit(&self, events: usize) {
        self.shared.write(|s| s.set_history_limit(events))
    }

    pub fn set_gone(&self, gone: Gone) {
        self.shared.set_gone(gone)
    }

    /// Applies to watches opened from now on.
    pub fn set_bookmark_interval(&self, every: Duration) {
        self.shared.set_bookmark_interval(every)
    }

    /// A hung API server: requests wait unanswered and open watches deliver nothing until
    /// [`Server::resume`]. Connections stay open. Admin endpoints still answer.
    pub fn pause(&self) {
        self.shared.set_paused(true)
    }

    pub fn resume(&self) {
        self.shared.set_paused(false)
    }

    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// The last 1,000 requests, `METHOD path?query`, oldest first.
    pub fn requests(&self) -> Vec<String> {
        let log = self
            .shared
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        log.iter().cloned().collect()
    }

    /// Waits until at least `n` watches are open (the agents are connected); false at `timeout`.
    pub fn wait_for_watches(&self, n: u64, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while self.stats().open_watches < n {
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A kubeconfig YAML for an API server at `url` (context, cluster and user "kubesim"),
/// trusting `ca_pem` when given, presenting `token` when given.
pub fn kubeconfig_yaml(url: &str, ca_pem: Option<&str>, token: Option<&str>) -> String {
    use base64::Engine;
    let ca = ca_pem.map_or(String::new(), |pem| {
        let data = base64::engine::general_purpose::STANDARD.encode(pem);
        format!("    certificate-authority-data: {data}\n")
    });
    let user = token.map_or("{}".to_string(), |t| format!("\n    token: {t}"));
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kubesim\n  cluster:\n    server: {url}\n\
         {ca}users:\n- name: kubesim\n  user: {user}\ncontexts:\n- name: kubesim\n  context:\n    \
         cluster: kubesim\n    user: kubesim\ncurrent-context: kubesim\n"
    )
}

/// An object of a kind kubesim serves: Node, Namespace, Pod, NetworkPolicy.
pub trait Object:
    k8s_openapi::Resource + Metadata<Ty = ObjectMeta> + Serialize + DeserializeOwned
{
}

impl<K> Object for K where
    K: k8s_openapi::Resource + Metadata<Ty = ObjectMeta> + Serialize + DeserializeOwned
{
}

/// The served kind of `K`; panics for one kubesim does not serve (a test's mistake).
fn kind_of<K: Object>() -> &'static Kind {
    Kind::find(K::GROUP, K::URL_PATH_SEGMENT)
        .unwrap_or_else(|| panic!("kubesim does not serve {}", K::KIND))
}

/// Its kind, namespace ("" if cluster-scoped) and name.
fn identify<K: Object>(obj: &K) -> (&'static Kind, String, String) {
    let kind = kind_of::<K>();
    let meta = obj.metadata();
    let name = meta.name.clone().expect("an object needs metadata.name");
    let ns = match kind.namespaced {
        true => meta
            .namespace
            .clone()
            .unwrap_or_else(|| panic!("a {} needs metadata.namespace", K::KIND)),
        false => String::new(),
    };
    (kind, ns, name)
}

fn to_value<K: Serialize>(obj: &K) -> serde_json::Value {
    serde_json::to_value(obj).expect("objects serialize")
}

fn parse<K: DeserializeOwned>(json: &str) -> K {
    serde_json::from_str(json).expect("stored objects decode as their kind")
}
