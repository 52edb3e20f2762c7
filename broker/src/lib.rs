//! warren-broker: the server. It accepts native-protocol connections, hands
//! produce batches straight to the partition logs, answers fetches as long
//! polls with `sendfile(2)` from the segment files, and shuts down cleanly.
//!
//! ```no_run
//! # async fn run() -> Result<(), warren_broker::Error> {
//! let config = warren_broker::BrokerConfig::default();
//! let broker = warren_broker::Broker::start(config).await?;
//! println!("listening on {}", broker.local_addr());
//! broker.run_until_signal().await
//! # }
//! ```
//!
//! # Layout
//! Layered (docs/ARCHITECTURE.md; `tests/module_graph.rs` keeps the module graph acyclic and
//! the layers apart): front-ends over the transport and the services, the services over the
//! domain, the domain over `warren-storage`.
//!
//! Wiring:
//! - [`server`]: [`Broker::start`] builds every part and starts the listeners and background
//!   tasks (each task gets only the handles it uses), graceful shutdown.
//! - [`state`]: [`state::Shared`], the broker's parts as the front-ends reach them.
//! - [`config`]: [`BrokerConfig`], its defaults, flags/file/env precedence.
//!
//! Front-ends (decode, call a service, encode; never each other):
//! - `native`: the native protocol: dispatch, one module per api key (Bind and Unbind share
//!   one), `native::error` (service errors as native codes), `native::front_end` (the
//!   transport's `FrontEnd` for it).
//! - `http`: the HTTP listener: probes, metrics, admin API, web page (one file per area),
//!   its accept loop (connection cap, timeouts) and the Host/Origin/Content-Type guard;
//!   [`http_routes`] lists every route it serves (the OpenAPI test compares them).
//!
//! Shared by the front-ends:
//! - `transport`: protocol-agnostic connections: the `FrontEnd` trait a wire protocol
//!   implements (codec, session, handler; `transport::front_end`), the accept loop, a
//!   connection's reader, writer, back-pressure, deadlines, TLS and sendfile
//!   (`transport::connection`), the `Outbox` a front-end pushes unasked messages through
//!   (`transport::outbox`), responses as bytes and file ranges (`transport::response`), the
//!   `Reply` a handler gives and the `TransportContext` a listener's connections share.
//! - [`services`]: protocol-neutral operations: [`services::Producer`],
//!   [`services::Fetcher`], [`services::TopicAdmin`]; they check permissions and fail with
//!   [`ServiceError`]s.
//!
//! The domain:
//! - [`partition`]: [`partition::Partition`], a partition's log, high-watermark notifier,
//!   visibility rule (when an append may be read) and counters.
//! - [`topics`]: the topic set and each topic's bindings, and the bind/unbind/load paths
//!   that keep them in step with the metadata store.
//! - [`routing`]: the routing modes' bindings ([`routing::Bindings`]): `direct`'s exact-key
//!   map, `topic`'s pattern trie with RabbitMQ's rules ([`routing::TopicBindings`]).
//! - [`groups`]: consumer groups: target assignment, incremental hand-over, the coordinator
//!   and its session-expiry task.
//! - [`share`]: share groups (queue semantics): per-record locks, acks, redelivery, dead
//!   letters, their durable state and the lock-expiry task.
//! - [`offsets_retention`]: the task that forgets idle groups' offsets and share state.
//! - [`auth`]: users, ACLs and per-connection sessions (who may do what).
//! - [`metadata`]: what the broker keeps about topics beyond their logs
//!   ([`metadata::TopicConfig`] with its routing and share-group settings, opaque to storage
//!   in the topic file), and the metadata store's key layout: one owning module per key
//!   prefix (offsets, bindings, share state, users and ACLs).
//! - [`connections`]: the registry of open connections (peer, user, counters).
//! - [`metrics`]: the broker's Prometheus metrics: its own recorder, cached handles, and
//!   the families rendered from state at scrape time.
//! - [`throughput`]: the traffic history the admin API's overview charts (a 5 s sampler).
//! - `tls`: the rustls server config from `tls_cert`/`tls_key`, the handshake timeout.
//! - [`error`]: the crate's start-up [`Error`], the requests' [`ServiceError`] /
//!   [`ErrorKind`](error::ErrorKind), and the storage-error → error-code mapping.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

pub mod auth;
pub mod config;
pub mod connections;
pub mod error;
pub mod groups;
mod http;
pub mod metadata;
pub mod metrics;
mod native;
pub mod offsets_retention;
pub mod partition;
pub mod routing;
pub mod server;
pub mod services;
pub mod share;
pub mod state;
pub mod throughput;
mod tls;
pub mod topics;
mod transport;

pub use config::BrokerConfig;
pub use error::{Error, Result, ServiceError};
pub use http::{HttpRoute, routes_served as http_routes};
pub use server::{Broker, RunningBroker};
