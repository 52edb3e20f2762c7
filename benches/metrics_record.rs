//! Criterion bench of what metrics add to the produce hot path, per call:
//!
//! - `request/on`, `request/off`: one request's recording as the connection
//!   does it: `RequestMetrics::started` (a clock read), then `ready` (a
//!   clock read, a counter and a histogram sample on cached handles); off,
//!   neither reads the clock. The labels are the native protocol's shape
//!   (every api key and error code).
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
use std::sync::Arc;
use warren_broker::metrics::{Metrics, RequestLabels};
use warren_protocol::ErrorCode;
use warren_protocol::api::ApiKey;

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("request");
    for (name, enabled) in [("on", true), ("off", false)] {
        let metrics = Arc::new(Metrics::new(enabled));
        let requests = metrics.requests(native_labels());
        group.bench_function(name, |b| {
            b.iter(|| {
                let started = requests.started();
                requests.ready(
                    black_box(ApiKey::Produce as u16),
                    black_box(ErrorCode::NONE.0),
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

/// Labels shaped as the native front-end's: every api key, every code.
fn native_labels() -> RequestLabels {
    let max_key = ApiKey::SUPPORTED
        .iter()
        .map(|(k, _, _)| *k as u16)
        .max()
        .unwrap_or(0);
    RequestLabels {
        apis: (0..=max_key)
            .map(|k| ApiKey::try_from(k).ok().map(ApiKey::name))
            .collect(),
        outcomes: ErrorCode::ALL.iter().map(|c| (c.0, c.name())).collect(),
        unknown_outcome: "UNKNOWN_CODE",
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
