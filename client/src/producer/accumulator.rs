//! The record accumulator: per-partition batches under construction and
//! batches waiting to be sent, plus the producer's memory budget.
//!
//! ```text
//! send ──▶ memory (semaphore of buffer_bytes permits)
//!      ──▶ topic map (RwLock, read) ──▶ partition (Mutex) ──▶ open batch: append
//!                                                            └▶ ready: VecDeque<ProducerBatch>
//! sender ──▶ drain(): closes open batches whose linger passed, pops ready ones
//! ```
//!
//! Each partition has at most one *open* batch (a `RecordBatchBuilder` that
//! records are encoded straight into) and a queue of *ready* batches, closed
//! and waiting for the sender, in the order their records were sent (a retried
//! batch goes back to its place by batch id). A record that would take the
//! open batch past `batch_bytes` closes it first, so a batch exceeds
//! `batch_bytes` only when it holds a single larger record.
//!
//! Memory: `send` takes permits for an upper bound of the record's encoded
//! size before touching any lock (and waits there when the buffer is full);
//! the batch returns them when it completes. The budget counts encoded record
//! bytes; builders may hold up to one `batch_bytes` of spare capacity per
//! partition on top.
//!
//! Keyless records go to the topic's *sticky* partition until its batch is
//! closed (full or lingered out), then to the next partition.
//!
//! Records the broker routes by its bindings (`direct` and `topic` topics,
//! no explicit partition) are batched per routing key instead, in *routed
//! lanes* ([`Lane::Routed`]): a batch carries one routing key, since the
//! broker routes whole batches. A lane is created on its first record and
//! dropped by `drain` once it holds nothing, so the number of distinct keys
//! does not grow memory.
//!
//! Thread-safe. Locks: the topic map's `RwLock` (written only when a topic is
//! first seen), then one partition `Mutex` or the topic's routed-lanes
//! `Mutex` (never both), then the `incomplete` map; never in another order.
//! None is held across an `.await`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use warren_protocol::api::bindings::RoutingMode;
use warren_protocol::record_batch::BATCH_HEADER_LEN;
use warren_protocol::{Compression, Header, RecordBatchBuilder};

use super::delivery::{BatchCompletion, BatchDelivered, DeliveryFuture};
use crate::error::{Error, Result};

/// FNV-1a for the topic map: `send` hashes the topic name on every call, and
/// names are short and chosen by the application (no flooding to defend
/// against), so a simple hash beats SipHash here.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TopicHasher(u64);

impl Default for TopicHasher {
    fn default() -> Self {
        TopicHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for TopicHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

type TopicMap = HashMap<Arc<str>, Arc<TopicBatches>, BuildHasherDefault<TopicHasher>>;

/// Smallest capacity reserved for a new batch's records.
const MIN_BATCH_RESERVE: usize = 4 << 10;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock means a panic elsewhere mid-update of plain data; the
    // data is still usable and the panic is reported where it happened.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An upper bound of a record's encoded size: its bytes plus the widest
/// varints of every length field.
pub(crate) fn record_size_bound(
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[Header],
) -> usize {
    let mut n = key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len);
    for h in headers {
        n += h.key.len() + h.value.as_ref().map_or(0, Bytes::len) + 10;
    }
    // length (5) + attributes (1) + timestamp delta (10) + offset delta (5)
    // + key and value lengths (10) + header count (5)
    n + 36
}

/// A record's fields, borrowed for the time of an append.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordRef<'a> {
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [Header],
}

/// Where an appended record goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement<'a> {
    /// This partition (explicit, or from the key's hash).
    Fixed(u32),
    /// The topic's sticky partition.
    Sticky,
    /// The broker routes it by its bindings, with this routing key (`None`:
    /// a null key).
    Routed(Option<&'a str>),
}

/// The queue a batch belongs to, and so where it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lane {
    /// A partition the producer chose.
    Partition(u32),
    /// Sent with `partition = -1` and this routing key (`None`: null); the
    /// broker's bindings pick the partitions.
    Routed(Option<Arc<str>>),
}

impl Lane {
    /// The partition, for a [`Lane::Partition`].
    pub(crate) fn partition(&self) -> Option<u32> {
        match self {
            Lane::Partition(p) => Some(*p),
            Lane::Routed(_) => None,
        }
    }

    /// The routing key of a [`Lane::Routed`].
    pub(crate) fn routing_key(&self) -> Option<&str> {
        match self {
            Lane::Routed(key) => key.as_deref(),
            Lane::Partition(_) => None,
        }
    }
}

/// One batch, from its first record to its completion.
#[derive(Debug)]
pub(crate) struct ProducerBatch {
    /// Creation order within the producer; a retried batch is put back by it.
    pub id: u64,
    pub topic: Arc<TopicBatches>,
    pub lane: Lane,
    /// The records, until the sender builds the batch.
    pub builder: Option<RecordBatchBuilder>,
    /// The built batch (kept for retries).
    pub built: Option<Bytes>,
    pub record_count: u32,
    /// Memory permits to return on completion.
    pub reserved_bytes: usize,
    pub completion: Arc<BatchCompletion>,
    pub created: Instant,
    pub deadline: Instant,
    pub attempts: u32,
    pub retry_at: Option<Instant>,
    /// The error of the last failed attempt, reported when the deadline passes.
    pub last_error: Option<Error>,
}

impl ProducerBatch {
    /// Encoded size so far (before compression), or the built size.
    pub(crate) fn size_bytes(&self) -> usize {
        match (&self.built, &self.builder) {
            (Some(b), _) => b.len(),
            (None, Some(b)) => b.estimated_bytes(),
            (None, None) => BATCH_HEADER_LEN,
        }
    }
}

/// One lane's batches: a partition's, or a routing key's.
#[derive(Debug, Default)]
struct PartitionBatches {
    open: Option<ProducerBatch>,
    ready: VecDeque<ProducerBatch>,
    /// Size of the last batch closed here: the next one reserves about as much.
    last_batch_bytes: usize,
}

/// A topic's routed lanes (see the module docs).
#[derive(Debug, Default)]
struct RoutedLanes {
    /// By routing key.
    keyed: HashMap<Arc<str>, PartitionBatches>,
    /// Records with a null key.
    keyless: PartitionBatches,
}

impl RoutedLanes {
    fn lane(&mut self, key: Option<&str>) -> &mut PartitionBatches {
        let Some(key) = key else {
            return &mut self.keyless;
        };
        // Look up by `&str`: a new `Arc` only for a new key.
        if !self.keyed.contains_key(key) {
            self.keyed
                .insert(Arc::from(key), PartitionBatches::default());
        }
        // Just inserted if it was missing: the fallback is never taken.
        self.keyed.get_mut(key).unwrap_or(&mut self.keyless)
    }

    /// Drops keyed lanes that hold nothing.
    fn prune(&mut self) {
        self.keyed
            .retain(|_, lane| lane.open.is_some() || !lane.ready.is_empty());
    }
}

/// One topic's partitions.
#[derive(Debug)]
pub(crate) struct TopicBatches {
    pub name: Arc<str>,
    /// How the broker routes the topic's unpartitioned records.
    routing: RoutingMode,
    partitions: Box<[Mutex<PartitionBatches>]>,
    routed: Mutex<RoutedLanes>,
    sticky: AtomicU32,
}

impl TopicBatches {
    fn new(name: &str, partitions: u32, routing: RoutingMode) -> Self {
        TopicBatches {
            name: Arc::from(name),
            routing,
            partitions: (0..partitions.max(1))
                .map(|_| Mutex::new(PartitionBatches::default()))
                .collect(),
            routed: Mutex::new(RoutedLanes::default()),
            sticky: AtomicU32::new(0),
        }
    }

    /// Number of partitions.
    pub(crate) fn partition_count(&self) -> u32 {
        self.partitions.len() as u32
    }

    /// The topic's routing mode, as Metadata said.
    pub(crate) fn routing(&self) -> RoutingMode {
        self.routing
    }

    fn partition(&self, p: u32) -> Option<MutexGuard<'_, PartitionBatches>> {
        self.partitions.get(p as usize).map(lock)
    }

    /// Moves the sticky partition past `p` if it is still `p`.
    fn advance_sticky(&self, p: u32) {
        let next = (p + 1) % self.partition_count();
        let _ = self
            .sticky
            .compare_exchange(p, next, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// Settings the accumulator needs.
#[derive(Debug, Clone)]
pub(crate) struct AccumulatorConfig {
    pub batch_bytes: usize,
    pub buffer_bytes: usize,
    pub linger: Duration,
    pub compression: Compression,
    pub delivery_timeout: Duration,
}

/// What one scan of the accumulator found.
#[derive(Debug, Default)]
pub(crate) struct Drained {
    /// Batches to send, grouped by topic (each topic's batches together, in
    /// partition queue order).
    pub batches: Vec<ProducerBatch>,
    /// The earliest moment something else becomes sendable or expires.
    pub next_wakeup: Option<Instant>,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Accumulator {
    config: AccumulatorConfig,
    topics: RwLock<TopicMap>,
    memory: Semaphore,
    /// Every batch created and not yet completed, by id: what `flush` waits for.
    incomplete: Mutex<BTreeMap<u64, Arc<BatchCompletion>>>,
    next_batch_id: AtomicU64,
    /// Wakes the sender: a batch was opened, closed or put back, or a flush began.
    pub(crate) wake: Notify,
    /// Flushes in progress; while above zero, open batches are sent at once.
    flushing: AtomicUsize,
    closing: AtomicBool,
    /// Where the next drain starts, so no topic is always served first.
    drain_cursor: AtomicUsize,
}

impl Accumulator {
    pub(crate) fn new(config: AccumulatorConfig) -> Self {
        Accumulator {
            memory: Semaphore::new(config.buffer_bytes),
            config,
            topics: RwLock::new(TopicMap::default()),
            incomplete: Mutex::new(BTreeMap::new()),
            next_batch_id: AtomicU64::new(0),
            wake: Notify::new(),
            flushing: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            drain_cursor: AtomicUsize::new(0),
        }
    }

    /// The topic's batches, if its partition count is known.
    pub(crate) fn topic(&self, name: &str) -> Option<Arc<TopicBatches>> {
        self.topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// Registers a topic with its partition count and routing mode (keeps
    /// an existing entry).
    pub(crate) fn add_topic(
        &self,
        name: &str,
        partitions: u32,
        routing: RoutingMode,
    ) -> Arc<TopicBatches> {
        let mut topics = self.topics.write().unwrap_or_else(|e| e.into_inner());
        topics
            .entry(Arc::from(name))
            .or_insert_with(|| Arc::new(TopicBatches::new(name, partitions, routing)))
            .clone()
    }

    fn all_topics(&self) -> Vec<Arc<TopicBatches>> {
        self.topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Takes `bytes` of the memory budget, waiting while it is used up.
    ///
    /// # Errors
    /// [`Error::Closed`] once the producer closes.
    pub(crate) async fn reserve(&self, bytes: usize) -> Result<()> {
        // Records are bounded by the frame limit long before u32::MAX.
        let n = u32::try_from(bytes)
            .map_err(|_| Error::Config(format!("a record of {bytes} bytes cannot be buffered")))?;
        match self.memory.try_acquire_many(n) {
            Ok(permit) => permit.forget(),
            Err(tokio::sync::TryAcquireError::Closed) => return Err(Error::Closed),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                self.memory
                    .acquire_many(n)
                    .await
                    .map_err(|_| Error::Closed)?
                    .forget();
            }
        }
        Ok(())
    }

    /// Gives back memory taken by [`reserve`](Self::reserve) for a record
    /// that was not appended.
    pub(crate) fn unreserve(&self, bytes: usize) {
        self.memory.add_permits(bytes);
    }

    /// Memory currently available, in bytes.
    #[cfg(test)]
    pub(crate) fn available_memory(&self) -> usize {
        self.memory.available_permits()
    }

    /// Appends a record whose `reserved` bytes of memory are already taken.
    pub(crate) fn append(
        &self,
        topic: &Arc<TopicBatches>,
        placement: Placement<'_>,
        record: RecordRef<'_>,
        reserved: usize,
    ) -> DeliveryFuture {
        let mut wake = false;
        let (p, part) = match placement {
            Placement::Routed(key) => {
                let mut lanes = lock(&topic.routed);
                let lane = Lane::Routed(key.map(Arc::from));
                let (future, wake, _) =
                    self.append_to(topic, lane, lanes.lane(key), record, reserved);
                drop(lanes);
                if wake {
                    self.wake.notify_one();
                }
                return future;
            }
            Placement::Fixed(p) => (p, topic.partition(p)),
            Placement::Sticky => {
                let n = topic.partition_count();
                let p = topic.sticky.load(Ordering::Relaxed) % n;
                let mut part = topic.partition(p);
                if part
                    .as_mut()
                    .is_some_and(|part| self.close_if_no_room(part, reserved))
                {
                    // Fill the next partition rather than leave a lone record here.
                    drop(part);
                    topic.advance_sticky(p);
                    wake = true;
                    let p = topic.sticky.load(Ordering::Relaxed) % n;
                    (p, topic.partition(p))
                } else {
                    (p, part)
                }
            }
        };
        let Some(mut part) = part else {
            // Callers check the partition; this only guards the index.
            self.unreserve(reserved);
            let completion = Arc::new(BatchCompletion::default());
            completion.complete(Err(Error::from_partition_code(
                &topic.name,
                p,
                warren_protocol::ErrorCode::UNKNOWN_PARTITION,
            )));
            return DeliveryFuture::new(completion, 0);
        };
        let (future, woke, full) =
            self.append_to(topic, Lane::Partition(p), &mut part, record, reserved);
        wake |= woke;
        drop(part);
        if full && placement == Placement::Sticky {
            topic.advance_sticky(p);
        }
        if wake {
            self.wake.notify_one();
        }
        future
    }

    /// Appends a record to one lane's open batch (opening one if needed, and
    /// closing it first if the record does not fit). Returns the record's
    /// future, whether the sender should be woken, and whether the batch is
    /// now full (closed).
    fn append_to(
        &self,
        topic: &Arc<TopicBatches>,
        lane: Lane,
        part: &mut PartitionBatches,
        record: RecordRef<'_>,
        reserved: usize,
    ) -> (DeliveryFuture, bool, bool) {
        let mut wake = self.close_if_no_room(part, reserved);
        let batch = match &mut part.open {
            Some(batch) => batch,
            None => {
                wake = true;
                let hint = part.last_batch_bytes;
                part.open
                    .insert(self.new_batch(topic, lane, hint, reserved))
            }
        };
        let index = batch.record_count;
        if let Some(builder) = &mut batch.builder {
            builder.append(record.timestamp, record.key, record.value, record.headers);
        }
        batch.record_count += 1;
        batch.reserved_bytes += reserved;
        let future = DeliveryFuture::new(batch.completion.clone(), index);
        let full = batch.size_bytes() >= self.config.batch_bytes;
        if full {
            self.close_open(part);
            wake = true;
        }
        (future, wake, full)
    }

    /// Closes the open batch if a record of `bytes` would take it past
    /// `batch_bytes`; true if it did.
    fn close_if_no_room(&self, part: &mut PartitionBatches, bytes: usize) -> bool {
        let no_room = part.open.as_ref().is_some_and(|b| {
            b.record_count > 0 && b.size_bytes() + bytes > self.config.batch_bytes
        });
        if no_room {
            self.close_open(part);
        }
        no_room
    }

    fn close_open(&self, part: &mut PartitionBatches) {
        if let Some(batch) = part.open.take() {
            part.last_batch_bytes = batch.size_bytes();
            part.ready.push_back(batch);
        }
    }

    fn new_batch(
        &self,
        topic: &Arc<TopicBatches>,
        lane: Lane,
        hint: usize,
        first: usize,
    ) -> ProducerBatch {
        let id = self.next_batch_id.fetch_add(1, Ordering::Relaxed);
        let mut builder = RecordBatchBuilder::new(self.config.compression);
        // About as much as the last batch here took: a hot partition gets a
        // whole batch at once (no regrowth copies), a quiet one stays small.
        // (min, not clamp: batch_bytes may be below MIN_BATCH_RESERVE.)
        let reserve = hint
            .max(first)
            .max(MIN_BATCH_RESERVE)
            .min(self.config.batch_bytes.max(first));
        builder.reserve(reserve);
        let completion = Arc::new(BatchCompletion::default());
        lock(&self.incomplete).insert(id, completion.clone());
        let created = Instant::now();
        ProducerBatch {
            id,
            topic: topic.clone(),
            lane,
            builder: Some(builder),
            built: None,
            record_count: 0,
            reserved_bytes: 0,
            completion,
            created,
            deadline: created + self.config.delivery_timeout,
            attempts: 0,
            retry_at: None,
            last_error: None,
        }
    }

    /// Completes a batch: returns its memory, forgets it for `flush`, and
    /// resolves its records' futures.
    pub(crate) fn complete(&self, batch: ProducerBatch, result: Result<BatchDelivered>) {
        self.memory.add_permits(batch.reserved_bytes);
        lock(&self.incomplete).remove(&batch.id);
        batch.completion.complete(result);
        if self.is_closing() {
            // The sender exits once the last batch completes.
            self.wake.notify_one();
        }
    }

    /// Puts a batch that failed with a retriable error back in its lane's
    /// queue, to be sent after `retry_at`.
    pub(crate) fn requeue(&self, batch: ProducerBatch) {
        fn put_back(part: &mut PartitionBatches, batch: ProducerBatch) {
            let at = part
                .ready
                .iter()
                .position(|b| b.id > batch.id)
                .unwrap_or(part.ready.len());
            part.ready.insert(at, batch);
        }
        let topic = batch.topic.clone();
        match &batch.lane {
            Lane::Routed(key) => {
                let key = key.clone();
                put_back(lock(&topic.routed).lane(key.as_deref()), batch);
            }
            Lane::Partition(p) => match topic.partition(*p) {
                Some(mut part) => put_back(&mut part, batch),
                None => {
                    // Batches are only made for existing partitions; never leak one.
                    let error = Error::from_partition_code(
                        &topic.name,
                        *p,
                        warren_protocol::ErrorCode::UNKNOWN_PARTITION,
                    );
                    self.complete(batch, Err(error));
                }
            },
        }
        self.wake.notify_one();
    }

    /// Collects batches to send, up to `max_bytes` of them (at least one
    /// batch if any is sendable): every ready batch whose retry time has come,
    /// and open batches whose linger passed (all open batches while a flush
    /// or close is in progress). Batches past their delivery deadline are
    /// failed on the way, with `Timeout` (or their last error's context in
    /// the log).
    pub(crate) fn drain(&self, now: Instant, max_bytes: usize) -> Drained {
        let mut out = Drained::default();
        let mut bytes = 0usize;
        let urgent =
            self.flushing.load(Ordering::Acquire) > 0 || self.closing.load(Ordering::Acquire);
        let topics = self.all_topics();
        if topics.is_empty() {
            return out;
        }
        let start = self.drain_cursor.fetch_add(1, Ordering::Relaxed);
        let mut expired = Vec::new();
        for i in 0..topics.len() {
            let Some(topic) = topics.get((start + i) % topics.len()) else {
                continue;
            };
            let n = topic.partition_count();
            let pstart = (start as u32) % n;
            for j in 0..n {
                let p = (pstart + j) % n;
                let Some(mut part) = topic.partition(p) else {
                    continue;
                };
                let closed_open = self.drain_lane(
                    &mut part,
                    now,
                    urgent,
                    max_bytes,
                    &mut bytes,
                    &mut out,
                    &mut expired,
                );
                drop(part);
                if closed_open {
                    topic.advance_sticky(p);
                }
            }
            if topic.routing.uses_bindings() {
                let mut lanes = lock(&topic.routed);
                let RoutedLanes { keyed, keyless } = &mut *lanes;
                for lane in std::iter::once(keyless).chain(keyed.values_mut()) {
                    self.drain_lane(
                        lane,
                        now,
                        urgent,
                        max_bytes,
                        &mut bytes,
                        &mut out,
                        &mut expired,
                    );
                }
                lanes.prune();
            }
        }
        for batch in expired {
            let error = Error::Timeout {
                what: "delivery",
                after: self.config.delivery_timeout,
            };
            tracing::warn!(
                topic = %batch.topic.name,
                lane = ?batch.lane,
                records = batch.record_count,
                attempts = batch.attempts,
                last_error = ?batch.last_error,
                "batch expired before delivery"
            );
            self.complete(batch, Err(error));
        }
        // Keep each topic's batches together for the request's layout.
        out.batches
            .sort_by(|a, b| a.topic.name.cmp(&b.topic.name).then(a.id.cmp(&b.id)));
        out
    }

    /// [`drain`](Self::drain)'s work on one lane: closes its open batch if it
    /// is due, moves expired batches to `expired`, and takes ready batches
    /// into `out` while the request has room. Returns true if it closed the
    /// open batch.
    #[expect(clippy::too_many_arguments, reason = "drain's loop state, passed down")]
    fn drain_lane(
        &self,
        part: &mut PartitionBatches,
        now: Instant,
        urgent: bool,
        max_bytes: usize,
        bytes: &mut usize,
        out: &mut Drained,
        expired: &mut Vec<ProducerBatch>,
    ) -> bool {
        let note = |wakeup: &mut Option<Instant>, at: Instant| {
            *wakeup = Some(wakeup.map_or(at, |w| w.min(at)));
        };
        let mut closed_open = false;
        if let Some(open) = &part.open {
            let linger_end = open.created + self.config.linger;
            if urgent || linger_end <= now || open.deadline <= now {
                self.close_open(part);
                closed_open = true;
            } else {
                note(&mut out.next_wakeup, linger_end);
            }
        }
        // Fail expired batches anywhere in the queue.
        if part.ready.iter().any(|b| b.deadline <= now) {
            let (keep, gone): (VecDeque<_>, VecDeque<_>) =
                part.ready.drain(..).partition(|b| b.deadline > now);
            part.ready = keep;
            expired.extend(gone);
        }
        while let Some(front) = part.ready.front() {
            if let Some(at) = front.retry_at.filter(|at| *at > now) {
                note(&mut out.next_wakeup, at.min(front.deadline));
                break;
            }
            let size = front.size_bytes();
            if !out.batches.is_empty() && *bytes + size > max_bytes {
                // Full request: the rest waits for the next one, now.
                note(&mut out.next_wakeup, now);
                break;
            }
            let Some(batch) = part.ready.pop_front() else {
                break;
            };
            *bytes += size;
            out.batches.push(batch);
        }
        closed_open
    }

    /// Completions of every batch not yet complete (for `flush`).
    pub(crate) fn incomplete(&self) -> Vec<Arc<BatchCompletion>> {
        lock(&self.incomplete).values().cloned().collect()
    }

    /// True when no batch is open, queued or in flight.
    pub(crate) fn is_idle(&self) -> bool {
        lock(&self.incomplete).is_empty()
    }

    /// Starts a flush: open batches are sent without waiting for `linger`
    /// until [`end_flush`](Self::end_flush).
    pub(crate) fn begin_flush(&self) {
        self.flushing.fetch_add(1, Ordering::AcqRel);
        self.wake.notify_one();
    }

    pub(crate) fn end_flush(&self) {
        self.flushing.fetch_sub(1, Ordering::AcqRel);
    }

    /// Starts closing: no more memory is handed out (waiting sends fail with
    /// `Closed`) and everything buffered is sent at once.
    pub(crate) fn close(&self) {
        self.closing.store(true, Ordering::Release);
        self.memory.close();
        self.wake.notify_one();
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
    use super::*;

    fn config(batch_bytes: usize) -> AccumulatorConfig {
        AccumulatorConfig {
            batch_bytes,
            buffer_bytes: 1 << 20,
            linger: Duration::from_millis(5),
            compression: Compression::None,
            delivery_timeout: Duration::from_secs(30),
        }
    }

    fn append(
        acc: &Accumulator,
        topic: &Arc<TopicBatches>,
        placement: Placement,
        value: &[u8],
    ) -> DeliveryFuture {
        let size = record_size_bound(None, Some(value), &[]);
        acc.memory.try_acquire_many(size as u32).unwrap().forget();
        let record = RecordRef {
            timestamp: 1_000,
            key: None,
            value: Some(value),
            headers: &[],
        };
        acc.append(topic, placement, record, size)
    }

    #[test]
    fn the_size_bound_is_never_below_the_encoded_size() {
        let headers = [Header::new("k", "v"), Header::new("key2", vec![0u8; 300])];
        let key = vec![1u8; 200];
        let value = vec![2u8; 70_000];
        let mut b = RecordBatchBuilder::new(Compression::None);
        b.append(i64::MAX, Some(&key), Some(&value), &headers);
        let encoded = b.estimated_bytes() - BATCH_HEADER_LEN;
        assert!(record_size_bound(Some(&key), Some(&value), &headers) >= encoded);
        let mut b = RecordBatchBuilder::new(Compression::None);
        b.append(0, None, None, &[]);
        assert!(record_size_bound(None, None, &[]) >= b.estimated_bytes() - BATCH_HEADER_LEN);
    }

    #[test]
    fn a_batch_closes_before_a_record_would_overflow_it() {
        let acc = Accumulator::new(config(4096));
        let topic = acc.add_topic("t", 1, RoutingMode::Hash);
        let value = vec![0u8; 1000];
        for _ in 0..10 {
            drop(append(&acc, &topic, Placement::Fixed(0), &value));
        }
        let drained = acc.drain(Instant::now() + Duration::from_secs(1), usize::MAX);
        let counts: Vec<_> = drained.batches.iter().map(|b| b.record_count).collect();
        assert_eq!(counts.iter().sum::<u32>(), 10);
        for b in &drained.batches {
            assert!(b.size_bytes() <= 4096, "{}", b.size_bytes());
        }
        // Ids (send order) ascend.
        assert!(drained.batches.windows(2).all(|w| w[0].id < w[1].id));
    }

    #[test]
    fn a_record_larger_than_a_batch_gets_a_batch_of_its_own() {
        let acc = Accumulator::new(config(4096));
        let topic = acc.add_topic("t", 1, RoutingMode::Hash);
        drop(append(&acc, &topic, Placement::Fixed(0), b"small"));
        drop(append(
            &acc,
            &topic,
            Placement::Fixed(0),
            &vec![0u8; 10_000],
        ));
        drop(append(&acc, &topic, Placement::Fixed(0), b"small"));
        let drained = acc.drain(Instant::now() + Duration::from_secs(1), usize::MAX);
        let counts: Vec<_> = drained.batches.iter().map(|b| b.record_count).collect();
        assert_eq!(counts, [1, 1, 1]);
    }

    #[test]
    fn open_batches_wait_for_linger_unless_flushing() {
        let acc = Accumulator::new(config(1 << 20));
        let topic = acc.add_topic("t", 2, RoutingMode::Hash);
        drop(append(&acc, &topic, Placement::Fixed(1), b"v"));
        let now = Instant::now();
        let drained = acc.drain(now, usize::MAX);
        assert!(drained.batches.is_empty());
        assert!(drained.next_wakeup.unwrap() <= now + Duration::from_millis(5));
        acc.begin_flush();
        let drained = acc.drain(now, usize::MAX);
        assert_eq!(drained.batches.len(), 1);
        assert_eq!(drained.batches[0].lane, Lane::Partition(1));
        acc.end_flush();
    }

    #[test]
    fn keyless_records_stick_to_a_partition_until_its_batch_closes() {
        let acc = Accumulator::new(config(4096));
        let topic = acc.add_topic("t", 3, RoutingMode::Hash);
        let value = vec![0u8; 1000];
        for _ in 0..12 {
            drop(append(&acc, &topic, Placement::Sticky, &value));
        }
        let drained = acc.drain(Instant::now() + Duration::from_secs(1), usize::MAX);
        let mut by_partition = [0u32; 3];
        for b in &drained.batches {
            by_partition[b.lane.partition().unwrap() as usize] += b.record_count;
            // Only whole batches: never a lone record left behind.
            assert!(b.record_count >= 3, "{:?}", b.record_count);
        }
        assert_eq!(by_partition.iter().sum::<u32>(), 12);
        assert!(by_partition.iter().filter(|n| **n > 0).count() >= 2);
    }

    #[test]
    fn routed_records_are_batched_per_key_and_empty_lanes_are_dropped() {
        let acc = Accumulator::new(config(1 << 20));
        let topic = acc.add_topic("t", 2, RoutingMode::Topic);
        for key in [Some("a"), Some("b"), Some("a"), None] {
            drop(append(&acc, &topic, Placement::Routed(key), b"v"));
        }
        assert_eq!(lock(&topic.routed).keyed.len(), 2);
        let drained = acc.drain(Instant::now() + Duration::from_secs(1), usize::MAX);
        let mut lanes: Vec<(Lane, u32)> = drained
            .batches
            .iter()
            .map(|b| (b.lane.clone(), b.record_count))
            .collect();
        lanes.sort_by_key(|(lane, _)| lane.routing_key().map(str::to_owned));
        assert_eq!(
            lanes,
            [
                (Lane::Routed(None), 1),
                (Lane::Routed(Some(Arc::from("a"))), 2),
                (Lane::Routed(Some(Arc::from("b"))), 1),
            ]
        );
        // Every lane was emptied: none is kept for keys that may never return.
        assert!(lock(&topic.routed).keyed.is_empty());
        // A retried batch goes back to its key's lane.
        let batch = drained.batches.into_iter().next().unwrap();
        acc.requeue(batch);
        let again = acc.drain(Instant::now() + Duration::from_secs(1), usize::MAX);
        assert_eq!(again.batches.len(), 1);
    }

    #[test]
    fn drain_stops_at_max_bytes_but_takes_at_least_one_batch() {
        let acc = Accumulator::new(config(4096));
        let topic = acc.add_topic("t", 4, RoutingMode::Hash);
        for p in 0..4 {
            drop(append(&acc, &topic, Placement::Fixed(p), &vec![0u8; 3000]));
        }
        let later = Instant::now() + Duration::from_secs(1);
        let first = acc.drain(later, 1);
        assert_eq!(first.batches.len(), 1);
        assert_eq!(first.next_wakeup, Some(later));
        let rest = acc.drain(later, 7000);
        assert_eq!(rest.batches.len(), 2);
    }

    #[test]
    fn completion_returns_memory_and_requeue_keeps_order() {
        let acc = Accumulator::new(config(4096));
        let topic = acc.add_topic("t", 1, RoutingMode::Hash);
        let before = acc.available_memory();
        let value = vec![0u8; 3000];
        let f1 = append(&acc, &topic, Placement::Fixed(0), &value);
        let _f2 = append(&acc, &topic, Placement::Fixed(0), &value);
        assert!(acc.available_memory() < before);
        let later = Instant::now() + Duration::from_secs(1);
        let mut drained = acc.drain(later, usize::MAX).batches;
        assert_eq!(drained.len(), 2);
        let second = drained.pop().unwrap();
        let first = drained.pop().unwrap();
        // Put them back in the wrong order: the queue sorts by id.
        acc.requeue(second);
        acc.requeue(first);
        let again = acc.drain(later, usize::MAX).batches;
        assert!(again[0].id < again[1].id);
        for b in again {
            acc.complete(b, Ok(BatchDelivered::single(0, Some(7))));
        }
        assert_eq!(acc.available_memory(), before);
        assert!(acc.is_idle());
        assert_eq!(f1.try_result().unwrap().unwrap().offset, Some(7));
    }

    #[test]
    fn expired_batches_fail_with_a_timeout() {
        let acc = Accumulator::new(AccumulatorConfig {
            delivery_timeout: Duration::from_millis(10),
            ..config(4096)
        });
        let topic = acc.add_topic("t", 1, RoutingMode::Hash);
        let f = append(&acc, &topic, Placement::Fixed(0), b"v");
        acc.begin_flush();
        let mut batch = acc.drain(Instant::now(), usize::MAX).batches.pop().unwrap();
        acc.end_flush();
        let later = Instant::now() + Duration::from_secs(1);
        batch.retry_at = Some(later);
        acc.requeue(batch);
        let drained = acc.drain(later + Duration::from_secs(1), usize::MAX);
        assert!(drained.batches.is_empty());
        assert!(matches!(
            f.try_result(),
            Some(Err(Error::Timeout {
                what: "delivery",
                ..
            }))
        ));
        assert!(acc.is_idle());
    }
}
