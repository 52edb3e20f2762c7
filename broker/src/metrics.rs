//! The broker's Prometheus metrics: [`Metrics`] (one per broker, in
//! `Shared::metrics`) and the per-partition counters
//! ([`PartitionMetrics`](crate::partition::PartitionMetrics), in
//! [`Partition`](crate::partition::Partition)). `GET /metrics` renders them
//! (`http/metrics.rs`); docs/OPERATIONS.md `## Metrics` lists every series.
//!
//! # No global recorder
//! Several brokers run in one test process, so nothing here installs a global
//! recorder or uses the `counter!()` macros. Each broker builds its own
//! `PrometheusRecorder` and registers its handles on it with
//! [`Recorder::register_counter`] and friends, once: broker-wide handles are
//! created when the broker starts (request families lazily, on the first
//! request of each api key and error code, through a `OnceLock` per pair),
//! per-partition handles when the topic is created or loaded.
//!
//! # The hot path
//! Recording is an atomic operation on a cached handle: a `fetch_add` on a
//! counter, a lock-free push into the histogram's atomic bucket. No lock
//! shared across connections is taken, no label is hashed and no string built
//! per request. The histogram buckets are drained into their cumulative form
//! by [`Metrics::run_upkeep`] (a broker task, every [`UPKEEP_INTERVAL`]) and
//! at each scrape, so they stay small whether or not anyone scrapes.
//!
//! # What is rendered at scrape time
//! Point-in-time values (log start/end offset, size on disk, partition count,
//! group lag, share-group in-flight records, open connections) are not kept
//! up to date on the hot path: the handler reads them from the broker's state
//! when Prometheus asks ([`Metrics::render`]). So are the per-partition and
//! per-share-partition counters: their values live in atomics owned by the
//! partition ([`PartitionMetrics`]) or share-partition, and the exporter's
//! registry has no way to drop a series, so a deleted topic's series would
//! linger (and restart from the old values if the name came back). Rendering
//! these families from the live topic map makes a deleted topic's series
//! disappear with it, at the cost of a few lines of text formatting here.
//! Broker-wide families (requests, storage events) go through the recorder.
//!
//! Thread-safe: everything is atomics, `OnceLock`s, and the recorder's own
//! locks (taken only when a handle is registered and when rendering).

use std::fmt::{Display, Write as _};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use metrics::{Counter, Histogram, Key, KeyName, Label, Level, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};
use warren_storage::StorageMetrics;

use warren_storage::KvStore;

use crate::connections::Connections;
use crate::partition::{PartitionCounts, PartitionMetrics};
use crate::share::ShareGroups;
use crate::topics::Topics;

/// How often the broker drains histogram samples into their buckets.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Metric names, in one place (STYLE.md §10).
pub mod names {
    pub const REQUEST_DURATION_SECONDS: &str = "warren_request_duration_seconds";
    pub const REQUESTS_TOTAL: &str = "warren_requests_total";
    pub const FSYNC_DURATION_SECONDS: &str = "warren_fsync_duration_seconds";
    pub const FSYNCS_TOTAL: &str = "warren_fsyncs_total";
    pub const SEGMENT_ROLLS_TOTAL: &str = "warren_segment_rolls_total";
    pub const RETENTION_DELETED_SEGMENTS_TOTAL: &str = "warren_retention_deleted_segments_total";
    pub const RECOVERY_TRUNCATED_BYTES_TOTAL: &str = "warren_recovery_truncated_bytes_total";
    pub const PRODUCED_RECORDS_TOTAL: &str = "warren_produced_records_total";
    pub const PRODUCED_BYTES_TOTAL: &str = "warren_produced_bytes_total";
    pub const FETCHED_RECORDS_TOTAL: &str = "warren_fetched_records_total";
    pub const FETCHED_BYTES_TOTAL: &str = "warren_fetched_bytes_total";
    pub const LOG_START_OFFSET: &str = "warren_log_start_offset";
    pub const LOG_END_OFFSET: &str = "warren_log_end_offset";
    pub const HIGH_WATERMARK: &str = "warren_high_watermark";
    pub const LOG_SIZE_BYTES: &str = "warren_log_size_bytes";
    pub const TOPICS: &str = "warren_topics";
    pub const PARTITIONS: &str = "warren_partitions";
    pub const CONNECTIONS_ACTIVE: &str = "warren_connections_active";
    pub const CONNECTIONS_TOTAL: &str = "warren_connections_total";
    pub const GROUP_LAG: &str = "warren_group_lag";
    pub const SHARE_INFLIGHT_RECORDS: &str = "warren_share_inflight_records";
    pub const DEAD_LETTERED_RECORDS_TOTAL: &str = "warren_dead_lettered_records_total";
    pub const METRICS_SERIES_DROPPED: &str = "warren_metrics_series_dropped";
}

/// Upper bounds of the request latency buckets, in seconds: 50 µs (a
/// produce into the page cache) to 30 s (a long-poll fetch at its wait).
const REQUEST_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0, 30.0,
];

/// Upper bounds of the fsync latency buckets, in seconds: 10 µs (tmpfs) to
/// 5 s (a saturated disk).
const FSYNC_BUCKETS: &[f64] = &[
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// The api label of a request whose api key its protocol does not know.
const UNKNOWN_API: &str = "unknown";

/// How a wire protocol labels its requests in `warren_requests_total` and
/// `warren_request_duration_seconds`: the `api` label of each api key and
/// the `error_code` label of each outcome (the protocol's numeric error
/// code, which the front-end puts in
/// [`Response::outcome`](crate::transport::response::Response::outcome)).
/// Each front-end gives its own ([`FrontEnd::request_labels`](crate::transport::FrontEnd::request_labels)).
#[derive(Debug, Clone)]
pub struct RequestLabels {
    /// The `api` label by api key (the index); a key past the end or
    /// `None` counts as `unknown`.
    pub apis: Vec<Option<&'static str>>,
    /// Every outcome code the protocol knows with its label, in ascending
    /// code order, success (0) first.
    pub outcomes: Vec<(u16, &'static str)>,
    /// The label of a code not in `outcomes`.
    pub unknown_outcome: &'static str,
}

/// The request families of one api key, registered on first use.
struct ApiMetrics {
    name: &'static str,
    duration: OnceLock<Histogram>,
    /// One counter per [`RequestLabels::outcomes`] entry, then one for codes
    /// the protocol does not know.
    by_code: Box<[OnceLock<Counter>]>,
}

/// One protocol's request metrics, over its broker's recorder: built once
/// per listener ([`Metrics::requests`]), recorded into by every connection.
pub struct RequestMetrics {
    metrics: Arc<Metrics>,
    /// Indexed by api key; the last entry is for unknown keys.
    apis: Box<[ApiMetrics]>,
    outcomes: Box<[(u16, &'static str)]>,
    unknown_outcome: &'static str,
}

impl RequestMetrics {
    /// When a request's clock starts: `None` with metrics off, so a broker
    /// without metrics does not even read the clock.
    pub fn started(&self) -> Option<Instant> {
        self.metrics.exporter.as_ref().map(|_| Instant::now())
    }

    /// [`done`](Self::done) for a response ready now; reads the clock only
    /// when metrics are on.
    pub fn ready(&self, api_key: u16, outcome: u16, started: Option<Instant>) {
        if started.is_some() {
            self.done(api_key, outcome, started, Instant::now());
        }
    }

    /// Records one request of api key `api_key` that ended with `outcome`,
    /// from `started` (see [`started`](Self::started)) to `ready`, when its
    /// response was ready to be written.
    pub fn done(&self, api_key: u16, outcome: u16, started: Option<Instant>, ready: Instant) {
        let (Some(exporter), Some(started)) = (&self.metrics.exporter, started) else {
            return;
        };
        let Some(api) = self
            .apis
            .get(usize::from(api_key))
            .or_else(|| self.apis.last())
        else {
            return;
        };
        // Success is the first outcome: the common case skips the search.
        let index = match self.outcomes.first() {
            Some((first, _)) if *first == outcome => 0,
            _ => self
                .outcomes
                .binary_search_by_key(&outcome, |(code, _)| *code)
                .unwrap_or(self.outcomes.len()),
        };
        if let Some(counter) = api.by_code.get(index) {
            counter
                .get_or_init(|| {
                    let name = self
                        .outcomes
                        .get(index)
                        .map_or(self.unknown_outcome, |(_, name)| name);
                    let key = Key::from_parts(
                        names::REQUESTS_TOTAL,
                        vec![Label::new("api", api.name), Label::new("error_code", name)],
                    );
                    exporter.recorder.register_counter(&key, &METADATA)
                })
                .increment(1);
        }
        api.duration
            .get_or_init(|| {
                let key = Key::from_parts(
                    names::REQUEST_DURATION_SECONDS,
                    vec![Label::new("api", api.name)],
                );
                exporter.recorder.register_histogram(&key, &METADATA)
            })
            .record(ready.saturating_duration_since(started).as_secs_f64());
    }
}

/// The recorder of a broker with metrics on.
struct Exporter {
    recorder: PrometheusRecorder,
    handle: metrics_exporter_prometheus::PrometheusHandle,
}

/// One broker's metrics; see the module docs.
pub struct Metrics {
    /// `None` when metrics are off (`metrics = false`): every handle is then
    /// a no-op and `/metrics` answers 404.
    exporter: Option<Exporter>,
    storage: StorageMetrics,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("enabled", &self.enabled())
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// A broker's metrics: a recorder of its own when `enabled`, no-op
    /// handles otherwise.
    pub fn new(enabled: bool) -> Metrics {
        let exporter = enabled.then(|| {
            let builder = PrometheusBuilder::new();
            // Explicit buckets make these real Prometheus histograms
            // (`_bucket`/`_sum`/`_count`, aggregatable across brokers)
            // rather than the exporter's default summaries. Only an empty
            // bucket list is refused, and these are constants.
            let builder = builder
                .set_buckets_for_metric(
                    Matcher::Full(names::REQUEST_DURATION_SECONDS.into()),
                    REQUEST_BUCKETS,
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(names::FSYNC_DURATION_SECONDS.into()),
                        FSYNC_BUCKETS,
                    )
                })
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            describe(&recorder);
            Exporter { recorder, handle }
        });
        let storage = match &exporter {
            Some(e) => StorageMetrics {
                fsync_duration_seconds: e
                    .recorder
                    .register_histogram(&Key::from_name(names::FSYNC_DURATION_SECONDS), &METADATA),
                fsyncs: e
                    .recorder
                    .register_counter(&Key::from_name(names::FSYNCS_TOTAL), &METADATA),
                segment_rolls: e
                    .recorder
                    .register_counter(&Key::from_name(names::SEGMENT_ROLLS_TOTAL), &METADATA),
                retention_deleted_segments: e.recorder.register_counter(
                    &Key::from_name(names::RETENTION_DELETED_SEGMENTS_TOTAL),
                    &METADATA,
                ),
                recovery_truncated_bytes: e.recorder.register_counter(
                    &Key::from_name(names::RECOVERY_TRUNCATED_BYTES_TOTAL),
                    &METADATA,
                ),
            },
            None => StorageMetrics::default(),
        };
        Metrics { exporter, storage }
    }

    /// Whether metrics are on.
    pub fn enabled(&self) -> bool {
        self.exporter.is_some()
    }

    /// The handles storage records into (no-ops when metrics are off).
    pub fn storage(&self) -> StorageMetrics {
        self.storage.clone()
    }

    /// A new partition's handles (no-ops when metrics are off).
    pub fn partition(&self) -> PartitionMetrics {
        PartitionMetrics::new(self.enabled())
    }

    /// The request metrics of a protocol labelled by `labels` (one per
    /// listener).
    pub fn requests(self: &Arc<Self>, labels: RequestLabels) -> RequestMetrics {
        let apis = (0..=labels.apis.len())
            .map(|i| ApiMetrics {
                name: labels.apis.get(i).copied().flatten().unwrap_or(UNKNOWN_API),
                duration: OnceLock::new(),
                by_code: (0..=labels.outcomes.len())
                    .map(|_| OnceLock::new())
                    .collect(),
            })
            .collect();
        RequestMetrics {
            metrics: Arc::clone(self),
            apis,
            outcomes: labels.outcomes.into(),
            unknown_outcome: labels.unknown_outcome,
        }
    }

    /// What the recorder holds, rendered (the request and storage families;
    /// not the scrape-time ones [`render`](Self::render) adds).
    #[cfg(test)]
    pub(crate) fn render_recorded(&self) -> String {
        self.exporter
            .as_ref()
            .map(|e| e.handle.render())
            .unwrap_or_default()
    }

    /// Drains recorded histogram samples into their buckets, so the samples
    /// do not pile up between scrapes.
    pub fn run_upkeep(&self) {
        if let Some(e) = &self.exporter {
            e.handle.run_upkeep();
        }
    }

    /// The Prometheus text of every family, or `None` when metrics are off.
    /// Reads the broker's state (topics, groups, share groups, connections)
    /// for the point-in-time families; blocking only on short in-memory locks.
    pub fn render(&self, state: &StateSources<'_>) -> Option<String> {
        let exporter = self.exporter.as_ref()?;
        let mut out = exporter.handle.render();
        render_state(&mut out, state);
        Some(out)
    }
}

/// The broker state the point-in-time families are read from at scrape
/// time.
pub struct StateSources<'a> {
    pub topics: &'a Topics,
    pub connections: &'a Connections,
    /// The metadata store (committed offsets, for group lag).
    pub kv: &'a KvStore,
    pub share: &'a ShareGroups,
    /// `metrics_max_group_series`: most group series per family.
    pub max_group_series: u32,
}

/// The broker task that drains histogram samples every [`UPKEEP_INTERVAL`]
/// until shutdown; returns at once when metrics are off.
pub async fn run_upkeep(metrics: Arc<Metrics>, shutdown: tokio_util::sync::CancellationToken) {
    if !metrics.enabled() {
        return;
    }
    let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => metrics.run_upkeep(),
            () = shutdown.cancelled() => return,
        }
    }
}

/// Writes `# HELP` for every family the recorder holds.
fn describe(recorder: &PrometheusRecorder) {
    let histograms = [
        (
            names::REQUEST_DURATION_SECONDS,
            "Time from reading a request to its response being ready, by api.",
        ),
        (
            names::FSYNC_DURATION_SECONDS,
            "Time one fdatasync of a segment took (group commit, interval flush, rolled segment).",
        ),
    ];
    for (name, help) in histograms {
        recorder.describe_histogram(KeyName::from(name), Some(Unit::Seconds), help.into());
    }
    let counters = [
        (
            names::REQUESTS_TOTAL,
            "Requests answered, by api and error code (the header's code, or the first \
             partition-level error of a Produce, Fetch or ShareFetch).",
        ),
        (
            names::FSYNCS_TOTAL,
            "fdatasync calls on partition logs and the metadata store.",
        ),
        (names::SEGMENT_ROLLS_TOTAL, "Active segments rolled."),
        (
            names::RETENTION_DELETED_SEGMENTS_TOTAL,
            "Segments deleted by retention (retention.bytes, retention.ms).",
        ),
        (
            names::RECOVERY_TRUNCATED_BYTES_TOTAL,
            "Bytes cut from torn or corrupt segment tails when logs were opened.",
        ),
    ];
    for (name, help) in counters {
        recorder.describe_counter(KeyName::from(name), None, help.into());
    }
}

/// Writes a family's `# HELP` and `# TYPE` lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Writes one sample line.
fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: impl Display) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            escape_label_value(out, v);
            out.push('"');
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// Escapes a label value as the text format requires: backslash, double
/// quote and line feed. (Topic and group names are `[A-Za-z0-9._-]` today;
/// this keeps the output valid if that ever widens.)
fn escape_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// The families read from the broker's state at scrape time.
fn render_state(out: &mut String, state: &StateSources<'_>) {
    let topics = state.topics.list();
    let partitions: Vec<_> = topics
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| (p, p.index.to_string()))
        .collect();
    let labels = |p: &crate::partition::Partition, index: &str| -> [(&str, String); 2] {
        [
            ("topic", p.topic.to_string()),
            ("partition", index.to_owned()),
        ]
    };
    // Per-partition counters, from the partition's own atomics.
    type Pick = fn(&PartitionCounts) -> u64;
    let counters: [(&str, &str, Pick); 4] = [
        (
            names::PRODUCED_RECORDS_TOTAL,
            "Records appended: by Produce requests, and dead-letter copies to a dead-letter topic.",
            |c| c.produced_records,
        ),
        (
            names::PRODUCED_BYTES_TOTAL,
            "RecordBatch bytes appended: by Produce requests, and dead-letter copies.",
            |c| c.produced_bytes,
        ),
        (
            names::FETCHED_RECORDS_TOTAL,
            "Records delivered: offsets covered by the whole batches Fetch responses \
             carried (from batch offsets, not decoded), and records ShareFetch acquired.",
            |c| c.fetched_records,
        ),
        (
            names::FETCHED_BYTES_TOTAL,
            "RecordBatch bytes Fetch and ShareFetch responses carried (sent with sendfile).",
            |c| c.fetched_bytes,
        ),
    ];
    for (name, help, pick) in counters {
        family(out, name, "counter", help);
        for (p, index) in &partitions {
            if let Some(values) = p.metrics.counts() {
                let [a, b] = labels(p, index);
                sample(out, name, &[(a.0, &a.1), (b.0, &b.1)], pick(&values));
            }
        }
    }
    // Per-partition gauges, read from the log.
    type Read = fn(&crate::partition::Partition) -> u64;
    let gauges: [(&str, &str, Read); 4] = [
        (
            names::LOG_START_OFFSET,
            "First offset still in the partition's log.",
            |p| p.log.log_start_offset().0,
        ),
        (
            names::LOG_END_OFFSET,
            "Offset the partition's next appended record gets.",
            |p| p.log.log_end_offset().0,
        ),
        (
            names::HIGH_WATERMARK,
            "Offset below which consumers may read (fsynced under durability fsync).",
            |p| p.high_watermark().0,
        ),
        (
            names::LOG_SIZE_BYTES,
            "Bytes of batches in the partition's segments.",
            |p| p.log.size_bytes(),
        ),
    ];
    for (name, help, read) in gauges {
        family(out, name, "gauge", help);
        for (p, index) in &partitions {
            let [a, b] = labels(p, index);
            sample(out, name, &[(a.0, &a.1), (b.0, &b.1)], read(p));
        }
    }
    family(out, names::TOPICS, "gauge", "Topics.");
    sample(out, names::TOPICS, &[], topics.len());
    family(
        out,
        names::PARTITIONS,
        "gauge",
        "Partitions over all topics.",
    );
    sample(out, names::PARTITIONS, &[], partitions.len());
    family(
        out,
        names::CONNECTIONS_ACTIVE,
        "gauge",
        "Open native-protocol connections.",
    );
    sample(out, names::CONNECTIONS_ACTIVE, &[], state.connections.len());
    family(
        out,
        names::CONNECTIONS_TOTAL,
        "counter",
        "Native-protocol connections accepted since the broker started.",
    );
    sample(
        out,
        names::CONNECTIONS_TOTAL,
        &[],
        state.connections.totals().connections,
    );
    let max = usize::try_from(state.max_group_series).unwrap_or(usize::MAX);
    let mut dropped = Vec::new();
    dropped.push((names::GROUP_LAG, render_groups(out, state, max)));
    dropped.extend(render_share(out, state, max));
    family(
        out,
        names::METRICS_SERIES_DROPPED,
        "gauge",
        "Per-group series left out of this scrape because their family reached \
         metrics_max_group_series.",
    );
    for (name, count) in dropped {
        sample(
            out,
            names::METRICS_SERIES_DROPPED,
            &[("family", name)],
            count,
        );
    }
}

/// Counts the series of one per-group family against
/// `metrics_max_group_series`: a family renders at most `max` series per
/// scrape (groups are created by clients, so their series are not bounded
/// otherwise), and reports how many it left out.
struct SeriesBudget {
    left: usize,
    dropped: usize,
}

impl SeriesBudget {
    fn new(max: usize) -> SeriesBudget {
        SeriesBudget {
            left: max,
            dropped: 0,
        }
    }

    /// Whether one more series may be rendered (counts it either way).
    fn take(&mut self) -> bool {
        if self.left == 0 {
            self.dropped += 1;
            return false;
        }
        self.left -= 1;
        true
    }
}

/// Consumer-group lag per committed partition: high watermark minus the
/// committed offset (what the group could still read), as DescribeGroup
/// reports it. Partitions of deleted topics and partitions with no commit
/// are left out.
fn render_groups(out: &mut String, state: &StateSources<'_>, max: usize) -> usize {
    let mut budget = SeriesBudget::new(max);
    family(
        out,
        names::GROUP_LAG,
        "gauge",
        "Records a consumer group has not committed: high watermark minus committed offset.",
    );
    for c in crate::groups::coordinator::committed_offsets(state.kv) {
        let Some(partition) = state
            .topics
            .get(&c.topic)
            .and_then(|t| t.partitions.get(c.partition as usize).cloned())
        else {
            continue;
        };
        if !budget.take() {
            continue;
        }
        let lag = partition.high_watermark().0.saturating_sub(c.offset);
        let index = c.partition.to_string();
        sample(
            out,
            names::GROUP_LAG,
            &[
                ("group", &c.group),
                ("topic", &c.topic),
                ("partition", &index),
            ],
            lag,
        );
    }
    budget.dropped
}

/// Share-group records in flight (acquired, lock not yet expired) per
/// share-partition, and records dead-lettered per (group, topic).
fn render_share(
    out: &mut String,
    state: &StateSources<'_>,
    max: usize,
) -> [(&'static str, usize); 2] {
    let mut inflight_budget = SeriesBudget::new(max);
    let mut dead_budget = SeriesBudget::new(max);
    let mut stats = state.share.stats();
    stats.sort_by(|a, b| {
        (&a.key.group, &a.key.topic, a.key.partition).cmp(&(
            &b.key.group,
            &b.key.topic,
            b.key.partition,
        ))
    });
    family(
        out,
        names::SHARE_INFLIGHT_RECORDS,
        "gauge",
        "Share-group records acquired by a consumer and not yet acknowledged, released or expired.",
    );
    for s in &stats {
        if !inflight_budget.take() {
            continue;
        }
        let index = s.key.partition.to_string();
        sample(
            out,
            names::SHARE_INFLIGHT_RECORDS,
            &[
                ("group", &s.key.group),
                ("topic", &s.key.topic),
                ("partition", &index),
            ],
            s.in_flight,
        );
    }
    family(
        out,
        names::DEAD_LETTERED_RECORDS_TOTAL,
        "counter",
        "Share-group records written to the dead-letter topic since the broker started, \
         by group and source topic.",
    );
    let mut i = 0;
    while let Some(first) = stats.get(i) {
        let mut sum = 0;
        let mut j = i;
        while let Some(s) = stats
            .get(j)
            .filter(|s| s.key.group == first.key.group && s.key.topic == first.key.topic)
        {
            sum += s.dead_lettered;
            j += 1;
        }
        if dead_budget.take() {
            sample(
                out,
                names::DEAD_LETTERED_RECORDS_TOTAL,
                &[("group", &first.key.group), ("topic", &first.key.topic)],
                sum,
            );
        }
        i = j;
    }
    [
        (names::SHARE_INFLIGHT_RECORDS, inflight_budget.dropped),
        (names::DEAD_LETTERED_RECORDS_TOTAL, dead_budget.dropped),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        sample(&mut out, "m", &[("a", "x\"y\\z\nw")], 1);
        assert_eq!(out, "m{a=\"x\\\"y\\\\z\\nw\"} 1\n");
    }

    #[test]
    fn disabled_metrics_record_nothing_and_render_nothing() {
        let m = Metrics::new(false);
        assert!(!m.enabled());
        let m = Arc::new(m);
        assert!(
            m.requests(RequestLabels {
                apis: vec![Some("Zero")],
                outcomes: vec![(0, "OK")],
                unknown_outcome: "OTHER",
            })
            .started()
            .is_none()
        );
        let p = m.partition();
        p.produced(1, 2);
        assert!(p.counts().is_none());
    }

    #[test]
    fn requests_are_counted_by_api_and_outcome_under_the_protocols_labels() {
        let m = Arc::new(Metrics::new(true));
        let requests = m.requests(RequestLabels {
            apis: vec![Some("Zero"), None, Some("Two")],
            outcomes: vec![(0, "OK"), (3, "THREE"), (7, "SEVEN")],
            unknown_outcome: "OTHER",
        });
        let started = requests.started();
        let now = Instant::now();
        requests.done(0, 0, started, now);
        requests.done(0, 0, started, now);
        requests.done(2, 7, started, now);
        requests.done(2, 3, started, now);
        requests.done(1, 4, started, now);
        requests.done(999, 999, started, now);
        let text = m.render_recorded();
        for line in [
            "warren_requests_total{api=\"Zero\",error_code=\"OK\"} 2",
            "warren_requests_total{api=\"Two\",error_code=\"SEVEN\"} 1",
            "warren_requests_total{api=\"Two\",error_code=\"THREE\"} 1",
            "warren_requests_total{api=\"unknown\",error_code=\"OTHER\"} 2",
            "warren_request_duration_seconds_count{api=\"Zero\"} 2",
            "# TYPE warren_request_duration_seconds histogram",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }
}
