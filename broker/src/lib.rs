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
//! - [`auth`]: users, ACLs and per-connection sessions (who may do what).
//! - [`config`]: [`BrokerConfig`], its defaults, flags/file/env precedence.
//! - [`server`]: [`Broker::start`], the accept loop, graceful shutdown.
//! - `transport`: what every front-end shares, protocol-agnostic: the `FrontEnd` trait a wire
//!   protocol implements (codec, session, handler; `transport::front_end`), a connection's
//!   reader, writer, back-pressure, deadlines, TLS and sendfile (`transport::connection`),
//!   the `Outbox` a front-end pushes unasked messages through (`transport::outbox`), responses
//!   as bytes and file ranges (`transport::response`), the `Reply` a handler gives and the
//!   `TransportContext` a listener's connections share.
//! - [`connections`]: the registry of open connections (peer, user, counters).
//! - `native`: the native-protocol front-end: one module per api key (parse, apply, respond);
//!   Bind and Unbind share one.
//! - [`topics`]: partitions with their high-watermark notifiers, each topic's bindings,
//!   and the bind/unbind/load paths that keep them in step with the metadata store.
//! - [`routing`]: the routing modes' bindings ([`routing::Bindings`]): `direct`'s exact-key
//!   map, `topic`'s pattern trie with RabbitMQ's rules ([`routing::TopicBindings`]).
//! - [`metadata`]: what the broker keeps about topics beyond their logs ([`metadata::TopicConfig`]
//!   with its routing and share-group settings, opaque to storage in the topic file), and the
//!   metadata store's key layout: one owning module per key prefix (offsets, bindings, share
//!   state, users and ACLs).
//! - [`metrics`]: the broker's Prometheus metrics: its own recorder, cached handles,
//!   per-partition probes, and the families rendered from state at scrape time.
//! - `http`: the HTTP listener: probes, metrics, admin API, web page (one file per area),
//!   its accept loop (connection cap, timeouts) and the Host/Origin/Content-Type guard;
//!   [`http_routes`] lists every route it serves (the OpenAPI test compares them).
//! - [`throughput`]: the traffic history the admin API's overview charts (a 5 s sampler).
//! - `tls`: the rustls server config from `tls_cert`/`tls_key`, the handshake timeout.
//! - [`error`]: the crate's error type and storage-error → error-code mapping.
//! - [`groups`]: consumer groups: target assignment and incremental hand-over.
//! - [`share`]: share groups (queue semantics): per-record locks, acks,
//!   redelivery, dead letters, their durable state and the lock-expiry task.

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
pub mod partition;
pub mod routing;
pub mod server;
pub mod services;
pub mod share;
pub mod throughput;
mod tls;
pub mod topics;
mod transport;

pub use config::BrokerConfig;
pub use error::{Error, Result};
pub use http::{HttpRoute, routes_served as http_routes};
pub use server::{Broker, RunningBroker};
