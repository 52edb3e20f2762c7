//! [`Shared`]: the broker's parts as the front-ends see them, built by
//! [`crate::server`]. Background tasks do not take it: each gets the few
//! handles it uses (so no domain module imports this one, and the module
//! graph has no cycle through it).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use warren_storage::KvStore;

use crate::config::BrokerConfig;
use crate::groups::Coordinator;
use crate::services::Services;
use crate::share::ShareGroups;
use crate::topics::Topics;

/// What the front-ends (native connections, the HTTP listener) reach the
/// broker's parts through.
pub struct Shared {
    pub config: BrokerConfig,
    pub topics: Arc<Topics>,
    /// The broker's metadata store in `<data_dir>/meta/kv`: committed group
    /// offsets, bindings, share-group state. Key prefixes are listed in
    /// [`crate::metadata`].
    pub kv: KvStore,
    /// The consumer-group coordinator.
    pub groups: Arc<Coordinator>,
    /// Share groups: per-record locks and acknowledgements (state in `kv`).
    pub share: Arc<ShareGroups>,
    /// Produce, fetch and topic administration, for every front-end.
    pub services: Services,
    /// Cancelled when the broker starts shutting down.
    pub shutdown: CancellationToken,
    /// The address clients reach this broker at (Metadata).
    pub advertised: SocketAddr,
    /// Open native-protocol connections (the transport registers them).
    pub connections: Arc<crate::connections::Connections>,
    /// Traffic history and records-in count for the admin API's overview.
    pub throughput: Arc<crate::throughput::Throughput>,
    /// This broker's Prometheus metrics (its own recorder; see [`crate::metrics`]).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Users and ACLs (stored in `kv`); anonymous access while there are none.
    pub auth: Arc<crate::auth::Auth>,
    /// The TLS acceptor when `tls_cert`/`tls_key` are set: then both
    /// listeners speak only TLS.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}
