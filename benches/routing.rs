//! Criterion bench of the `topic` routing mode's matcher.
//!
//! - `topic_route/<bindings>`: `TopicBindings::route` of a random 5-word routing key
//!   against 10, 1,000 and 10,000 bindings. The patterns are 2 to 5 words drawn from a
//!   per-level vocabulary (8 words at level 0, 24 below), each word literal (80%), `*`
//!   (15%) or, as the last word, `#` (5%, plus 1 pattern in 50 that starts with `#`),
//!   bound to one of 64 partitions. The routing keys use the same vocabulary, so they
//!   do match. With a trie the cost follows the live states per word, not the number
//!   of bindings: it should grow far slower than 1,000x from 10 to 10,000 bindings.
//!
//! Quick run: `cargo bench --bench routing -- --quick`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use warren_broker::routing::TopicBindings;
use warren_suite::Rng;

const PARTITIONS: u64 = 64;
const KEYS: usize = 1024;

/// A word of level `level` (`l0w3`, `l2w17`, ...).
fn word(rng: &mut Rng, level: usize) -> String {
    let vocabulary = if level == 0 { 8 } else { 24 };
    format!("l{level}w{}", rng.below(vocabulary))
}

fn pattern(rng: &mut Rng) -> String {
    let len = 2 + usize::try_from(rng.below(4)).expect("small");
    let mut words = Vec::with_capacity(len + 1);
    if rng.below(50) == 0 {
        words.push("#".to_owned());
    }
    for level in 0..len {
        let roll = rng.below(100);
        words.push(if level + 1 == len && roll < 5 {
            "#".to_owned()
        } else if roll < 20 {
            "*".to_owned()
        } else {
            word(rng, level)
        });
    }
    words.join(".")
}

fn topic_route(c: &mut Criterion) {
    let mut group = c.benchmark_group("topic_route");
    for count in [10_usize, 1_000, 10_000] {
        let mut rng = Rng(0x7061_7474_6572_6e73 ^ count as u64);
        let mut bindings = TopicBindings::new();
        while bindings.len() < count {
            let partition = u32::try_from(rng.below(PARTITIONS)).expect("small");
            bindings
                .insert(&pattern(&mut rng), partition)
                .expect("valid");
        }
        let keys: Vec<String> = (0..KEYS)
            .map(|_| {
                (0..5)
                    .map(|level| word(&mut rng, level))
                    .collect::<Vec<_>>()
                    .join(".")
            })
            .collect();
        let mut out = Vec::new();
        let matched: usize = keys
            .iter()
            .map(|key| {
                bindings.route(key, &mut out);
                out.len()
            })
            .sum();
        eprintln!(
            "topic_route/{count}: on average {:.1} partitions per key",
            matched as f64 / KEYS as f64
        );
        group.bench_with_input(BenchmarkId::from_parameter(count), &keys, |b, keys| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % keys.len();
                bindings.route(black_box(&keys[i]), &mut out);
                black_box(out.len())
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = topic_route
}
criterion_main!(benches);
