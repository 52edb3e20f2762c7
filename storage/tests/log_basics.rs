//! Append, read, roll, reopen: the partition log's everyday behaviour.
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;

use common::{all_batches, batch, open, small_config};
use warren_protocol::{Compression, RecordBatchBuilder};
use warren_storage::{Durability, Error, LogConfig, Offset, PartitionLog};

#[test]
fn appends_assign_consecutive_offsets_and_read_back_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(4096));
    let mut expected = Vec::new();
    for i in 0..80u64 {
        let b = batch(i, 1 + (i as usize % 3), 100, 1_700_000_000_000);
        let info = log.append(&b).unwrap();
        assert_eq!(
            info.base_offset,
            Offset(expected.iter().map(|(_, n, _)| *n).sum())
        );
        expected.push((info.base_offset.0, (i % 3 + 1), b.slice(8..)));
    }
    assert!(log.segments().len() > 3, "4 KiB segments roll");
    let total: u64 = expected.iter().map(|(_, n, _)| *n).sum();
    assert_eq!(log.log_end_offset(), Offset(total));
    let got = all_batches(&log);
    assert_eq!(got.len(), expected.len());
    for ((off, bytes), (e_off, _, e_bytes)) in got.iter().zip(&expected) {
        assert_eq!(off, e_off);
        assert_eq!(bytes, e_bytes);
    }
}

#[test]
fn the_active_segment_rolls_once_older_than_segment_ms_by_the_broker_clock() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_ms: 50,
        ..small_config(1 << 20)
    };
    let log = PartitionLog::open(dir.path(), "t-0", config).unwrap();
    // Producer timestamps from 1970 must not force a roll per batch.
    for i in 0..10 {
        log.append(&batch(i, 1, 10, 1_000)).unwrap();
    }
    assert_eq!(log.segments().len(), 1);
    std::thread::sleep(std::time::Duration::from_millis(80));
    log.append(&batch(10, 1, 10, 1_000)).unwrap();
    assert_eq!(log.segments().len(), 2);
    assert_eq!(log.segments()[1].base_offset(), Offset(10));
}

#[test]
fn a_batch_with_a_bad_crc_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(4096));
    log.append(&batch(1, 2, 10, 0)).unwrap();
    let mut bad = batch(2, 2, 10, 0).to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(matches!(log.append(&bad), Err(Error::InvalidBatch(_))));
    assert!(matches!(
        log.append(&bad[..bad.len() - 1]),
        Err(Error::InvalidBatch(_))
    ));
    assert_eq!(log.log_end_offset(), Offset(2));
    assert_eq!(log.size_bytes(), batch(1, 2, 10, 0).len() as u64);
}

#[test]
fn a_batch_larger_than_a_segment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(2048));
    assert!(matches!(
        log.append(&batch(1, 1, 4000, 0)),
        Err(Error::BatchTooLarge { .. })
    ));
}

#[test]
fn read_returns_whole_batches_within_max_bytes_but_at_least_one() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(1 << 20));
    let one = batch(0, 1, 500, 0).len() as u32;
    for i in 0..20 {
        log.append(&batch(i, 1, 500, 0)).unwrap();
    }
    let r = log.read(Offset(3), one * 4 + one / 2).unwrap();
    assert_eq!(r.bytes(), u64::from(one) * 4);
    assert_eq!(r.slices[0].first_offset, Offset(3));
    assert_eq!(r.slices.last().unwrap().next_offset, Offset(7));
    let r = log.read(Offset(3), 1).unwrap();
    assert_eq!(
        r.bytes(),
        u64::from(one),
        "one whole batch even when over max_bytes"
    );
    let r = log.read(Offset(20), 1 << 20).unwrap();
    assert!(r.slices.is_empty(), "reading at the log end is empty");
    assert!(matches!(
        log.read(Offset(21), 100),
        Err(Error::OffsetOutOfRange {
            requested: 21,
            log_start: 0,
            log_end: 20
        })
    ));
}

#[test]
fn read_spans_segments_up_to_max_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(2048));
    for i in 0..30 {
        log.append(&batch(i, 1, 300, 0)).unwrap();
    }
    assert!(log.segments().len() >= 5);
    let r = log.read(Offset(0), 1 << 20).unwrap();
    assert_eq!(r.bytes(), log.size_bytes());
    assert!(r.slices.len() >= 5);
    let offsets: Vec<_> = r
        .slices
        .iter()
        .map(|s| (s.first_offset.0, s.next_offset.0))
        .collect();
    for w in offsets.windows(2) {
        assert_eq!(w[0].1, w[1].0, "slices are contiguous: {offsets:?}");
    }
}

#[test]
fn clean_close_then_open_scans_nothing_and_offsets_continue() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(4096));
    for i in 0..50 {
        log.append(&batch(i, 2, 64, 1_000 + i as i64)).unwrap();
    }
    let before = all_batches(&log);
    log.close().unwrap();
    assert!(matches!(
        log.append(&batch(0, 1, 1, 0)),
        Err(Error::Closed(_))
    ));
    drop(log);
    let log = open(dir.path(), small_config(4096));
    let report = log.recovery_report();
    assert!(report.clean_shutdown);
    assert_eq!(report.segments_recovered, 0, "{report:?}");
    assert_eq!(all_batches(&log), before);
    let info = log.append(&batch(99, 1, 8, 0)).unwrap();
    assert_eq!(info.base_offset, Offset(100));
    // The first append after a clean open marks the log dirty again: a crash now
    // must be recovered, not trusted.
    drop(log);
    let log = open(dir.path(), small_config(4096));
    assert!(!log.recovery_report().clean_shutdown);
    assert_eq!(log.log_end_offset(), Offset(101));
}

#[test]
fn offset_for_timestamp_finds_the_first_record_at_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(4096));
    // Batch i holds records with timestamps 10_000 + 10*i .. +4.
    for i in 0..60i64 {
        log.append(&batch(i as u64, 5, 20, 10_000 + 10 * i))
            .unwrap();
    }
    assert_eq!(
        log.offset_for_timestamp(0).unwrap(),
        Some((Offset(0), 10_000))
    );
    assert_eq!(
        log.offset_for_timestamp(10_003).unwrap(),
        Some((Offset(3), 10_003))
    );
    assert_eq!(
        log.offset_for_timestamp(10_005).unwrap(),
        Some((Offset(5), 10_010))
    );
    assert_eq!(
        log.offset_for_timestamp(10_302).unwrap(),
        Some((Offset(152), 10_302))
    );
    assert_eq!(
        log.offset_for_timestamp(10_594).unwrap(),
        Some((Offset(299), 10_594))
    );
    assert_eq!(log.offset_for_timestamp(10_595).unwrap(), None);
    log.close().unwrap();
    let log = open(dir.path(), small_config(4096));
    assert_eq!(
        log.offset_for_timestamp(10_302).unwrap(),
        Some((Offset(152), 10_302))
    );
}

#[test]
fn append_durable_in_fsync_mode_is_durable_on_return() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        durability: Durability::Fsync,
        ..small_config(1 << 20)
    };
    let log = PartitionLog::open(dir.path(), "t-0", config).unwrap();
    let info = log.append_durable(&batch(1, 3, 10, 0)).unwrap();
    assert!(log.durable_offset() >= info.log_end_offset);
    assert!(
        log.stats()
            .fsyncs
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
}

#[test]
fn reads_stop_at_the_high_watermark_which_is_the_durable_offset_under_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(
        dir.path(),
        LogConfig {
            durability: Durability::Fsync,
            ..small_config(1 << 20)
        },
    );
    for i in 0..3 {
        log.append(&batch(i, 2, 50, 1_700_000_000_000)).unwrap();
    }
    assert_eq!(log.log_end_offset(), Offset(6));
    assert_eq!(log.high_watermark(), Offset(0), "nothing is synced yet");
    let r = log
        .read_to(Offset(0), 1 << 20, log.high_watermark())
        .unwrap();
    assert!(r.slices.is_empty(), "unsynced batches are not readable");
    log.sync_to(Offset(4)).unwrap();
    assert_eq!(log.high_watermark(), Offset(6));
    // An explicit bound in the middle returns only the batches before it.
    let r = log.read_to(Offset(0), 1 << 20, Offset(4)).unwrap();
    assert_eq!(r.slices.len(), 1);
    assert_eq!(r.slices[0].next_offset, Offset(4));
    let r = log.read_to(Offset(2), 1 << 20, Offset(2)).unwrap();
    assert!(r.slices.is_empty());
}

#[test]
fn batches_over_max_message_bytes_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(
        dir.path(),
        LogConfig {
            max_message_bytes: 1000,
            ..small_config(1 << 20)
        },
    );
    let big = batch(0, 1, 2000, 1_700_000_000_000);
    assert!(matches!(
        log.append(&big),
        Err(Error::BatchTooLarge { limit: 1000, .. })
    ));
    assert_eq!(log.log_end_offset(), Offset(0));
    log.append(&batch(1, 1, 100, 1_700_000_000_000)).unwrap();
    assert_eq!(log.log_end_offset(), Offset(1));
}

#[test]
fn offset_for_timestamp_answers_by_batch_once_its_budget_is_spent() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(4096));
    let mut b = RecordBatchBuilder::new(Compression::Zstd);
    for i in 0..3i64 {
        b.append(10_000 + i, None, Some(b"value"), &[]);
    }
    log.append(&b.build().unwrap()).unwrap();
    // With room to decompress: the exact record, and the bytes are spent.
    let mut budget = 1 << 20;
    assert_eq!(
        log.offset_for_timestamp_within(10_001, &mut budget)
            .unwrap(),
        Some((Offset(1), 10_001))
    );
    assert!(budget < 1 << 20);
    // Without: the batch (its base offset, its max timestamp), no decoding.
    let mut spent = 0;
    assert_eq!(
        log.offset_for_timestamp_within(10_001, &mut spent).unwrap(),
        Some((Offset(0), 10_002))
    );
    // Too little for the block: the same batch answer, the budget now empty.
    let mut little = 4;
    assert_eq!(
        log.offset_for_timestamp_within(10_001, &mut little)
            .unwrap(),
        Some((Offset(0), 10_002))
    );
    assert_eq!(little, 0);
}
