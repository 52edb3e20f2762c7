//! Helpers shared by the storage integration tests.
#![allow(dead_code, reason = "each test file uses a different subset")]
#![expect(clippy::unwrap_used, reason = "tests")]

use std::path::Path;

use bytes::Bytes;
use warren_protocol::{Compression, Header, RecordBatchBuilder};
use warren_storage::{Durability, LogConfig, Offset, PartitionLog};

/// A batch of `records` records; record `i` has key `k{tag}-{i}` and a value of
/// `value_bytes` bytes derived from `tag` and `i`, timestamp `timestamp + i`.
pub fn batch(tag: u64, records: usize, value_bytes: usize, timestamp: i64) -> Bytes {
    let mut b = RecordBatchBuilder::new(Compression::None);
    for i in 0..records {
        let value: Vec<u8> = (0..value_bytes)
            .map(|j| (tag as usize + i + j) as u8)
            .collect();
        let key = format!("k{tag}-{i}");
        b.append(
            timestamp + i as i64,
            Some(key.as_bytes()),
            Some(&value),
            &[Header::new("tag", tag.to_string())],
        );
    }
    b.build().unwrap()
}

/// A small-segment config for tests that want rolls.
pub fn small_config(segment_bytes: u32) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes: 256,
        max_index_bytes: 64 * 1024,
        durability: Durability::None,
        retention_ms: None,
        ..LogConfig::default()
    }
}

pub fn open(dir: &Path, config: LogConfig) -> PartitionLog {
    PartitionLog::open(dir, "test-0", config).unwrap()
}

/// Every batch in the log as (base offset, bytes after the base offset field).
pub fn all_batches(log: &PartitionLog) -> Vec<(u64, Bytes)> {
    let mut out = Vec::new();
    let mut from = log.log_start_offset();
    while from < log.log_end_offset() {
        let batches = log.read_batches(from, 1 << 20).unwrap();
        assert!(!batches.is_empty(), "no batch at {from}");
        for b in batches {
            let h = *b.header();
            out.push((h.base_offset as u64, b.as_bytes().slice(8..)));
            from = Offset(h.next_offset() as u64);
        }
    }
    out
}

/// Copies a directory tree (partition dirs are flat).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// Waits (at most 5 s) until the background flushes of rolled segments have
/// moved the durable offset up to the active segment.
pub fn wait_for_roll_flushes(log: &PartitionLog) {
    let active = log.segments().last().unwrap().base_offset();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while log.durable_offset() < active {
        assert!(
            std::time::Instant::now() < deadline,
            "roll flushes did not finish"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// "Crashes" the log: drops it without `close()`, so no clean recovery point is
/// written. Waits for roll flushes first: a real kill -9 stops those threads,
/// while here they would go on writing into a directory the test reopens.
pub fn crash(log: PartitionLog) {
    wait_for_roll_flushes(&log);
    drop(log);
}
