//! Share groups (queue semantics): per-record locks, acknowledgements,
//! redelivery and dead letters, on top of the partition logs (Kafka's KIP-932).
//!
//! One [`SharePartition`] per (group, topic, partition) holds a [`ShareState`]
//! (see [`state`]) behind its own mutex, so share groups never wait on each
//! other and no lock is held across an fsync or an await: a lock is held only
//! while the state changes, while the log is asked for the file ranges of the
//! records being acquired (index lookups and batch-header reads from the page
//! cache), and while the new state is appended to the metadata store (a write
//! to the page cache, so two writes of one share-partition reach the store in
//! the order of their state changes). The fsync that makes it durable comes
//! after, outside the lock, shared with every concurrent writer (group commit).
//!
//! Persistence: the state of a share-partition is the value of key
//! `s group \0 topic \0 partition (u32 BE)` in [`Shared::kv`] (see
//! [`crate::metadata::share_state`]), written after every acknowledgement
//! (before its response), lock expiry, dead-lettering, and at shutdown. Acquisitions alone are not
//! written (as in Kafka): at 100 000 records/s that would be a write per fetch
//! for no gain but the delivery count, so a crash forgets the deliveries since
//! the last write and a record may be delivered more often than
//! `max.delivery.attempts` (never less). Locks do not survive a restart: an
//! acquired record is available again.
//!
//! A new share-partition starts at the log start offset: the whole retained
//! log is the queue (Kafka's `share.auto.offset.reset` defaults to latest; a
//! queue that forgets what was published before its first consumer surprises
//! operators more).
//!
//! Lock expiry: one task ([`run_timers`]) sleeps until the earliest deadline
//! any share-partition asked for (a heap of `(deadline, key)`, at most one
//! entry per share-partition and deadline it scheduled), expires the locks that
//! are due, dead-letters what ran out of attempts, and wakes long-polling
//! fetches. It never polls: an acquisition with an earlier deadline than the
//! heap's first wakes it to sleep less.
//!
//! Bounds: at most `group_share_max_groups` share groups (a ShareFetch that
//! would add one more gets `LIMIT_REACHED`). A share group none of whose
//! share-partitions was fetched from or acknowledged for
//! `offsets_retention_minutes`, with no lock held and no dead letter
//! waiting, is removed from memory and the store
//! ([`ShareGroups::expire_idle`]); so is a deleted topic's state
//! ([`ShareGroups::remove_topic`]). A removed share-partition is marked so
//! under its lock: a request or timer still holding it never writes it back.
//!
//! # Layout
//! - [`state`]: [`ShareState`], the state machine and its encoding.
//! - [`dead_letter`]: writing records to the dead-letter topic.
//!
//! Thread-safe: [`ShareGroups`] is `Send + Sync`; its map is an `RwLock` taken
//! briefly to find or add a share-partition.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use warren_protocol::api::share::{AcquiredRecords, MAX_MEMBER_ID_LEN};
use warren_storage::{FileSlice, KvOp, KvStore, Offset};

use crate::error::{ErrorKind, ServiceError};
use crate::metadata::share_state;
use crate::partition::Partition;
use crate::topics::Topics;

pub(crate) mod dead_letter;
pub mod state;

pub use state::{MAX_IN_FLIGHT_RECORDS, ShareState};

/// Longest share-group name (Kafka's group-id limit is the topic one, 249).
pub const MAX_GROUP_ID_LEN: usize = 249;

/// How long the broker waits before retrying a dead-letter write that failed
/// (the dead-letter topic missing, a full disk). Not configurable.
pub const DEAD_LETTER_RETRY: Duration = Duration::from_secs(5);

/// Checks a share-group name: 1 to 249 bytes of `[A-Za-z0-9._-]`.
///
/// # Errors
/// `InvalidGroupId` with a message.
pub fn validate_group_id(group: &str) -> Result<(), ServiceError> {
    let ok = !group.is_empty()
        && group.len() <= MAX_GROUP_ID_LEN
        && group
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ServiceError::new(
            ErrorKind::InvalidGroupId,
            format!(
                "share group {group:?} must be 1 to {MAX_GROUP_ID_LEN} bytes of [A-Za-z0-9._-]"
            ),
        ))
    }
}

/// Checks a member id: 1 to 255 bytes.
///
/// # Errors
/// `InvalidMemberId` with a message.
pub fn validate_member_id(member: &str) -> Result<(), ServiceError> {
    if member.is_empty() || member.len() > MAX_MEMBER_ID_LEN {
        return Err(ServiceError::new(
            ErrorKind::InvalidMemberId,
            format!("member id must be 1 to {MAX_MEMBER_ID_LEN} bytes"),
        ));
    }
    Ok(())
}

/// A share-partition's identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShareKey {
    /// The share group.
    pub group: String,
    /// The topic.
    pub topic: String,
    /// The partition number.
    pub partition: u32,
}

impl ShareKey {
    /// The metadata-store key: `s group \0 topic \0 partition (u32 BE)`
    /// ([`share_state::key`]).
    pub fn kv_key(&self) -> Vec<u8> {
        share_state::key(&self.group, &self.topic, self.partition)
    }

    /// Parses a metadata-store key written by [`kv_key`](Self::kv_key).
    pub fn from_kv_key(key: &[u8]) -> Option<ShareKey> {
        let (group, topic, partition) = share_state::parse_key(key)?;
        Some(ShareKey {
            group: group.to_string(),
            topic: topic.to_string(),
            partition,
        })
    }
}

/// What the mutex of a [`SharePartition`] guards.
#[derive(Debug)]
pub(crate) struct Guarded {
    /// The window and its records' states.
    pub(crate) state: ShareState,
    /// The deadline this share-partition has in the timer heap, if any.
    timer: Option<Instant>,
    /// When to retry dead-letter writes that failed.
    retry_dead_letters_at: Option<Instant>,
    /// Removed from [`ShareGroups`] (its topic was deleted, or its group
    /// expired): never written to the store again, so a request or timer
    /// still holding it cannot bring the deleted state back.
    removed: bool,
    /// The user of the last ShareFetch that acquired records or ShareAck on
    /// this share-partition (`None`: none since the broker started, or no
    /// user exists). Dead letters the timer
    /// task writes (lock expiry at `max.delivery.attempts`, retries) need
    /// write on the dead-letter topic under this user's grants of the moment;
    /// see [`dead_letter`]. In memory only.
    pub(crate) dead_letter_user: Option<String>,
}

/// One (group, topic, partition); see the module docs.
#[derive(Debug)]
pub struct SharePartition {
    /// Which share-partition this is.
    pub key: ShareKey,
    kv_key: Vec<u8>,
    guarded: Mutex<Guarded>,
    /// Woken (`notify_waiters`) when records become available again or the
    /// window moves, so long-polling fetches try again.
    pub changed: Notify,
    /// Records written to the dead-letter topic since the broker started
    /// (`warren_dead_lettered_records_total`).
    pub dead_lettered: AtomicU64,
    /// Last ShareFetch or ShareAck on it (or when the broker loaded it), in
    /// ms since the Unix epoch: [`ShareGroups::expire_idle`] reads it.
    last_active_ms: AtomicI64,
}

/// One share-partition's figures for the metrics ([`ShareGroups::stats`]).
#[derive(Debug, Clone)]
pub struct ShareStats {
    pub key: ShareKey,
    /// Records acquired and not yet acknowledged, released or expired.
    pub in_flight: u64,
    /// Records written to the dead-letter topic since the broker started.
    pub dead_lettered: u64,
}

/// What one acquisition got from one partition.
#[derive(Debug, Default)]
pub struct Acquisition {
    /// The acquired offsets, as ranges of equal delivery count, ascending.
    pub acquired: Vec<AcquiredRecords>,
    /// Whole batches holding the acquired records, ascending, not overlapping.
    pub slices: Vec<FileSlice>,
    /// Records acquired.
    pub records: u64,
    /// Bytes of `slices`.
    pub bytes: u64,
}

impl SharePartition {
    fn new(key: ShareKey, state: ShareState) -> SharePartition {
        SharePartition {
            kv_key: key.kv_key(),
            key,
            guarded: Mutex::new(Guarded {
                state,
                timer: None,
                retry_dead_letters_at: None,
                removed: false,
                dead_letter_user: None,
            }),
            changed: Notify::new(),
            dead_lettered: AtomicU64::new(0),
            last_active_ms: AtomicI64::new(now_ms()),
        }
    }

    /// Notes a ShareFetch or ShareAck of its group now.
    pub fn touch(&self) {
        self.last_active_ms.fetch_max(now_ms(), Ordering::Relaxed);
    }

    /// Its start offset (SPSO: every offset below is done) and the members
    /// holding record locks now, sorted.
    pub fn progress(&self) -> (u64, Vec<Arc<str>>) {
        let g = self.lock();
        (g.state.start_offset(), g.state.lock_holders())
    }

    /// The state, locked. The caller is expected not to await or fsync while
    /// holding it.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Guarded> {
        self.guarded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends the state to the metadata store if it changed since the last
    /// write. The caller holds the lock (so writes keep the order of changes)
    /// and makes the returned offset durable with [`sync_kv`] after letting
    /// go of it.
    ///
    /// # Errors
    /// The store's append error; the state stays dirty.
    pub(crate) fn persist(
        &self,
        kv: &KvStore,
        g: &mut Guarded,
    ) -> Result<Option<Offset>, warren_storage::Error> {
        if !g.state.is_dirty() || g.removed {
            return Ok(None);
        }
        let value = g.state.encode();
        let offset = kv.apply(&[KvOp::Put(&self.kv_key, &value)])?;
        g.state.mark_clean();
        Ok(Some(offset))
    }

    /// Remembers `user` as the one this share-partition's timer writes dead
    /// letters as: the user who last acquired or acknowledged records here
    /// (`None` while no user exists).
    pub(crate) fn note_dead_letter_user(&self, user: Option<&str>) {
        let mut g = self.lock();
        if g.dead_letter_user.as_deref() != user {
            g.dead_letter_user = user.map(str::to_owned);
        }
    }

    /// Acquires up to `max` records of `partition` for `member` (locked until
    /// `deadline`) and reads the file ranges of the batches holding them, at
    /// most `max_bytes` (the first batch always whole). The caller schedules
    /// the lock expiry ([`ShareGroups::schedule`]).
    ///
    /// # Errors
    /// The log's read error, when nothing could be acquired before it.
    pub fn acquire(
        &self,
        partition: &Partition,
        member: &Arc<str>,
        max: u64,
        max_bytes: u32,
        deadline: Instant,
    ) -> Result<Acquisition, warren_storage::Error> {
        let mut out = Acquisition::default();
        let log = &partition.log;
        let mut g = self.lock();
        if g.removed {
            return Ok(out);
        }
        let log_start = log.log_start_offset().0;
        let log_end = log.log_end_offset().0;
        if g.state.start_offset() > log_end {
            tracing::warn!(
                group = %self.key.group, topic = %self.key.topic, partition = self.key.partition,
                start_offset = g.state.start_offset(), log_end,
                "the log ends before the share group's start (lost unsynced records?); starting over at the log end"
            );
            g.state.reset_to(log_end);
        }
        let skipped = g.state.skip_to(log_start);
        if skipped > 0 {
            tracing::warn!(
                group = %self.key.group, topic = %self.key.topic, partition = self.key.partition,
                skipped, log_start,
                "retention deleted records the share group had not finished"
            );
        }
        let high_watermark = log.high_watermark();
        let mut from = g.state.start_offset();
        let mut budget = max_bytes.max(1);
        while out.records < max {
            let Some(first) = g.state.next_acquirable(from, high_watermark.0) else {
                break;
            };
            let read = match log.read_to(Offset(first), budget, high_watermark) {
                Ok(read) => read,
                Err(e) if out.records == 0 => return Err(e),
                Err(e) => {
                    tracing::debug!(error = %e, "share fetch read stopped");
                    break;
                }
            };
            let bytes: u64 = read.slices.iter().map(|s| u64::from(s.len)).sum();
            let Some(covered) = read.slices.last().map(|s| s.next_offset.0) else {
                break;
            };
            if covered <= first || (out.records > 0 && bytes > u64::from(budget)) {
                break;
            }
            let got = g
                .state
                .acquire(first, covered, max - out.records, member, deadline);
            out.records += got
                .iter()
                .map(|r| r.last_offset - r.first_offset + 1)
                .sum::<u64>();
            out.acquired.extend(got);
            out.slices.extend(read.slices);
            out.bytes += bytes;
            budget = budget.saturating_sub(u32::try_from(bytes).unwrap_or(u32::MAX));
            from = covered;
            if budget == 0 {
                break;
            }
        }
        Ok(out)
    }
}

/// Makes every metadata-store write below `offset` durable, on a blocking
/// thread (group commit with concurrent callers).
///
/// # Errors
/// The fsync's error, or `Closed` if the blocking pool is gone.
pub async fn sync_kv(kv: &KvStore, offset: Offset) -> Result<(), warren_storage::Error> {
    let kv = kv.clone();
    tokio::task::spawn_blocking(move || kv.sync_to(offset))
        .await
        .unwrap_or_else(|_| Err(warren_storage::Error::Closed("kv".into())))
}

/// Every share-partition of the broker; see the module docs.
#[derive(Debug, Default)]
pub struct ShareGroups {
    partitions: RwLock<HashMap<ShareKey, Arc<SharePartition>>>,
    /// Lock deadlines and dead-letter retries, earliest first.
    timers: Mutex<BinaryHeap<Reverse<(Instant, ShareKey)>>>,
    /// Wakes [`run_timers`] when a deadline earlier than the heap's first
    /// arrives (`notify_one` keeps the wake-up if it is not waiting yet).
    timer_changed: Notify,
    /// Where the next ShareFetch starts among a topic's partitions, so one
    /// busy partition does not starve the others.
    next_partition: AtomicU32,
    /// Share-partitions per share group (the groups the broker keeps). Taken
    /// after the map's lock when both are held.
    group_sizes: Mutex<HashMap<String, usize>>,
    /// `group_share_max_groups` (0: no cap, for a map not built by [`load`](Self::load)).
    max_groups: usize,
    /// `offsets_retention_minutes`, in ms.
    retention_ms: i64,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl ShareGroups {
    /// No share-partitions, with the config's share-group cap
    /// (`group_share_max_groups`) and retention (`offsets_retention_minutes`).
    pub fn new(config: &crate::BrokerConfig) -> ShareGroups {
        ShareGroups {
            max_groups: usize::try_from(config.group_share_max_groups).unwrap_or(usize::MAX),
            retention_ms: i64::try_from(config.offsets_retention_minutes.saturating_mul(60_000))
                .unwrap_or(i64::MAX),
            ..ShareGroups::default()
        }
    }

    /// Loads every share-partition stored in `kv`. Blocking (reads the map;
    /// may write): call it on a blocking thread at start. A value that does
    /// not decode is logged and its share-partition starts over at the log
    /// start (records may be delivered again, none is lost); one of a topic or
    /// partition that no longer exists is deleted.
    ///
    /// `config` gives the share-group cap and retention.
    pub fn load(kv: &KvStore, topics: &Topics, config: &crate::BrokerConfig) -> ShareGroups {
        let groups = ShareGroups::new(config);
        let mut stale = Vec::new();
        let mut loaded = 0usize;
        for (key, value) in kv.scan_prefix(share_state::ALL) {
            let Some(share_key) = ShareKey::from_kv_key(&key) else {
                tracing::error!(key = ?key, "unreadable share-group key in the metadata store; ignored");
                continue;
            };
            let Some(topic) = topics.get(&share_key.topic) else {
                stale.push(key);
                continue;
            };
            if share_key.partition >= topic.config.partitions {
                stale.push(key);
                continue;
            }
            let mut state = match ShareState::decode(&value) {
                Ok(state) => state,
                Err(e) => {
                    tracing::error!(
                        group = %share_key.group, topic = %share_key.topic,
                        partition = share_key.partition, error = %e,
                        "corrupt share-group state; the share-partition starts over at the log start"
                    );
                    continue;
                }
            };
            let exhausted = state.archive_exhausted(topic.config.share.max_delivery_attempts);
            let sp = Arc::new(SharePartition::new(share_key.clone(), state));
            if exhausted > 0 || sp.lock().state.has_unclaimed_dead_letters() {
                groups.schedule(&sp, Instant::now());
            }
            *groups.sizes().entry(share_key.group.clone()).or_insert(0) += 1;
            groups.map_write().insert(share_key, sp);
            loaded += 1;
        }
        if !stale.is_empty() {
            let deleted = crate::metadata::delete_keys(kv, &stale)
                .and_then(|end| end.map_or(Ok(()), |end| kv.sync_to(end)));
            if let Err(e) = deleted {
                tracing::warn!(error = %e, "could not delete share-group state of deleted topics");
            }
        }
        tracing::info!(
            share_partitions = loaded,
            removed = stale.len(),
            "share groups loaded"
        );
        groups
    }

    fn sizes(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        self.group_sizes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn map_write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<ShareKey, Arc<SharePartition>>> {
        self.partitions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn map_read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<ShareKey, Arc<SharePartition>>> {
        self.partitions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every share-partition's in-flight and dead-lettered counts, for a
    /// metrics scrape: takes each share-partition's lock briefly, one at a
    /// time (not across the map's lock).
    pub fn stats(&self) -> Vec<ShareStats> {
        let all: Vec<Arc<SharePartition>> = self.map_read().values().cloned().collect();
        all.iter()
            .map(|sp| ShareStats {
                key: sp.key.clone(),
                in_flight: sp.lock().state.in_flight(),
                dead_lettered: sp.dead_lettered.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Every share-partition, in no particular order (the admin API's listing).
    pub fn list(&self) -> Vec<Arc<SharePartition>> {
        self.map_read().values().cloned().collect()
    }

    /// The share-partition, if the group has ever fetched from it.
    pub fn get(&self, key: &ShareKey) -> Option<Arc<SharePartition>> {
        self.map_read().get(key).cloned()
    }

    /// The share-partition, created (starting at `log_start`) on first use.
    ///
    /// # Errors
    /// `LimitReached` when this would add a share group beyond
    /// `group_share_max_groups`.
    pub fn get_or_create(
        &self,
        key: ShareKey,
        log_start: u64,
    ) -> Result<Arc<SharePartition>, ServiceError> {
        if let Some(sp) = self.get(&key) {
            return Ok(sp);
        }
        let mut map = self.map_write();
        if let Some(sp) = map.get(&key) {
            return Ok(Arc::clone(sp));
        }
        let mut sizes = self.sizes();
        if self.max_groups > 0 && !sizes.contains_key(&key.group) && sizes.len() >= self.max_groups
        {
            return Err(ServiceError::new(
                ErrorKind::LimitReached,
                format!(
                    "the broker keeps {} share groups, its limit (group_share_max_groups = {}); \
                     share group {:?} cannot be added",
                    sizes.len(),
                    self.max_groups,
                    key.group
                ),
            ));
        }
        *sizes.entry(key.group.clone()).or_insert(0) += 1;
        tracing::info!(group = %key.group, topic = %key.topic, partition = key.partition, start_offset = log_start, "share-partition created");
        let sp = Arc::new(SharePartition::new(key.clone(), ShareState::new(log_start)));
        map.insert(key, Arc::clone(&sp));
        Ok(sp)
    }

    /// Takes `removed` out of the map's bookkeeping: marks each removed (no
    /// more store writes), counts it off its group, wakes its long polls.
    fn forget(&self, removed: &[Arc<SharePartition>]) {
        for sp in removed {
            sp.lock().removed = true;
            sp.changed.notify_waiters();
        }
        let mut sizes = self.sizes();
        for sp in removed {
            if let Some(n) = sizes.get_mut(&sp.key.group) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    sizes.remove(&sp.key.group);
                }
            }
        }
    }

    /// Removes every share group none of whose share-partitions was fetched
    /// from or acknowledged for `offsets_retention_minutes` before `now_ms`,
    /// that holds no record lock and has no record waiting for the
    /// dead-letter topic (a share group has no member list: a member is a
    /// consumer holding locks). Its state goes from memory and, durably,
    /// from the store; a later ShareFetch starts it afresh at the log start.
    /// Returns the groups removed.
    ///
    /// # Errors
    /// The store's (the groups are already gone from memory; their stored
    /// state is deleted at the next start if the topic is gone, else it is
    /// loaded again and expires at a later check).
    pub fn expire_idle(
        &self,
        kv: &KvStore,
        now_ms: i64,
    ) -> Result<Vec<String>, warren_storage::Error> {
        let cutoff = now_ms.saturating_sub(self.retention_ms);
        let removed: Vec<Arc<SharePartition>> = {
            let mut map = self.map_write();
            let mut busy: HashSet<String> = HashSet::new();
            let mut seen: HashSet<String> = HashSet::new();
            for sp in map.values() {
                seen.insert(sp.key.group.clone());
                let idle = sp.last_active_ms.load(Ordering::Relaxed) < cutoff && {
                    let g = sp.lock();
                    g.state.in_flight() == 0 && !g.state.has_unclaimed_dead_letters()
                };
                if !idle {
                    busy.insert(sp.key.group.clone());
                }
            }
            let keys: Vec<ShareKey> = map
                .keys()
                .filter(|k| !busy.contains(&k.group))
                .cloned()
                .collect();
            let removed: Vec<Arc<SharePartition>> =
                keys.iter().filter_map(|k| map.remove(k)).collect();
            // Marked under the map's lock: a fetch finds it gone or finds it
            // removed, never acquires on a state that is being deleted.
            for sp in &removed {
                sp.lock().removed = true;
            }
            removed
        };
        if removed.is_empty() {
            return Ok(Vec::new());
        }
        self.forget(&removed);
        let groups: Vec<String> = removed
            .iter()
            .map(|sp| sp.key.group.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        for group in &groups {
            tracing::info!(%group, "share group expired (no activity within offsets_retention_minutes)");
        }
        let keys: Vec<bytes::Bytes> = removed
            .iter()
            .map(|sp| bytes::Bytes::from(sp.kv_key.clone()))
            .collect();
        if let Some(end) = crate::metadata::delete_keys(kv, &keys)? {
            kv.sync_to(end)?;
        }
        Ok(groups)
    }

    /// A starting point for spreading fetches over `n` partitions.
    pub fn rotate(&self, n: usize) -> usize {
        self.next_partition.fetch_add(1, Ordering::Relaxed) as usize % n.max(1)
    }

    /// Asks [`run_timers`] to visit `sp` at `at` (lock expiry or a dead-letter
    /// retry), unless it will already come by then.
    pub fn schedule(&self, sp: &SharePartition, at: Instant) {
        {
            let mut g = sp.lock();
            if g.timer.is_some_and(|t| t <= at) {
                return;
            }
            g.timer = Some(at);
        }
        let mut heap = self
            .timers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let earliest = heap.peek().is_none_or(|Reverse((t, _))| at < *t);
        heap.push(Reverse((at, sp.key.clone())));
        drop(heap);
        if earliest {
            self.timer_changed.notify_one();
        }
    }

    /// Removes every share-partition of `topic` (deleted), from memory and
    /// from the store, and wakes their long-polling fetches.
    ///
    /// # Errors
    /// The store's error.
    pub fn remove_topic(&self, kv: &KvStore, topic: &str) -> Result<(), warren_storage::Error> {
        let removed: Vec<Arc<SharePartition>> = {
            let mut map = self.map_write();
            let keys: Vec<ShareKey> = map.keys().filter(|k| k.topic == topic).cloned().collect();
            let removed: Vec<Arc<SharePartition>> =
                keys.iter().filter_map(|k| map.remove(k)).collect();
            for sp in &removed {
                sp.lock().removed = true;
            }
            removed
        };
        // Marked removed before the store's keys go, so a timer visit or an
        // acknowledgement still holding one cannot write it back after.
        self.forget(&removed);
        let stale: Vec<_> = kv
            .scan_prefix(share_state::ALL)
            .into_iter()
            .filter(|(k, _)| ShareKey::from_kv_key(k).is_some_and(|k| k.topic == topic))
            .map(|(k, _)| k)
            .collect();
        match crate::metadata::delete_keys(kv, &stale)? {
            Some(end) => kv.sync_to(end),
            None => Ok(()),
        }
    }

    /// Writes every share-partition that changed since its last write (the
    /// delivery counts of acquisitions), durably. Blocking: at shutdown.
    ///
    /// # Errors
    /// The store's first error.
    pub fn persist_all(&self, kv: &KvStore) -> Result<(), warren_storage::Error> {
        let all: Vec<Arc<SharePartition>> = self.map_read().values().cloned().collect();
        let mut last = None;
        for sp in all {
            let mut g = sp.lock();
            if let Some(o) = sp.persist(kv, &mut g)? {
                last = Some(o);
            }
        }
        match last {
            Some(o) => kv.sync_to(o),
            None => Ok(()),
        }
    }

    /// Takes the keys whose time has come, or the earliest deadline to wait for.
    fn due(&self, now: Instant) -> (Vec<ShareKey>, Option<Instant>) {
        let mut heap = self
            .timers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut due = Vec::new();
        // A key scheduled twice is visited once (a set: linear in the keys).
        let mut seen = HashSet::new();
        while let Some(Reverse((at, _))) = heap.peek() {
            if *at > now {
                break;
            }
            if let Some(Reverse((_, key))) = heap.pop()
                && seen.insert(key.clone())
            {
                due.push(key);
            }
        }
        let next = heap.peek().map(|Reverse((at, _))| *at);
        (due, next)
    }
}

/// What the share groups' timer task and dead-lettering act on beside the
/// share groups themselves: the topics (dead-letter topics are looked up by
/// name), the metadata store their state is written to, the users whose
/// grants vouch for timer-driven dead letters, and the broker's shutdown.
#[derive(Clone)]
pub struct ShareContext {
    pub groups: Arc<ShareGroups>,
    pub topics: Arc<Topics>,
    pub kv: KvStore,
    pub auth: Arc<crate::auth::Auth>,
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// The lock-expiry and dead-letter-retry task; see the module docs. Returns
/// when the broker shuts down.
pub async fn run_timers(ctx: ShareContext) {
    loop {
        let notified = ctx.groups.timer_changed.notified();
        let (due, next) = ctx.groups.due(Instant::now());
        for key in due {
            if let Some(sp) = ctx.groups.get(&key) {
                visit(&ctx, &sp).await;
            }
        }
        if ctx.shutdown.is_cancelled() {
            return;
        }
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = sleep => {}
            () = notified => {}
            () = ctx.shutdown.cancelled() => return,
        }
    }
}

/// One timer visit: expire due locks, write dead letters (new ones and
/// retries), persist, wake fetches, and schedule the next visit.
async fn visit(ctx: &ShareContext, sp: &Arc<SharePartition>) {
    let Some(topic) = ctx.topics.get(&sp.key.topic) else {
        return;
    };
    let max_attempts = topic.config.share.max_delivery_attempts;
    let now = Instant::now();
    let (expired, claims, written, user) = {
        let mut g = sp.lock();
        g.timer = None;
        let out = g.state.expire(now, max_attempts);
        let retry_due = g.retry_dead_letters_at.is_none_or(|at| at <= now);
        let claims = if retry_due {
            g.retry_dead_letters_at = None;
            g.state.claim_dead_letters()
        } else {
            Vec::new()
        };
        let written = match sp.persist(&ctx.kv, &mut g) {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(error = %e, group = %sp.key.group, topic = %sp.key.topic, partition = sp.key.partition, "writing share-group state failed");
                None
            }
        };
        (out.expired, claims, written, g.dead_letter_user.clone())
    };
    if expired > 0 {
        tracing::debug!(group = %sp.key.group, topic = %sp.key.topic, partition = sp.key.partition, expired, "acquisition locks expired");
        sp.changed.notify_waiters();
    }
    let mut last = written;
    if !claims.is_empty() {
        // No session here: the last acknowledging member's user vouches.
        let grants = ctx.auth.grants_for(user.as_deref());
        match dead_letter::write(ctx, sp, &topic, claims, &grants).await {
            Ok(o) => last = o.or(last),
            Err(code) => tracing::debug!(?code, "dead-letter write will be retried"),
        }
    }
    if let Some(o) = last
        && let Err(e) = sync_kv(&ctx.kv, o).await
    {
        tracing::error!(error = %e, "syncing share-group state failed");
    }
    ctx.groups.reschedule(sp);
}

impl ShareGroups {
    /// Schedules the next visit of `sp`: its earliest lock deadline, or its
    /// dead-letter retry.
    pub fn reschedule(&self, sp: &SharePartition) {
        let next = {
            let g = sp.lock();
            let retry = g
                .state
                .has_unclaimed_dead_letters()
                .then(|| g.retry_dead_letters_at.unwrap_or_else(Instant::now));
            match (g.state.next_deadline(), retry) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        };
        if let Some(at) = next {
            self.schedule(sp, at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_keys_round_trip_and_sort_by_partition() {
        let key = ShareKey {
            group: "billing".into(),
            topic: "orders.v2".into(),
            partition: 258,
        };
        let raw = key.kv_key();
        assert_eq!(raw.first(), Some(&b's'));
        assert_eq!(ShareKey::from_kv_key(&raw), Some(key.clone()));
        let next = ShareKey {
            partition: 259,
            ..key
        };
        assert!(raw < next.kv_key());
        assert_eq!(ShareKey::from_kv_key(b"s\0\0"), None);
        assert_eq!(ShareKey::from_kv_key(b"o"), None);
    }

    #[test]
    fn idle_share_groups_expire_durably_and_new_ones_are_capped()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let kv_dir = dir.path().join("kv");
        let config = crate::BrokerConfig {
            group_share_max_groups: 2,
            offsets_retention_minutes: 1,
            ..crate::BrokerConfig::default()
        };
        let key = |group: &str| ShareKey {
            group: group.into(),
            topic: "t".into(),
            partition: 0,
        };
        {
            let kv = KvStore::open(&kv_dir, warren_storage::KvConfig::default())?;
            let groups = ShareGroups::new(&config);
            let idle = groups
                .get_or_create(key("idle"), 0)
                .map_err(|e| e.to_string())?;
            groups
                .get_or_create(key("busy"), 0)
                .map_err(|e| e.to_string())?;
            // A third share group is over the cap; a known one is not.
            let over = groups.get_or_create(key("third"), 0);
            assert_eq!(over.err().map(|e| e.kind), Some(ErrorKind::LimitReached));
            groups
                .get_or_create(key("idle"), 0)
                .map_err(|e| e.to_string())?;
            for name in ["idle", "busy"] {
                kv.apply_durable(&[KvOp::Put(&key(name).kv_key(), &ShareState::new(0).encode())])?;
            }
            // "idle" was last active 2 minutes ago, "busy" just now.
            idle.last_active_ms
                .store(now_ms() - 120_000, Ordering::Relaxed);
            let expired = groups.expire_idle(&kv, now_ms())?;
            assert_eq!(expired, ["idle"]);
            assert!(groups.get(&key("idle")).is_none());
            assert!(groups.get(&key("busy")).is_some());
            {
                // A request still holding it changes it: nothing is written.
                let mut g = idle.lock();
                assert!(g.removed);
                let member: Arc<str> = Arc::from("m");
                g.state.acquire(0, 10, 5, &member, Instant::now());
                assert!(g.state.is_dirty());
                assert_eq!(idle.persist(&kv, &mut g)?, None, "never written again");
                assert!(kv.get(&key("idle").kv_key()).is_none());
            }
            // The slot is free again.
            groups
                .get_or_create(key("third"), 0)
                .map_err(|e| e.to_string())?;
            kv.close()?;
        }
        let kv = KvStore::open(&kv_dir, warren_storage::KvConfig::default())?;
        assert!(kv.get(&key("idle").kv_key()).is_none(), "deleted for good");
        assert!(kv.get(&key("busy").kv_key()).is_some());
        Ok(())
    }

    #[test]
    fn group_and_member_ids_are_checked() {
        assert!(validate_group_id("billing.v2_x-1").is_ok());
        assert!(validate_group_id("").is_err());
        assert!(validate_group_id("a b").is_err());
        assert!(validate_group_id("a\0b").is_err());
        assert!(validate_group_id(&"g".repeat(250)).is_err());
        assert!(validate_member_id("m").is_ok());
        assert!(validate_member_id("").is_err());
        assert!(validate_member_id(&"m".repeat(256)).is_err());
    }
}
