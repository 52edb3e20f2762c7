//! Criterion bench of what metrics add to the produce hot path, per call:
//!
//! - `request/on`, `request/off`: one request's recording as the connection
//!   does it: `request_started` (a clock read), then `request_ready` (a
//!   clock read, a counter and a histogram sample on cached handles); off,
//!   neither reads the clock.
//! - `append/on`, `append/off`: one append's `PartitionMetrics::produced`
//!   (two counter increments).
//!
//! A produce request costs the broker tens of microseconds of CPU (README,
//! "Metrics"), so these nanoseconds are what "within 3%" rests on when the
//! machine is too busy for the end-to-end comparison to resolve 3%.
//!
//! Quick run: `cargo bench --bench metrics_record -- --quick`.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use warren_broker::metrics::Metrics;
use warren_protocol::ErrorCode;
use warren_protocol::api::ApiKey;

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("request");
    for (name, enabled) in [("on", true), ("off", false)] {
        let metrics = Metrics::new(enabled);
        group.bench_function(name, |b| {
            b.iter(|| {
                let started = metrics.request_started();
                metrics.request_ready(
                    black_box(ApiKey::Produce as u16),
                    black_box(ErrorCode::NONE),
                    started,
                );
            });
        });
        // Keep the histogram's sample buckets from growing through the run,
        // as the broker's upkeep task does.
        metrics.run_upkeep();
    }
    group.finish();
    let mut group = c.benchmark_group("append");
    for (name, enabled) in [("on", true), ("off", false)] {
        let partition = Metrics::new(enabled).partition();
        group.bench_function(name, |b| {
            b.iter(|| partition.produced(black_box(40), black_box(4096)));
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
