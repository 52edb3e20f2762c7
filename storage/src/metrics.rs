//! [`StorageMetrics`]: the handles the storage layer records its events into
//! (Redpanda's `storage/probe.h`: one probe with named methods instead of
//! scattered counter calls).
//!
//! Storage depends only on the `metrics` facade crate, never on an exporter:
//! the broker builds the handles from its own recorder and passes them in
//! ([`LogManager::open_with_metrics`](crate::LogManager::open_with_metrics),
//! [`PartitionLog::open_with_metrics`](crate::PartitionLog::open_with_metrics),
//! [`KvStore::open_with_metrics`](crate::KvStore::open_with_metrics)). The
//! plain `open` functions use [`StorageMetrics::default`], whose handles do
//! nothing, so tools, benches and tests that do not care pay one branch per
//! event.
//!
//! Every handle is an `Arc` to an atomic (or a lock-free bucket for the
//! histogram) shared by all the logs given the same `StorageMetrics`: recording
//! takes no lock. The events are rare next to appends (an fsync, a roll, a
//! retention pass, a recovery at open), never one per record. Thread-safe;
//! cloning clones the handles, not the values.

use std::time::Instant;

use metrics::{Counter, Histogram};

/// Where a log records its fsyncs, rolls, retention deletions and recovery
/// truncations; see the module docs. Unlabelled: the values are broker-wide
/// sums over every log opened with these handles.
#[derive(Clone, Debug)]
pub struct StorageMetrics {
    /// Seconds each `fdatasync` of a segment took (group commit, interval
    /// flushes, the flush of a rolled segment).
    pub fsync_duration_seconds: Histogram,
    /// `fdatasync` calls, as counted by [`LogStats::fsyncs`](crate::LogStats::fsyncs).
    pub fsyncs: Counter,
    /// Active segments rolled (a new segment started).
    pub segment_rolls: Counter,
    /// Segments deleted by retention (`retention.bytes` / `retention.ms`);
    /// not the key-value store's compaction.
    pub retention_deleted_segments: Counter,
    /// Bytes cut from torn or corrupt segment tails when a log was opened.
    pub recovery_truncated_bytes: Counter,
}

impl Default for StorageMetrics {
    /// Handles that record nothing.
    fn default() -> Self {
        StorageMetrics {
            fsync_duration_seconds: Histogram::noop(),
            fsyncs: Counter::noop(),
            segment_rolls: Counter::noop(),
            retention_deleted_segments: Counter::noop(),
            recovery_truncated_bytes: Counter::noop(),
        }
    }
}

impl StorageMetrics {
    /// One fsync that started at `started` has finished.
    pub(crate) fn fsynced(&self, started: Instant) {
        self.fsyncs.increment(1);
        self.fsync_duration_seconds
            .record(started.elapsed().as_secs_f64());
    }
}
