//! `StorageMetrics`: a log opened with handles records its fsyncs (count and
//! latency), segment rolls, retention deletions and the bytes recovery cuts,
//! matching the log's own `LogStats`.
#![expect(clippy::unwrap_used)]

mod common;

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{batch, crash, small_config};
use metrics::{Counter, Histogram, HistogramFn};
use warren_storage::{Durability, PartitionLog, StorageMetrics};

/// A histogram that counts its samples and keeps their sum (in nanoseconds).
#[derive(Default)]
struct Samples {
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl HistogramFn for Samples {
    fn record(&self, value: f64) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_ns
            .fetch_add((value * 1e9) as u64, Ordering::Relaxed);
    }
}

struct Probe {
    fsync_seconds: Arc<Samples>,
    fsyncs: Arc<AtomicU64>,
    rolls: Arc<AtomicU64>,
    retention: Arc<AtomicU64>,
    truncated: Arc<AtomicU64>,
}

impl Probe {
    fn new() -> Probe {
        Probe {
            fsync_seconds: Arc::default(),
            fsyncs: Arc::default(),
            rolls: Arc::default(),
            retention: Arc::default(),
            truncated: Arc::default(),
        }
    }

    fn handles(&self) -> StorageMetrics {
        StorageMetrics {
            fsync_duration_seconds: Histogram::from_arc(Arc::clone(&self.fsync_seconds)),
            fsyncs: Counter::from_arc(Arc::clone(&self.fsyncs)),
            segment_rolls: Counter::from_arc(Arc::clone(&self.rolls)),
            retention_deleted_segments: Counter::from_arc(Arc::clone(&self.retention)),
            recovery_truncated_bytes: Counter::from_arc(Arc::clone(&self.truncated)),
        }
    }
}

#[test]
fn a_log_records_fsyncs_rolls_retention_and_truncation_into_its_handles() {
    let dir = tempfile::tempdir().unwrap();
    let probe = Probe::new();
    let config = warren_storage::LogConfig {
        durability: Durability::Fsync,
        retention_bytes: Some(4096),
        ..small_config(2048)
    };
    let log = PartitionLog::open_with_metrics(dir.path(), "m-0", config.clone(), probe.handles())
        .unwrap();
    for i in 0..20 {
        log.append_durable(&batch(i, 2, 200, 1_700_000_000_000))
            .unwrap();
    }
    common::wait_for_roll_flushes(&log);
    let stats = log.stats();
    let fsyncs = stats.fsyncs.load(Ordering::Relaxed);
    assert!(fsyncs >= 20, "one per durable append at least: {fsyncs}");
    assert_eq!(probe.fsyncs.load(Ordering::Relaxed), fsyncs);
    assert_eq!(probe.fsync_seconds.count.load(Ordering::Relaxed), fsyncs);
    assert!(probe.fsync_seconds.sum_ns.load(Ordering::Relaxed) > 0);
    let rolled = stats.segments_rolled.load(Ordering::Relaxed);
    assert!(rolled >= 3, "2 KiB segments of ~450-byte batches: {rolled}");
    assert_eq!(probe.rolls.load(Ordering::Relaxed), rolled);

    let outcome = log.apply_retention(i64::MAX).unwrap();
    assert!(outcome.segments_deleted > 0);
    assert_eq!(
        probe.retention.load(Ordering::Relaxed),
        outcome.segments_deleted as u64
    );
    assert_eq!(probe.truncated.load(Ordering::Relaxed), 0);

    // A torn tail: 100 bytes of garbage after the last batch, then a crash.
    let active = log.segments().last().unwrap().log_path().to_path_buf();
    crash(log);
    OpenOptions::new()
        .append(true)
        .open(&active)
        .unwrap()
        .write_all(&[0xAB; 100])
        .unwrap();
    let reopened =
        PartitionLog::open_with_metrics(dir.path(), "m-0", config, probe.handles()).unwrap();
    assert_eq!(reopened.recovery_report().truncated_bytes, 100);
    assert_eq!(probe.truncated.load(Ordering::Relaxed), 100);
}
