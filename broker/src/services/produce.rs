//! Produce: appends each entry's RecordBatch to its partitions, in request
//! order, on the caller's task (one `pwritev` into the page cache per batch,
//! the batch bytes still the request's). Each entry's batch is first
//! validated once, whatever number of partitions it goes to, as Kafka's
//! `LogValidator` does ([`record_batch::validate`]: framing, CRC, size, record
//! count and offset deltas, record lengths, attributes, timestamps at most
//! `message_timestamp_max_skew_ms` ahead); a refused batch is
//! `CorruptMessage` (or `MessageTooLarge`) with the reason, and nothing of it
//! is written.
//!
//! Permissions: each topic needs write (`TopicAuthorizationFailed` per
//! entry); the alternate hop needs write on the alternate topic too,
//! checked with the producer's grants of the moment.
//!
//! Routing (no partition given): `hash` topics use the partitioner
//! (round-robin without a key); `direct` and `topic` topics append the same
//! batch bytes to every partition the key is bound to, in partition order,
//! reading the topic's bindings under their read lock for one `route` call.
//! No match (or no key) sends the batch to the topic's alternate topic,
//! routed by its own mode with the same key and no further hop; failing that
//! the entry is `Unroutable` with a message saying why. The result lists
//! every copy.
//!
//! Durability: an append becomes visible by [`Partition`]'s rule (for
//! `fsync` topics after an fsync, at most one running per partition at a
//! time, [`Partition::sync_in_background`]). With [`Acks::All`] the caller
//! awaits [`DurableWait::wait`] before answering (with the request's
//! timeout) without holding a thread ([`Partition::wait_durable`]); other
//! acks do not wait. Concurrent produces to a partition share fsyncs (the
//! log's group commit). A routed entry waits for the fsync of every
//! partition it was appended to. After a failed fsync the partition refuses
//! appends (`StorageFailed`) until the broker restarts.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use warren_protocol::api::auth::{Permission, ResourceType};
use warren_protocol::api::bindings::RoutingMode;
use warren_protocol::partition_for_key;
use warren_protocol::record_batch::{self, ValidatedBatch, ValidationLimits};
use warren_storage::Offset;

use super::{ErrorKind, ServiceError};
use crate::auth::Grants;
use crate::partition::Partition;
use crate::topics::{Topic, Topics};

/// Decompression a Produce request may cause in all, at least: 64 MiB (64
/// batches at the default `max.message.bytes`, whatever their ratio). Not
/// configurable.
pub const DECOMPRESSION_FLOOR_BYTES: usize = 64 << 20;

/// Beyond [`DECOMPRESSION_FLOOR_BYTES`], the decompressed bytes a Produce
/// request may cause per byte of record batches it carries. A zstd bomb
/// (130 bytes that inflate to the 1 MiB limit) would otherwise let one 16 MiB
/// frame cost about 129 GB of decompression, minutes of a worker thread;
/// with the budget it costs at most 1 GiB. Real data compresses 3-20x; only
/// requests of more than 64 MiB decompressed at a ratio above 64 meet it.
/// Not configurable.
pub const DECOMPRESSION_RATIO: usize = 64;

/// What the producer waits for before it is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// No answer at all.
    None,
    /// Appended on this broker (in the page cache).
    Leader,
    /// Visible to consumers: for `fsync` topics, fsynced.
    All,
}

/// One entry of a produce: a batch for a partition, or routed by its key.
#[derive(Debug, Clone, Copy)]
pub struct ProduceEntry<'a> {
    /// The partition, or `None` to route by key.
    pub partition: Option<u32>,
    pub routing_key: Option<&'a str>,
    /// One RecordBatch as sent.
    pub records: &'a [u8],
}

/// What became of one entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryResult {
    /// Why it failed, if it did (copies before the failure stay written;
    /// the message says which).
    pub error: Option<ServiceError>,
    /// The (first) partition the batch was appended to or failed at, once
    /// one was chosen.
    pub partition: Option<u32>,
    /// Its base offset there, on success.
    pub base_offset: Option<u64>,
    /// Further copies of a routed batch: partition and base offset, in
    /// partition order.
    pub more: Vec<(u32, u64)>,
    /// The alternate topic the batch went to instead of the topic named.
    pub alternate_topic: Option<String>,
}

impl EntryResult {
    fn failed(error: ServiceError) -> EntryResult {
        EntryResult {
            error: Some(error),
            ..EntryResult::default()
        }
    }

    /// Marks the entry failed after its appends: no offsets any more.
    fn fail(&mut self, error: ServiceError) {
        self.error = Some(error);
        self.base_offset = None;
        self.more.clear();
    }
}

/// The produce service; see the module docs.
#[derive(Clone)]
pub struct Producer {
    topics: Arc<Topics>,
    /// `message_timestamp_max_skew_ms`: how far ahead of the broker's clock
    /// a record's timestamp may be.
    max_timestamp_ahead_ms: u64,
}

impl Producer {
    /// The service over `topics`, accepting timestamps at most
    /// `max_timestamp_ahead_ms` ahead.
    pub fn new(topics: Arc<Topics>, max_timestamp_ahead_ms: u64) -> Producer {
        Producer {
            topics,
            max_timestamp_ahead_ms,
        }
    }

    /// Starts one produce request of a caller with `grants`, carrying
    /// `request_bytes` of record batches in all (its decompression budget
    /// grows with them).
    pub fn start<'g>(&'g self, grants: &'g Grants, request_bytes: usize) -> Produce<'g> {
        Produce {
            producer: self,
            grants,
            targets: Vec::new(),
            syncs: PendingSyncs::new(),
            decompress_budget: DECOMPRESSION_FLOOR_BYTES
                .saturating_add(request_bytes.saturating_mul(DECOMPRESSION_RATIO)),
            results: Vec::new(),
        }
    }
}

/// An fsync to wait for: the partition, the offset it must cover, and which
/// entries depend on it (`(topic index, entry index)`).
struct PendingSync {
    partition: Arc<Partition>,
    target: Offset,
    entries: Vec<(usize, usize)>,
}

/// The fsyncs a request waits for, one per partition, keyed by the
/// partition's address (its identity while the entry holds its `Arc`): a map,
/// so a request with many entries costs one lookup each, not a scan.
type PendingSyncs = HashMap<usize, PendingSync>;

/// One produce request under way: [`topic`](Self::topic) appends each
/// topic's entries, [`finish`](Self::finish) says what is left to wait for.
pub struct Produce<'g> {
    producer: &'g Producer,
    grants: &'g Grants,
    /// The partitions of the entry at hand, so routing allocates nothing per
    /// entry.
    targets: Vec<u32>,
    syncs: PendingSyncs,
    /// Decompression the request may still cause.
    decompress_budget: usize,
    /// Per topic, per entry.
    results: Vec<Vec<EntryResult>>,
}

/// The results of a request, per topic and entry, in request order.
pub type ProduceResults = Vec<Vec<EntryResult>>;

/// What [`Produce::finish`] leaves.
pub enum Produced {
    /// Answer now.
    Done(ProduceResults),
    /// Answer once [`DurableWait::wait`] returns.
    Waiting(DurableWait),
}

impl Produce<'_> {
    /// Appends the entries of one topic, in order. Results are kept in the
    /// order topics and entries come.
    pub fn topic<'a>(
        &mut self,
        topic: &str,
        entries: impl ExactSizeIterator<Item = ProduceEntry<'a>>,
    ) {
        let ti = self.results.len();
        let allowed = self
            .grants
            .allows(ResourceType::Topic, topic, Permission::Write);
        let found = self.producer.topics.get(topic);
        let mut results = Vec::with_capacity(entries.len());
        for (ei, entry) in entries.enumerate() {
            let result = match &found {
                _ if !allowed => {
                    EntryResult::failed(ServiceError::bare(ErrorKind::TopicAuthorizationFailed))
                }
                None => EntryResult::failed(ServiceError::bare(ErrorKind::UnknownTopic)),
                Some(t) => self.append_entry(t, &entry, (ti, ei)),
            };
            results.push(result);
        }
        self.results.push(results);
    }

    /// Ends the request: with [`Acks::All`] and something to fsync, the
    /// wait; otherwise the results now (the fsyncs, if any, run in the
    /// background).
    pub fn finish(self, acks: Acks) -> Produced {
        if acks != Acks::All || self.syncs.is_empty() {
            for s in self.syncs.into_values() {
                // Syncs to the log end, which covers `s.target`. A failure is
                // logged by the log and fails the partition.
                s.partition.sync_in_background();
            }
            return Produced::Done(self.results);
        }
        Produced::Waiting(DurableWait {
            results: self.results,
            syncs: self.syncs,
        })
    }

    /// Appends one entry's batch where it goes: the explicit partition, or
    /// the partitions routing finds (see [`route`](Self::route)). Registers
    /// the fsyncs to wait for, tied to the entry `at` once every copy is
    /// appended.
    fn append_entry(
        &mut self,
        topic: &Arc<Topic>,
        entry: &ProduceEntry<'_>,
        at: (usize, usize),
    ) -> EntryResult {
        let alternate = match entry.partition {
            None => match self.route(topic, entry.routing_key) {
                Ok(alternate) => alternate,
                Err(e) => {
                    tracing::debug!(topic = %topic.config.name, message = %e, kind = ?e.kind, "batch not routed");
                    return EntryResult::failed(e);
                }
            },
            Some(partition) => {
                self.targets.clear();
                self.targets.push(partition);
                None
            }
        };
        let dest = alternate.as_ref().unwrap_or(topic);
        let mut result = EntryResult {
            alternate_topic: alternate.as_ref().map(|t| t.config.name.clone()),
            ..EntryResult::default()
        };
        // Once per entry, before any copy is written.
        let batch = match self.validate(dest, entry.records) {
            Ok(batch) => {
                self.decompress_budget = self
                    .decompress_budget
                    .saturating_sub(batch.decompressed_bytes());
                batch
            }
            Err(e) => {
                tracing::debug!(topic = %dest.config.name, message = %e, "produced batch refused");
                result.error = Some(e);
                return result;
            }
        };
        for (copy, &index) in self.targets.iter().enumerate() {
            // Bindings are checked against the partition count; only an
            // explicit partition can miss.
            let Some(partition) = dest.partitions.get(index as usize) else {
                result.fail(ServiceError::bare(ErrorKind::UnknownPartition));
                return result;
            };
            match partition.append_validated(&batch) {
                Ok(info) => {
                    if partition.syncs_before_visible() {
                        note_sync(&mut self.syncs, partition, info.log_end_offset, None);
                    }
                    if copy == 0 {
                        result.partition = Some(index);
                        result.base_offset = Some(info.base_offset.0);
                    } else {
                        result.more.push((index, info.base_offset.0));
                    }
                }
                Err(e) => {
                    let mut error = ServiceError::storage(&e, "append");
                    if error.kind == ErrorKind::DiskFull {
                        tracing::warn!(
                            partition = partition.log.name(),
                            "disk full: produce refused"
                        );
                    }
                    if copy > 0 {
                        let written = self.targets.get(..copy).unwrap_or_default();
                        error.message = Some(format!(
                            "appended to partitions {written:?} of {} before partition {index} failed: {}",
                            dest.config.name,
                            error.kind.name()
                        ));
                    } else if matches!(e, warren_storage::Error::Failed(_)) {
                        // Offline for writes: say why and what brings it back.
                        error.message = Some(format!(
                            "{e}: partition {index} of {} is offline for writes until the broker restarts",
                            dest.config.name
                        ));
                    } else {
                        error.message = None;
                    }
                    result.partition = Some(index);
                    result.fail(error);
                    return result;
                }
            }
        }
        // Every copy is in: the entry's answer waits for each fsync (acks=-1).
        for &index in &self.targets {
            if let Some(partition) = dest.partitions.get(index as usize)
                && partition.syncs_before_visible()
            {
                note_sync(&mut self.syncs, partition, Offset(0), Some(at));
            }
        }
        result
    }

    /// Finds where a batch produced with no partition goes: fills `targets`
    /// with the partitions and returns the alternate topic when the batch
    /// goes there instead of to `topic`.
    ///
    /// # Errors
    /// `Unroutable` with its message: nothing matched in `topic`, and there
    /// is no alternate topic, it does not exist, or nothing matched there
    /// either (its own alternate is never followed, so there are no loops).
    /// `TopicAuthorizationFailed` naming the alternate topic when the grants
    /// do not allow writing to it (checked before looking it up, so a refusal
    /// says nothing about whether it exists).
    fn route(
        &mut self,
        topic: &Topic,
        key: Option<&str>,
    ) -> Result<Option<Arc<Topic>>, ServiceError> {
        route_in(topic, key, &mut self.targets);
        if !self.targets.is_empty() {
            return Ok(None);
        }
        let name = &topic.config.name;
        let unmatched = match key {
            Some(key) => format!("no binding of topic {name} matches routing key {key:?}"),
            None => format!(
                "the batch has no routing key and topic {name} routes by {} bindings",
                topic.routing()
            ),
        };
        let unroutable = |message: String| ServiceError::new(ErrorKind::Unroutable, message);
        let Some(alternate_name) = &topic.config.routing.alternate_topic else {
            return Err(unroutable(unmatched));
        };
        if !self
            .grants
            .allows(ResourceType::Topic, alternate_name, Permission::Write)
        {
            return Err(ServiceError::new(
                ErrorKind::TopicAuthorizationFailed,
                format!(
                    "{unmatched}; not authorized to write to its alternate topic {alternate_name}"
                ),
            ));
        }
        let Some(alternate) = self.producer.topics.get(alternate_name) else {
            return Err(unroutable(format!(
                "{unmatched}, and its alternate topic {alternate_name} does not exist"
            )));
        };
        route_in(&alternate, key, &mut self.targets);
        if self.targets.is_empty() {
            return Err(unroutable(format!(
                "{unmatched}, nor does any binding of its alternate topic {alternate_name}"
            )));
        }
        Ok(Some(alternate))
    }

    /// Validates an entry's batch for `dest` ([`record_batch::validate`]),
    /// within what is left of the request's decompression budget.
    ///
    /// # Errors
    /// `MessageTooLarge` for size (the batch's own, or the request's
    /// decompression budget), otherwise `CorruptMessage`, with the reason.
    fn validate<'a>(
        &self,
        dest: &Topic,
        records: &'a [u8],
    ) -> Result<ValidatedBatch<'a>, ServiceError> {
        let budget = self.decompress_budget;
        let limit = dest.config.log.batch_limit() as usize;
        let per_batch = limit.min(record_batch::DEFAULT_MAX_DECOMPRESSED_BYTES);
        let limits = ValidationLimits {
            max_batch_bytes: limit,
            max_decompressed_bytes: per_batch.min(budget),
            now_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            max_timestamp_ahead_ms: self.producer.max_timestamp_ahead_ms,
        };
        record_batch::validate(records, &limits).map_err(|e| match e {
            warren_protocol::Error::DecompressedTooLarge { .. } if budget < per_batch => {
                ServiceError::new(
                    ErrorKind::MessageTooLarge,
                    format!(
                        "batch refused, nothing written: the request's compressed batches decompress to \
                         more than its budget ({DECOMPRESSION_FLOOR_BYTES} bytes plus \
                         {DECOMPRESSION_RATIO} times the request's record bytes); send fewer compressed \
                         batches per request"
                    ),
                )
            }
            warren_protocol::Error::BatchOverLimit { .. }
            | warren_protocol::Error::DecompressedTooLarge { .. } => ServiceError::new(
                ErrorKind::MessageTooLarge,
                format!("batch refused, nothing written: {e}"),
            ),
            _ => ServiceError::new(
                ErrorKind::CorruptMessage,
                format!("batch refused, nothing written: {e}"),
            ),
        })
    }
}

/// The fsyncs an [`Acks::All`] request waits for before it is answered.
pub struct DurableWait {
    results: ProduceResults,
    syncs: PendingSyncs,
}

impl DurableWait {
    /// Waits (at most `timeout` for each partition, all at once) until every
    /// appended entry is durable; an entry whose partition failed its fsync
    /// or did not make it in time gets `StorageFailed` (the message says
    /// why) or `TimedOut`.
    pub async fn wait(self, timeout: Duration) -> ProduceResults {
        let DurableWait { mut results, syncs } = self;
        let waits = syncs.into_values().map(|s| async move {
            let error =
                match tokio::time::timeout(timeout, s.partition.wait_durable(s.target)).await {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(ServiceError::storage(&e, "fsync")),
                    Err(_) => Some(ServiceError::bare(ErrorKind::TimedOut)),
                };
            (error, s.entries)
        });
        for (error, entries) in futures_util::future::join_all(waits).await {
            let Some(error) = error else {
                continue;
            };
            for (ti, ei) in entries {
                if let Some(r) = results.get_mut(ti).and_then(|t| t.get_mut(ei)) {
                    r.fail(error.clone());
                }
            }
        }
        results
    }
}

/// Records that `partition` must be fsynced up to `target` (keeping the
/// highest target seen), and that entry `at`, if any, waits for it.
fn note_sync(
    syncs: &mut PendingSyncs,
    partition: &Arc<Partition>,
    target: Offset,
    at: Option<(usize, usize)>,
) {
    let sync = syncs
        .entry(Arc::as_ptr(partition) as usize)
        .or_insert_with(|| PendingSync {
            partition: Arc::clone(partition),
            target,
            entries: Vec::new(),
        });
    sync.target = sync.target.max(target);
    sync.entries.extend(at);
}

/// Fills `targets` with the partitions `topic`'s own mode gives `key`: one
/// for `hash` (the partitioner, or round-robin without a key), the bound ones
/// for `direct` and `topic` (none without a key).
fn route_in(topic: &Topic, key: Option<&str>, targets: &mut Vec<u32>) {
    match (topic.routing(), key) {
        (RoutingMode::Hash, key) => {
            targets.clear();
            targets.push(match key {
                Some(key) => partition_for_key(key.as_bytes(), topic.config.partitions),
                None => topic.round_robin(),
            });
        }
        (RoutingMode::Direct | RoutingMode::Topic, Some(key)) => topic.route(key, targets),
        (RoutingMode::Direct | RoutingMode::Topic, None) => targets.clear(),
    }
}
