//! warren-protocol: the byte formats Warren shares between the network and the disk.
//!
//! Nothing here touches a socket or a file: it turns bytes into values and back.
//! Decoders never panic and never allocate more than their input justifies; every
//! malformed input is a distinct [`Error`].
//!
//! # Layout
//! - [`api`]: every request and response body, one module per api key.
//! - [`error_code`]: the stable numeric error codes sent to clients.
//! - [`wire`]: primitive field encodings (strings, bytes, arrays) and the
//!   bounds-checked [`wire::WireReader`].
//! - [`partitioner`]: Kafka's murmur2 key-to-partition hash.
//! - [`offset`]: the [`Offset`] and [`RelativeOffset`] newtypes (storage re-exports them).
//! - [`frame`]: request/response frames and their tokio-util codecs.
//! - [`record_batch`]: the RecordBatch (Kafka's layout, magic 2), its header view,
//!   CRC-32C, the [`RecordBatchBuilder`] and the produce-time [`record_batch::validate`].
//! - [`record`]: one record inside a batch, and its varint encoding.
//! - [`record_stream`]: bounded streaming reads of a batch's records (clipped
//!   values, a decompression cap) for peeks and searches.
//! - [`varint`]: zig-zag varints and varlongs, as in Kafka and protobuf.
//! - [`scram`]: SCRAM-SHA-256 credentials and the client and server state machines.
//! - [`error`]: the crate's error type.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

pub mod api;
pub mod error;
pub mod error_code;
pub mod frame;
pub mod offset;
pub mod partitioner;
pub mod record;
pub mod record_batch;
pub mod record_stream;
pub mod scram;
pub mod varint;
pub mod wire;

pub use api::{ApiKey, Body, Request};
pub use error::{Error, Result};
pub use error_code::ErrorCode;
pub use offset::{Offset, RelativeOffset};
pub use partitioner::partition_for_key;
pub use record::{Header, Record};
pub use record_batch::{BatchHeader, Compression, RecordBatch, RecordBatchBuilder};
