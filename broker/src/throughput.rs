//! The broker's own traffic history for the admin API's overview: one
//! [`Sample`] every [`SAMPLE_INTERVAL`], the last [`SAMPLES`] of them (ten
//! minutes), so a management page opened now already has a chart.
//!
//! Bytes and requests come from the connection registry's totals
//! ([`Connections::totals`]); records in are the growth of every partition's
//! log end offset, summed: the produce path stays as it is (no counter shared
//! across connections). A partition is told apart from an earlier one of the
//! same topic and number (deleted, then created again) by its `Arc`: a weak
//! reference to the one seen last keeps its allocation, so the address cannot
//! be reused. Partitions present at start count from their log end then;
//! partitions created later from 0.
//!
//! Thread-safe: one `std::sync::Mutex`, held for a walk over the partitions'
//! offsets (atomics, no I/O) every 5 s and per overview request.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::connections::Connections;
use crate::partition::Partition;
use crate::topics::Topics;

/// Time between two samples. Not configurable.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

/// Samples kept: ten minutes at one per [`SAMPLE_INTERVAL`]. Not configurable.
pub const SAMPLES: usize = 120;

/// Rates over one [`SAMPLE_INTERVAL`], ending at `time_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    /// Wall-clock time of the sample, ms since the Unix epoch.
    pub time_ms: u64,
    /// Native-protocol bytes read per second.
    pub bytes_in_per_sec: f64,
    /// Native-protocol bytes written per second.
    pub bytes_out_per_sec: f64,
    /// Records appended per second, all partitions.
    pub records_in_per_sec: f64,
}

/// Counters at one instant, the ends of a [`Sample`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Point {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub records_in: u64,
}

/// See the module docs.
#[derive(Debug)]
pub struct Throughput {
    started: Instant,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Each partition's log end offset when last seen.
    seen: HashMap<(Arc<str>, u32), (Weak<Partition>, u64)>,
    /// Records appended since start, as of the last walk.
    records_in: u64,
    /// The previous sample's counters and time.
    last: Option<(Instant, Point)>,
    samples: VecDeque<Sample>,
}

impl Throughput {
    /// Starts counting: the partitions of `topics` count from their log end
    /// offset now.
    pub fn new(topics: &Topics) -> Throughput {
        let mut inner = Inner::default();
        for topic in topics.list() {
            for p in &topic.partitions {
                inner.seen.insert(
                    (Arc::clone(&p.topic), p.index),
                    (Arc::downgrade(p), p.log.log_end_offset().0),
                );
            }
        }
        Throughput {
            started: Instant::now(),
            inner: Mutex::new(inner),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Time since the broker started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Records appended to any partition since the broker started (partitions
    /// deleted since keep their count).
    pub fn records_in(&self, topics: &Topics) -> u64 {
        let mut inner = self.lock();
        let mut seen = HashMap::with_capacity(inner.seen.len());
        let mut grown = 0u64;
        for topic in topics.list() {
            for p in &topic.partitions {
                let end = p.log.log_end_offset().0;
                let key = (Arc::clone(&p.topic), p.index);
                let before = match inner.seen.get(&key) {
                    Some((weak, before)) if Weak::ptr_eq(weak, &Arc::downgrade(p)) => *before,
                    _ => 0,
                };
                grown += end.saturating_sub(before);
                seen.insert(key, (Arc::downgrade(p), end));
            }
        }
        inner.seen = seen;
        inner.records_in += grown;
        inner.records_in
    }

    /// The counters now.
    pub fn point(&self, topics: &Topics, connections: &Connections) -> Point {
        let totals = connections.totals();
        Point {
            bytes_in: totals.bytes_in,
            bytes_out: totals.bytes_out,
            records_in: self.records_in(topics),
        }
    }

    /// Adds the sample ending at `at` (wall clock `time_ms`) with counters
    /// `point`; the first call only sets the starting point. Drops the oldest
    /// sample beyond [`SAMPLES`].
    pub fn record(&self, at: Instant, time_ms: u64, point: Point) {
        let mut inner = self.lock();
        if let Some((last_at, last)) = inner.last {
            let secs = at.saturating_duration_since(last_at).as_secs_f64();
            let rate = |now: u64, before: u64| {
                if secs > 0.0 {
                    now.saturating_sub(before) as f64 / secs
                } else {
                    0.0
                }
            };
            let sample = Sample {
                time_ms,
                bytes_in_per_sec: rate(point.bytes_in, last.bytes_in),
                bytes_out_per_sec: rate(point.bytes_out, last.bytes_out),
                records_in_per_sec: rate(point.records_in, last.records_in),
            };
            if inner.samples.len() == SAMPLES {
                inner.samples.pop_front();
            }
            inner.samples.push_back(sample);
        }
        inner.last = Some((at, point));
    }

    /// The samples, oldest first.
    pub fn samples(&self) -> Vec<Sample> {
        self.lock().samples.iter().copied().collect()
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Samples every [`SAMPLE_INTERVAL`] until the broker shuts down.
pub async fn run_sampler(
    stats: Arc<Throughput>,
    topics: Arc<Topics>,
    connections: Arc<Connections>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    stats.record(Instant::now(), now_ms(), stats.point(&topics, &connections));
    let mut ticks = tokio::time::interval(SAMPLE_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate; the starting point is already set.
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = shutdown.cancelled() => return,
        }
        let point = stats.point(&topics, &connections);
        stats.record(Instant::now(), now_ms(), point);
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
    use std::sync::Arc;

    use warren_storage::LogManager;

    use super::*;

    fn empty() -> Throughput {
        let dir = tempfile::tempdir().unwrap();
        let topics = Topics::new(Arc::new(LogManager::open(dir.path()).unwrap()));
        Throughput::new(&topics)
    }

    #[test]
    fn rates_are_the_growth_per_second_between_samples() {
        let t = empty();
        let start = Instant::now();
        t.record(start, 1_000, Point::default());
        assert!(t.samples().is_empty(), "the first call only sets the start");
        let point = Point {
            bytes_in: 10_000,
            bytes_out: 5_000,
            records_in: 50,
        };
        t.record(start + SAMPLE_INTERVAL, 6_000, point);
        let s = t.samples();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].time_ms, 6_000);
        assert!((s[0].bytes_in_per_sec - 2_000.0).abs() < 1e-9);
        assert!((s[0].bytes_out_per_sec - 1_000.0).abs() < 1e-9);
        assert!((s[0].records_in_per_sec - 10.0).abs() < 1e-9);
    }

    #[test]
    fn only_the_last_ten_minutes_are_kept_oldest_first() {
        let t = empty();
        let start = Instant::now();
        for i in 0..=(SAMPLES as u64 + 30) {
            let at = start + SAMPLE_INTERVAL * u32::try_from(i).unwrap();
            t.record(at, i, Point::default());
        }
        let s = t.samples();
        assert_eq!(s.len(), SAMPLES);
        assert_eq!(s[0].time_ms, 31);
        assert_eq!(s[SAMPLES - 1].time_ms, SAMPLES as u64 + 30);
    }
}
