//! warren-protocol: the byte formats Warren shares between the network and the disk.
//!
//! Nothing here touches a socket or a file: it turns bytes into values and back.
//! Decoders never panic and never allocate more than their input justifies; every
//! malformed input is a distinct [`Error`].
//!
//! # Layout
//! - [`frame`]: request/response frames and their tokio-util codecs.
//! - [`record_batch`]: the RecordBatch (Kafka's layout, magic 2), its header view,
//!   CRC-32C and the [`RecordBatchBuilder`].
//! - [`record`]: one record inside a batch, and its varint encoding.
//! - [`varint`]: zig-zag varints and varlongs, as in Kafka and protobuf.
//! - [`error`]: the crate's error type.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

pub mod error;
pub mod frame;
pub mod record;
pub mod record_batch;
pub mod varint;

pub use error::{Error, Result};
pub use record::{Header, Record};
pub use record_batch::{BatchHeader, Compression, RecordBatch, RecordBatchBuilder};
