//! warren-storage: the partition log on disk.
//!
//! A partition is a directory of segments; each segment is a `.log` file of
//! RecordBatches back to back with a sparse `.index` (offset -> position) and a
//! `.timeindex` (timestamp -> offset), both memory-mapped. The log appends with
//! group-commit `fsync`, reads by returning file slices for `sendfile`, recovers
//! from a crash by scanning only what was not flushed, and deletes old segments
//! for retention. [`LogManager`] owns a whole data directory. [`KvStore`] is a
//! durable key-value store built on one such log plus snapshots (the broker keeps
//! its metadata in it).
//!
//! # Layout
//! - [`log_manager`]: a data directory: topics (name, partition count, [`LogConfig`], and
//!   their owner's settings kept opaque), their partition logs, the dir lock.
//! - `dir_lock`: the directory flock, with a bounded retry (why: fork-to-exec windows).
//! - [`log`]: [`PartitionLog`], one partition: append, read, sync, recovery, retention.
//! - [`kv`]: [`KvStore`], a key-value map on a log: atomic batches, snapshots, compaction.
//! - [`segment`]: one segment and its two indexes.
//! - [`offset_index`]: the sparse offset index file.
//! - [`time_index`]: the time index file.
//! - [`index_file`]: the memory-mapped entry file and the `Index` both indexes share.
//! - [`checkpoint`]: the recovery-point file, and atomic file writes.
//! - [`file_slice`]: byte ranges of a segment handed to `sendfile`, and the copy helper.
//! - [`file_names`]: the one place that names files.
//! - `fault_injection` (tests and the `fault-injection` feature only): fail or hold the n-th segment fsync.
//! - [`metrics`]: [`StorageMetrics`], the handles logs record fsyncs, rolls, retention and truncations into.
//! - [`config`]: [`LogConfig`] and [`Durability`].
//! - [`offset`]: the `FilePosition` newtype, and `Offset` and `RelativeOffset` re-exported
//!   from `warren_protocol::offset`.
//! - [`error`]: the crate's error type.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

pub mod checkpoint;
pub mod config;
mod dir_lock;
pub mod error;
#[cfg(any(test, feature = "fault-injection"))]
pub mod fault_injection;
pub mod file_names;
pub mod file_slice;
pub mod index_file;
pub mod kv;
pub mod log;
pub mod log_manager;
pub mod metrics;
pub mod offset;
pub mod offset_index;
pub mod segment;
pub mod time_index;

pub use config::{Durability, LogConfig};
pub use error::{Error, Result};
pub use file_slice::FileSlice;
pub use kv::{KvConfig, KvOp, KvOpenReport, KvStats, KvStore};
pub use log::{
    AppendInfo, LocatedBatch, LogStats, PartitionLog, ReadInfo, RecoveryReport, RetentionOutcome,
};
pub use log_manager::{ExtraCheck, LogManager, TopicConfig, validate_topic_name};
pub use metrics::StorageMetrics;
pub use offset::{FilePosition, Offset, RelativeOffset};
