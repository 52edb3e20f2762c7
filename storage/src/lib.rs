//! warren-storage: the partition log on disk.
//!
//! A partition is a directory of segments; each segment is a `.log` file of
//! RecordBatches back to back with a sparse `.index` (offset -> position) and a
//! `.timeindex` (timestamp -> offset), both memory-mapped. The log appends with
//! group-commit `fsync`, reads by returning file slices for `sendfile`, recovers
//! from a crash by scanning only what was not flushed, and deletes old segments
//! for retention; for replication it truncates its newest records and takes a
//! leader's batches with their offsets. [`LogManager`] owns a whole data directory.
//! [`KvStore`] is a durable key-value store built on one such log plus snapshots
//! (the broker's metadata lives in it: group offsets, share-group state,
//! bindings, users and ACLs).
//!
//! # Layout
//! - [`log_manager`]: a data directory: topics (name, partition count, [`LogConfig`], and
//!   their owner's settings kept opaque), their partition logs, the dir lock.
//! - `dir_lock`: the directory flock, with a bounded retry (why: fork-to-exec windows).
//! - [`log`]: [`PartitionLog`], one partition; one file per concern:
//!   - `log/mod.rs`: the struct, its locks, `open`, accessors.
//!   - `log/append.rs`: append (offsets assigned), `append_replicated` (offsets kept), rolls.
//!   - `log/read.rs`: reads by offset (file slices, checked batches) and by timestamp.
//!   - `log/recovery.rs`: open-time recovery: trust, CRC-check or cut each segment.
//!   - `log/sync.rs`: group commit, the fsync gate and fencing, interval flush, high watermark, close.
//!   - `log/retention.rs`: deleting the oldest segments (retention, kv compaction).
//!   - `log/truncate.rs`: `truncate_to`, removing the newest records.
//! - [`kv`]: [`KvStore`], a key-value map on a log: atomic batches, snapshots, compaction:
//!   - `kv/mod.rs`: the store, its config, `open`, `apply`, reads, `close`.
//!   - `kv/snapshot.rs`: the snapshot file format; write, read, list, remove.
//!   - `kv/replay.rs`: open's choice of snapshot and the replay of the log after it.
//!   - `kv/compaction.rs`: snapshot-then-delete, in the background or on demand.
//! - [`segment`]: one segment and its two indexes.
//! - [`offset_index`]: the sparse offset index file.
//! - [`time_index`]: the time index file.
//! - [`index_file`]: the memory-mapped entry file and the `Index` both indexes share.
//! - [`checkpoint`]: the recovery-point file, and atomic file writes.
//! - [`file_slice`]: byte ranges of a segment handed to `sendfile`, and the copy helper.
//! - [`file_names`]: the one place that names files.
//! - `fault_injection` (tests and the `fault-injection` feature only): fail or hold the n-th segment fsync.
//! - [`metrics`]: [`StorageMetrics`], the handles logs record fsyncs, rolls, retention and recovery truncations into.
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
    TruncateOutcome,
};
pub use log_manager::{ExtraCheck, LogManager, TopicConfig, validate_topic_name};
pub use metrics::StorageMetrics;
pub use offset::{FilePosition, Offset, RelativeOffset};
