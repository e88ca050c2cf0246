//! kubesim: a stand-in Kubernetes API server for core/v1 Nodes, Namespaces and Pods and
//! networking.k8s.io/v1 NetworkPolicies, for podwire's multi-node tests and benchmarks. It
//! speaks the list/watch protocol over plain HTTP as the API server does, so kube's client and
//! `kube::runtime::watcher` work against it unmodified:
//!
//! - `GET /api/v1/nodes`, `/api/v1/pods`, `/api/v1/namespaces/{ns}/pods`,
//!   `/apis/networking.k8s.io/v1/[namespaces/{ns}/]networkpolicies`…: a list with
//!   `metadata.resourceVersion`, `limit`/`continue` pagination over a consistent snapshot,
//!   `resourceVersion`/`resourceVersionMatch` rules, `fieldSelector` (e.g. `spec.nodeName=n1`);
//! - the same with `watch=1`: a chunked stream of `{"type","object"}` lines (ADDED,
//!   MODIFIED, DELETED, BOOKMARK, ERROR), `timeoutSeconds`, `allowWatchBookmarks`,
//!   `sendInitialEvents`, and 410 Expired for a resourceVersion older than the kept history;
//! - GET/POST/PUT/PATCH (merge patch)/DELETE on each object and its `…/status`.
//!
//! The [`Server`] runs on a thread of its own on a listener the test binds (so it can live in a
//! network namespace), and offers direct object writes and test controls: close every watch,
//! expire the history, pause, count requests. See README.md for what is and is not implemented.
//!
//! ```no_run
//! use kubesim::{NodeBuilder, Server};
//! let server = Server::start(std::net::TcpListener::bind("127.0.0.1:0")?)?;
//! server.write_kubeconfig(std::path::Path::new("/tmp/kubeconfig"))?;
//! server.create_node(&NodeBuilder::new("n1").pod_cidr("10.244.1.0/24").internal_ip("10.0.0.1").build())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod fleet;
mod http;
mod kinds;
mod node;
mod pod;
mod server;
mod store;
mod tls;
mod watch;

pub use error::ApiError;
pub use fleet::Fleet;
pub use k8s_openapi::api::core::v1::{Event, Namespace, Node, Pod};
pub use k8s_openapi::api::networking::v1::NetworkPolicy;
pub use node::NodeBuilder;
pub use pod::{namespace, PodBuilder};
pub use server::{kubeconfig_yaml, Gone, Object, Options, Server, Stats};
pub use store::NAMESPACE_NAME_LABEL;
