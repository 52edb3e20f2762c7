//! Retention deletes whole oldest segments, never the active one; reads below the
//! new log start get `OffsetOutOfRange`; slices already handed out stay readable.
#![expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

mod common;

use common::{batch, small_config};
use warren_storage::{Error, LogConfig, Offset, PartitionLog};

fn filled(dir: &std::path::Path, config: LogConfig, batches: u64) -> PartitionLog {
    let log = PartitionLog::open(dir, "ret-0", config).unwrap();
    for i in 0..batches {
        log.append(&batch(i, 2, 200, 0)).unwrap();
    }
    log
}

#[test]
fn retention_bytes_deletes_oldest_segments_down_to_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_bytes: Some(10_000),
        ..small_config(4096)
    };
    let log = filled(dir.path(), config, 100);
    let before = log.segments();
    let total: u64 = before.iter().map(|s| u64::from(s.size())).sum();
    assert!(total > 30_000);
    let outcome = log.apply_retention(0).unwrap();
    let after = log.segments();
    let kept: u64 = after.iter().map(|s| u64::from(s.size())).sum();
    assert!(kept >= 10_000, "never below the limit: {kept}");
    assert!(
        kept - u64::from(after[0].size()) < 10_000,
        "deleting one more segment would go below the limit"
    );
    assert_eq!(outcome.segments_deleted, before.len() - after.len());
    assert_eq!(outcome.bytes_deleted, total - kept);
    assert_eq!(log.log_start_offset(), after[0].base_offset());
    assert_eq!(outcome.log_start_offset, after[0].base_offset());
    // The deleted segments' files are gone.
    for s in &before[..outcome.segments_deleted] {
        assert!(!s.log_path().exists());
        assert!(!s.log_path().with_extension("index").exists());
    }
    let start = log.log_start_offset();
    assert!(matches!(
        log.read(Offset(start.0 - 1), 100),
        Err(Error::OffsetOutOfRange { .. })
    ));
    assert_eq!(
        log.read_batches(start, 1).unwrap()[0].header().base_offset as u64,
        start.0
    );
    // The new start survives a reopen.
    log.close().unwrap();
    drop(log);
    let log = PartitionLog::open(dir.path(), "ret-0", small_config(4096)).unwrap();
    assert_eq!(log.log_start_offset(), start);
}

#[test]
fn retention_ms_deletes_segments_whose_newest_record_is_older() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_ms: Some(1_000),
        ..small_config(4096)
    };
    let log = PartitionLog::open(dir.path(), "ret-0", config).unwrap();
    // Old records (timestamp 10_000), then new ones (timestamp 1_000_000).
    for i in 0..40 {
        log.append(&batch(i, 2, 200, 10_000)).unwrap();
    }
    let old_segments = log.segments().len();
    let first_new = log.log_end_offset();
    for i in 0..40 {
        log.append(&batch(i, 2, 200, 1_000_000)).unwrap();
    }
    let outcome = log.apply_retention(1_000_500).unwrap();
    // Every segment holding only old records goes; the one holding both stays.
    assert!(outcome.segments_deleted >= old_segments - 1);
    assert!(log.log_start_offset() <= first_new);
    for s in log.segments() {
        assert!(s.max_timestamp() >= 1_000_000 || s.next_offset() > first_new);
    }
}

#[test]
fn retention_never_deletes_the_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_bytes: Some(0),
        retention_ms: Some(1),
        ..small_config(4096)
    };
    let log = filled(dir.path(), config, 50);
    log.apply_retention(i64::MAX / 2).unwrap();
    let segments = log.segments();
    assert_eq!(segments.len(), 1);
    assert_eq!(log.log_start_offset(), segments[0].base_offset());
    assert_eq!(log.log_end_offset(), Offset(100));
    log.append(&batch(0, 1, 1, 0)).unwrap();
}

#[test]
fn slices_handed_out_before_retention_stay_readable() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_bytes: Some(1),
        ..small_config(4096)
    };
    let log = filled(dir.path(), config, 50);
    let slice = log.read(Offset(0), 1 << 20).unwrap().slices.remove(0);
    let expected_len = slice.len;
    assert!(log.apply_retention(0).unwrap().segments_deleted > 0);
    assert!(!slice.path.exists(), "file deleted");
    assert_eq!(slice.to_bytes().unwrap().len(), expected_len as usize);
}
