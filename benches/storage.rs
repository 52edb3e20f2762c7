//! Criterion micro benches of the storage hot paths: codec decode, index lookup,
//! small appends, random reads.
//!
//! - `record_batch_decode/{none,zstd}`: `RecordBatch::new` + `verify_crc` +
//!   `records()` of one 1000 x 1 KiB batch; throughput counts the uncompressed batch.
//! - `offset_index_lookup/{warren,vec_partition_point}`: `OffsetIndex::lookup` of a
//!   random offset in an index of 262,144 entries (a 1 GiB segment with one entry per
//!   4 KiB), and `partition_point` on a `Vec` of the same entries as the reference.
//! - `log_append_small/<records>x<value bytes>`: `PartitionLog::append`, durability
//!   `none`, of small batches. `Segment::append` is crate-private, so this includes the
//!   log's batch validation (header + CRC-32C) and locking.
//! - `log_read_random`: `PartitionLog::read(random offset, 1 KiB)` in a 64 MiB segment
//!   of ~4 KiB batches (one index entry per batch).
//!
//! Temp files go to `WARREN_BENCH_DIR` or `target/bench-tmp` (a real disk, not tmpfs).
//! Quick run: `cargo bench --bench storage -- --quick`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tempfile::TempDir;
use warren_protocol::{Compression, RecordBatch, RecordBatchBuilder};
use warren_storage::offset_index::OffsetIndex;
use warren_storage::{Durability, FilePosition, LogConfig, Offset, PartitionLog};
use warren_suite::{Rng, bench_root};

/// Entries of a 1 GiB segment's offset index at one entry per 4 KiB.
const INDEX_ENTRIES: u64 = 1 << 18;

fn tempdir(name: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("warren-{name}-"))
        .tempdir_in(bench_root().expect("create the bench temp root"))
        .expect("temp dir")
}

/// A batch of `records` values of `value_bytes` each. `compressible` values are words
/// from a small vocabulary (zstd gets about 3-4x), otherwise random bytes.
fn build_batch(
    records: usize,
    value_bytes: usize,
    compression: Compression,
    compressible: bool,
) -> Bytes {
    const WORDS: [&[u8]; 8] = [
        b"order ",
        b"id ",
        b"42 ",
        b"customer ",
        b"amount ",
        b"EUR ",
        b"status ",
        b"paid ",
    ];
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut builder = RecordBatchBuilder::new(compression);
    let mut value = Vec::with_capacity(value_bytes + 16);
    for i in 0..records {
        value.clear();
        while value.len() < value_bytes {
            if compressible {
                value.extend_from_slice(WORDS[(rng.next() % 8) as usize]);
            } else {
                value.extend_from_slice(&rng.next().to_le_bytes());
            }
        }
        value.truncate(value_bytes);
        builder.append(1_700_000_000_000 + i as i64, None, Some(&value), &[]);
    }
    builder.build().expect("build batch")
}

fn log_config() -> LogConfig {
    LogConfig {
        durability: Durability::None,
        ..LogConfig::default()
    }
}

fn record_batch_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("record_batch_decode");
    let plain = build_batch(1000, 1024, Compression::None, true);
    group.throughput(Throughput::Bytes(plain.len() as u64));
    for (name, compression) in [("none", Compression::None), ("zstd", Compression::Zstd)] {
        let batch = build_batch(1000, 1024, compression, true);
        group.bench_function(name, |b| {
            b.iter(|| {
                let batch = RecordBatch::new(black_box(batch.clone())).expect("batch");
                batch.verify_crc().expect("crc");
                black_box(batch.records().expect("records").len())
            })
        });
    }
    group.finish();
}

fn offset_index_lookup(c: &mut Criterion) {
    let dir = tempdir("index");
    let mut index =
        OffsetIndex::open(&dir.path().join("bench.index"), Offset(0)).expect("open index");
    index.resize(INDEX_ENTRIES * 8).expect("resize index");
    let mut entries = Vec::with_capacity(INDEX_ENTRIES as usize);
    for i in 1..=INDEX_ENTRIES {
        let (offset, position) = (i * 4, (i * 4197) as u32);
        index
            .append(Offset(offset), FilePosition(position))
            .expect("append entry");
        entries.push((offset, position));
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let targets: Vec<u64> = (0..4096)
        .map(|_| rng.next() % ((INDEX_ENTRIES + 1) * 4))
        .collect();
    let mut group = c.benchmark_group("offset_index_lookup");
    group.bench_function("warren", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % targets.len();
            black_box(index.lookup(Offset(targets[i])))
        })
    });
    group.bench_function("vec_partition_point", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % targets.len();
            let t = targets[i];
            black_box(entries.partition_point(|(o, _)| *o <= t))
        })
    });
    group.finish();
}

fn log_append_small(c: &mut Criterion) {
    let mut group = c.benchmark_group("log_append_small");
    for (records, value_bytes) in [(1usize, 100usize), (10, 100), (4, 1024)] {
        let batch = build_batch(records, value_bytes, Compression::None, false);
        group.throughput(Throughput::Bytes(batch.len() as u64));
        let id = BenchmarkId::from_parameter(format!("{records}x{value_bytes}B"));
        group.bench_with_input(id, &batch, |b, batch| {
            // A fresh log per sample keeps every sample far from a segment roll.
            b.iter_custom(|iters| {
                let dir = tempdir("append");
                let log = PartitionLog::open(dir.path(), "bench-0", log_config()).expect("open");
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(log.append(batch).expect("append"));
                }
                start.elapsed()
            })
        });
    }
    group.finish();
}

fn log_read_random(c: &mut Criterion) {
    let dir = tempdir("read");
    let log = PartitionLog::open(dir.path(), "bench-0", log_config()).expect("open");
    let batch = build_batch(4, 1024, Compression::None, false);
    for _ in 0..(64 << 20) / batch.len() {
        log.append(&batch).expect("append");
    }
    log.close().expect("close");
    let end = log.log_end_offset().0;
    let mut rng = Rng(0x5151_5151_5151_5151);
    let targets: Vec<Offset> = (0..4096).map(|_| Offset(rng.next() % end)).collect();
    c.bench_function("log_read_random", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % targets.len();
            black_box(log.read(targets[i], 1024).expect("read"))
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = record_batch_decode, offset_index_lookup, log_append_small, log_read_random
}
criterion_main!(benches);
