//! warren-client: the async Rust client that Warren producers, consumers and
//! operators embed.
//!
//! It speaks Warren's native protocol (see `warren-protocol` and
//! docs/PROTOCOL.md) over one pipelined TCP connection per client, negotiates
//! api versions when it connects, and reconnects with backoff when the broker
//! goes away. Three clients share that connection layer:
//!
//! - [`Producer`]: batches records per partition (`linger`, `batch_bytes`,
//!   zstd), pipelines produce requests, retries retriable failures until
//!   `delivery_timeout`, and makes `send` wait when its buffer is full.
//! - [`Consumer`]: reads assigned partitions with long-poll fetches, checks
//!   every batch's CRC, and keeps one fetch in flight ahead of the caller.
//! - [`GroupConsumer`]: a [`Consumer`] in a consumer group: the broker
//!   assigns its partitions, it heartbeats in the background, commits offsets
//!   (auto or manual) and reports rebalances.
//! - [`ShareConsumer`]: a member of a share group (queue semantics): records
//!   locked one member at a time, acknowledged one by one (ack, release,
//!   reject), redelivered with a delivery count, dead-lettered at the limit.
//! - [`Admin`]: creates, deletes, lists and describes topics; binds and
//!   unbinds routing keys; looks up offsets and metadata; lists and describes groups (with lag) and resets
//!   their offsets; manages users and ACLs.
//!
//! Against a broker with users, set [`ConnectionConfig::credentials`]: every
//! connection then authenticates (SCRAM-SHA-256 by default) before its first
//! request, and auth failures come back as [`Error::AuthenticationFailed`],
//! [`Error::AuthenticationRequired`] and [`Error::NotAuthorized`].
//!
//! Everything runs on the caller's tokio runtime.
//!
//! ```no_run
//! use std::time::Duration;
//! use warren_client::{Consumer, ConsumerConfig, Producer, ProducerConfig, SeekTo};
//!
//! # async fn run() -> warren_client::Result<()> {
//! let producer = Producer::connect(ProducerConfig::new("127.0.0.1:7171")).await?;
//! // `send` only queues the record; the returned future resolves on acknowledgement.
//! let delivery = producer.send("orders", Some(b"customer-7"), b"{\"qty\":1}").await?;
//! producer.flush().await?;
//! let written = delivery.await?;
//!
//! let mut consumer = Consumer::connect(ConsumerConfig::new("127.0.0.1:7171")).await?;
//! consumer.assign("orders", &[written.partition]);
//! consumer.seek("orders", written.partition, SeekTo::Earliest).await?;
//! for record in consumer.poll(Duration::from_secs(1)).await? {
//!     println!("{}@{}: {:?}", record.partition, record.offset, record.value);
//! }
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`config`]: [`ConnectionConfig`], [`ProducerConfig`], [`ConsumerConfig`],
//!   [`ShareConsumerConfig`] and their defaults.
//! - `connection`: one pipelined connection (writer and
//!   reader tasks, FIFO of pending responses) and the reconnecting `Connector`.
//! - [`producer`]: [`Producer`], its record accumulator, background sender
//!   and per-batch delivery futures.
//! - [`consumer`]: [`Consumer`], fetch decoding and prefetch.
//! - [`group`]: [`GroupConsumer`], group membership and offset commits.
//! - [`share`]: [`ShareConsumer`], share-group fetch and batched acknowledgements.
//! - [`admin`]: the [`Admin`] client.
//! - [`error`]: the crate's [`Error`] type.
//! - `tls`: the rustls client config from [`TlsConfig`] and the server name to verify.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]
#![warn(missing_docs)]

pub mod admin;
pub mod config;
mod connection;
pub mod consumer;
pub mod error;
pub mod group;
pub mod producer;
pub mod share;
#[cfg(test)]
mod test_broker;
mod tls;

pub use admin::{AclEntry, Admin, ListedOffset, Permission, Resource, ResourceType, UserListing};
pub use config::{
    Acks, ConnectionConfig, ConsumerConfig, Credentials, Mechanism, OffsetSpec, ProducerConfig,
    ShareConsumerConfig, TlsConfig,
};
pub use consumer::{Consumer, ConsumerRecord, SeekTo};
pub use error::{Error, Result};
pub use group::{GroupConfig, GroupConsumer, Rebalance};
pub use producer::{DeliveryFuture, Producer, ProducerRecord, RecordCopy, RecordMetadata};
pub use share::{ShareConsumer, ShareRecord};
/// The protocol crate, for its types in this crate's API.
pub use warren_protocol;
pub use warren_protocol::api::bindings::RoutingMode;
pub use warren_protocol::api::groups::{DescribeGroupResponse, GroupListing};
pub use warren_protocol::api::metadata::MetadataResponse;
pub use warren_protocol::api::share::AckKind;
pub use warren_protocol::api::topics::{
    BindingDescription, DescribeTopicResponse, PartitionDescription, TopicListing,
};
pub use warren_protocol::{Compression, ErrorCode, Header};
