//! Helpers for the log's unit tests: batches, configs, and reading a whole log
//! back.
#![expect(clippy::unwrap_used, reason = "tests")]

use bytes::Bytes;
use warren_protocol::{Compression, RecordBatchBuilder};

use crate::config::{Durability, LogConfig};
use crate::log::PartitionLog;
use crate::offset::Offset;

/// Timestamp of the first record of every test batch.
pub(super) const BASE_TIMESTAMP_MS: i64 = 1_700_000_000_000;

/// A batch of `records` records of `value_bytes` bytes each; record `i` has key
/// `k{tag}-{i}`, values derived from `tag`, timestamp `BASE_TIMESTAMP_MS +
/// tag * 1000 + i`. Base offset 0.
pub(super) fn batch(tag: u64, records: usize, value_bytes: usize) -> Bytes {
    let mut b = RecordBatchBuilder::new(Compression::None);
    for i in 0..records {
        let value: Vec<u8> = (0..value_bytes)
            .map(|j| (tag as usize + i + j) as u8)
            .collect();
        let key = format!("k{tag}-{i}");
        b.append(
            BASE_TIMESTAMP_MS + tag as i64 * 1000 + i as i64,
            Some(key.as_bytes()),
            Some(&value),
            &[],
        );
    }
    b.build().unwrap()
}

/// A config with `segment_bytes` segments, index entries every 256 bytes and no
/// retention.
pub(super) fn config(durability: Durability, segment_bytes: u32) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes: 256,
        max_index_bytes: 4096,
        durability,
        retention_ms: None,
        ..LogConfig::default()
    }
}

/// Every batch of the log, in order, as stored (base offset included),
/// CRC-checked.
pub(super) fn all_batches(log: &PartitionLog) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut from = log.log_start_offset();
    while from < log.log_end_offset() {
        let batches = log.read_batches(from, 1 << 20).unwrap();
        assert!(!batches.is_empty(), "no batch at {from}");
        for b in batches {
            from = Offset(b.header().next_offset() as u64);
            out.push(b.into_bytes());
        }
    }
    out
}

/// "Crashes" the log: drops it without `close()`, so no clean recovery point
/// is written. Joins the roll flushes first: a kill -9 would stop them, here
/// they would go on writing into a directory the test reopens.
pub(super) fn crash(log: PartitionLog) {
    let handles: Vec<_> = crate::log::lock(&log.inner.writer)
        .roll_flushes
        .drain(..)
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    drop(log);
}

/// `batch` with its base offset set to `base_offset` and its partition leader
/// epoch to `leader_epoch` (neither is covered by the CRC), as a leader would
/// send it to a follower.
pub(super) fn leader_batch(tag: u64, records: usize, base_offset: i64, leader_epoch: i32) -> Bytes {
    let mut bytes = batch(tag, records, 20).to_vec();
    warren_protocol::record_batch::set_base_offset(&mut bytes, base_offset).unwrap();
    bytes
        .get_mut(12..16)
        .unwrap()
        .copy_from_slice(&leader_epoch.to_be_bytes());
    Bytes::from(bytes)
}
