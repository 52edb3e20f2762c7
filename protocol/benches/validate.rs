//! Criterion bench of produce-time batch validation: what
//! `record_batch::validate` costs over the checks the log made before it
//! (header parse + CRC-32C, which `append_validated` no longer repeats).
//!
//! - `produce_validation/off/<shape>`: `BatchHeader::parse` + `compute_crc`.
//! - `produce_validation/on/<shape>`: `validate` (parse, CRC, the record walk;
//!   for zstd, the decompression).
//!
//! Shapes: `1x1KiB` (one record of 1 KiB, the common small produce),
//! `1000x1KiB` uncompressed and zstd. Quick run:
//! `cargo bench -p warren-protocol --bench validate -- --quick`.

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use warren_protocol::record_batch::{self, BatchHeader, ValidationLimits};
use warren_protocol::{Compression, RecordBatchBuilder};

const NOW: i64 = 1_700_000_000_000;

fn batch(records: usize, compression: Compression) -> Bytes {
    let mut b = RecordBatchBuilder::new(compression);
    let value: Vec<u8> = (0..1024u32)
        .map(|i| b"order 42 paid "[(i % 14) as usize])
        .collect();
    for i in 0..records {
        b.append(NOW + i as i64, Some(b"key"), Some(&value), &[]);
    }
    b.build().expect("build")
}

fn produce_validation(c: &mut Criterion) {
    let limits = ValidationLimits {
        max_batch_bytes: 4 << 20,
        max_decompressed_bytes: 4 << 20,
        now_ms: NOW,
        max_timestamp_ahead_ms: 3_600_000,
    };
    let mut group = c.benchmark_group("produce_validation");
    for (shape, records, compression) in [
        ("1x1KiB", 1, Compression::None),
        ("1000x1KiB", 1000, Compression::None),
        ("1000x1KiB-zstd", 1000, Compression::Zstd),
    ] {
        let b = batch(records, compression);
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("off/{shape}"), |bench| {
            bench.iter(|| {
                let header = BatchHeader::parse(black_box(&b)).expect("header");
                black_box(record_batch::compute_crc(&b) == header.crc)
            })
        });
        group.bench_function(format!("on/{shape}"), |bench| {
            bench.iter(|| black_box(record_batch::validate(black_box(&b), &limits).is_ok()))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = produce_validation
}
criterion_main!(benches);
