//! One partition as the services see it: its log, the notifier that wakes
//! long-polling fetches when its high watermark moves, its metrics, and the
//! rule that decides when an append becomes visible; and its counters
//! ([`PartitionMetrics`]), which the metrics endpoint reads at scrape time.
//!
//! Every append goes through [`Partition::append_validated`] (produce) or
//! [`Partition::append`] (internal writers: dead letters), which wake fetches
//! and count the records, and every "wait until visible" through
//! [`Partition::wait_durable`] / [`Partition::make_visible`]. "Visible" is one
//! rule, here: an `fsync` topic's records become readable (the high
//! watermark, [`Partition::high_watermark`]) once fsynced, the others' at
//! once. A replicated partition will change that rule in this one place
//! (visible once the in-sync replicas have it), not in its callers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use metrics::Counter;
use tokio::sync::Notify;
use tokio::sync::futures::Notified;
use warren_protocol::record_batch::ValidatedBatch;
use warren_storage::{AppendInfo, Durability, Offset, PartitionLog};

/// One partition; see the module docs.
pub struct Partition {
    pub topic: Arc<str>,
    pub index: u32,
    pub log: PartitionLog,
    /// Woken (`notify_waiters`) whenever the high watermark moves.
    hw_moved: Notify,
    /// Records and bytes produced and fetched (see [`crate::metrics`]).
    pub metrics: PartitionMetrics,
    /// Set while a background sync ([`sync_in_background`](Self::sync_in_background))
    /// is scheduled or running.
    background_sync: AtomicBool,
}

impl Partition {
    /// Partition `index` of `topic` over its opened `log`.
    pub fn new(
        topic: Arc<str>,
        index: u32,
        log: PartitionLog,
        metrics: PartitionMetrics,
    ) -> Partition {
        Partition {
            topic,
            index,
            log,
            hw_moved: Notify::new(),
            metrics,
            background_sync: AtomicBool::new(false),
        }
    }

    /// The offset below which records are visible to consumers.
    pub fn high_watermark(&self) -> Offset {
        self.log.high_watermark()
    }

    /// A future that completes at the next move of the high watermark.
    /// Enable it (or poll it once) before looking at the log, so a move in
    /// between still wakes it.
    pub fn hw_moved(&self) -> Notified<'_> {
        self.hw_moved.notified()
    }

    /// Appends a batch the produce path validated (`wire_bytes` long as it
    /// came), wakes fetches if it is visible at once, and counts it.
    ///
    /// # Errors
    /// The log's append error (nothing written).
    pub fn append_validated(
        &self,
        batch: &ValidatedBatch<'_>,
    ) -> warren_storage::Result<AppendInfo> {
        let info = self.log.append_validated(batch)?;
        self.appended(&info, batch.as_bytes().len());
        Ok(info)
    }

    /// Appends a batch built inside the broker (dead letters), checked by
    /// the log; wakes fetches and counts it as [`append_validated`](Self::append_validated) does.
    ///
    /// # Errors
    /// The log's append error (nothing written).
    pub fn append(&self, batch: &[u8]) -> warren_storage::Result<AppendInfo> {
        let info = self.log.append(batch)?;
        self.appended(&info, batch.len());
        Ok(info)
    }

    /// Makes everything below `end` visible: fsyncs it for an `fsync` topic
    /// (sharing fsyncs with concurrent callers, on a blocking thread), nothing
    /// for the others, whose appends are visible at once.
    ///
    /// # Errors
    /// The storage error of a failed fsync.
    pub async fn make_visible(self: &Arc<Self>, end: Offset) -> warren_storage::Result<()> {
        if self.syncs_before_visible() {
            self.sync_to(end).await
        } else {
            Ok(())
        }
    }

    /// The partition's topic was deleted: wakes the fetches waiting on it,
    /// so they answer now.
    pub fn removed(&self) {
        self.hw_moved.notify_waiters();
    }

    /// True when appends become visible only after an fsync.
    pub fn syncs_before_visible(&self) -> bool {
        self.log.config().durability == Durability::Fsync
    }

    /// After an append: counts it, and wakes fetches at once unless the
    /// high watermark waits for an fsync (then [`sync_to`](Self::sync_to)
    /// wakes them).
    fn appended(&self, info: &AppendInfo, bytes: usize) {
        self.metrics
            .produced(info.last_offset.0 - info.base_offset.0 + 1, bytes as u64);
        if !self.syncs_before_visible() {
            self.hw_moved.notify_waiters();
        }
    }

    /// Makes every offset below `target` durable on a blocking thread (sharing
    /// fsyncs with concurrent callers), then wakes fetches.
    ///
    /// # Errors
    /// The storage error of a failed fsync (the partition then refuses writes
    /// until restart), or `Closed` if the blocking pool is gone.
    async fn sync_to(self: &Arc<Self>, target: Offset) -> warren_storage::Result<()> {
        let me = Arc::clone(self);
        let result = tokio::task::spawn_blocking(move || me.log.sync_to(target))
            .await
            .unwrap_or_else(|_| Err(warren_storage::Error::Closed(self.log.name().to_string())));
        self.hw_moved.notify_waiters();
        result
    }

    /// Waits until every offset below `target` is durable, without holding a
    /// thread: it asks for a [background sync](Self::sync_in_background) (one
    /// per partition, which covers every append before it) and sleeps on
    /// `hw_moved`, which that sync wakes. For acks=-1 produces: each used to
    /// hold a blocking thread in the log's group commit for as long as the
    /// fsync took, so a few connections' worth of them on a slow disk filled
    /// the blocking pool and starved offset commits and share acks, as acks=0
    /// floods did.
    ///
    /// # Errors
    /// `Failed` once an fsync of the log failed (the partition then refuses
    /// writes until restart).
    pub async fn wait_durable(self: &Arc<Self>, target: Offset) -> warren_storage::Result<()> {
        loop {
            let moved = self.hw_moved.notified();
            tokio::pin!(moved);
            // Registered before looking, so a sync that ends in between still
            // wakes this waiter.
            moved.as_mut().enable();
            if self.log.has_failed() {
                return Err(warren_storage::Error::Failed(self.log.name().to_string()));
            }
            if self.log.durable_offset() >= target {
                return Ok(());
            }
            self.sync_in_background();
            moved.await;
        }
    }

    /// Makes the log durable up to its end in the background, then wakes
    /// fetches: for produces that do not wait for the fsync (acks 0 and 1).
    ///
    /// At most one background sync per partition is scheduled or running. A
    /// call while one is returns at once: the running one, once caught up,
    /// looks at the log end again and syncs once more if it grew, so the last
    /// append is synced and becomes visible too (group commit covers every
    /// append before it). A task per request used to hold a blocking thread
    /// each, so a flood of acks=0 produces to an `fsync` topic filled the
    /// blocking pool and starved offset commits, share acks and topic admin.
    pub fn sync_in_background(self: &Arc<Self>) {
        if self.background_sync.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = Arc::clone(self);
        tokio::spawn(async move { me.run_background_sync().await });
    }

    /// Whether a background sync is scheduled or running.
    pub fn background_sync_pending(&self) -> bool {
        self.background_sync.load(Ordering::Acquire)
    }

    /// The body of [`sync_in_background`](Self::sync_in_background)'s task;
    /// it owns `background_sync` until it clears it.
    async fn run_background_sync(self: Arc<Self>) {
        loop {
            let target = self.log.log_end_offset();
            if self.log.durable_offset() < target {
                if self.sync_to(target).await.is_err() {
                    // Logged by the log, which now refuses appends (or is
                    // closed): nothing more will need a sync.
                    self.background_sync.store(false, Ordering::Release);
                    return;
                }
                continue;
            }
            // Caught up: let go, then look again. An append that found the flag
            // set returned counting on this task. The swap is a
            // read-modify-write, so it reads that appender's own swap (AcqRel)
            // and sees the log end it had written before.
            self.background_sync.swap(false, Ordering::AcqRel);
            if self.log.durable_offset() >= self.log.log_end_offset()
                || self.background_sync.swap(true, Ordering::AcqRel)
            {
                // Nothing left, or a new task took over.
                return;
            }
        }
    }
}

/// A partition's counters; see [`crate::metrics`]'s docs for why they are
/// rendered from the partition rather than by the recorder. Recording is a
/// `fetch_add` through the handle; the values are read at scrape time.
#[derive(Debug)]
pub struct PartitionMetrics {
    produced_records: Counter,
    produced_bytes: Counter,
    fetched_records: Counter,
    fetched_bytes: Counter,
    /// The values behind the handles; `None` when metrics are off.
    values: Option<Arc<PartitionAtomics>>,
}

/// The atomics behind a [`PartitionMetrics`]'s handles.
#[derive(Debug, Default)]
struct PartitionAtomics {
    produced_records: Arc<AtomicU64>,
    produced_bytes: Arc<AtomicU64>,
    fetched_records: Arc<AtomicU64>,
    fetched_bytes: Arc<AtomicU64>,
}

impl PartitionMetrics {
    /// Handles backed by fresh counters when `enabled`, no-ops otherwise.
    pub fn new(enabled: bool) -> PartitionMetrics {
        if !enabled {
            return PartitionMetrics {
                produced_records: Counter::noop(),
                produced_bytes: Counter::noop(),
                fetched_records: Counter::noop(),
                fetched_bytes: Counter::noop(),
                values: None,
            };
        }
        let v = PartitionAtomics::default();
        PartitionMetrics {
            produced_records: Counter::from_arc(Arc::clone(&v.produced_records)),
            produced_bytes: Counter::from_arc(Arc::clone(&v.produced_bytes)),
            fetched_records: Counter::from_arc(Arc::clone(&v.fetched_records)),
            fetched_bytes: Counter::from_arc(Arc::clone(&v.fetched_bytes)),
            values: Some(Arc::new(v)),
        }
    }

    /// The counters' values now, or `None` when metrics are off.
    pub fn counts(&self) -> Option<PartitionCounts> {
        self.values.as_ref().map(|v| PartitionCounts {
            produced_records: v.produced_records.load(Ordering::Relaxed),
            produced_bytes: v.produced_bytes.load(Ordering::Relaxed),
            fetched_records: v.fetched_records.load(Ordering::Relaxed),
            fetched_bytes: v.fetched_bytes.load(Ordering::Relaxed),
        })
    }

    /// A batch of `records` records, `bytes` bytes, was appended.
    pub fn produced(&self, records: u64, bytes: u64) {
        self.produced_records.increment(records);
        self.produced_bytes.increment(bytes);
    }

    /// A fetch response carried `bytes` bytes of whole batches spanning
    /// `records` offsets (counted from the batches' offsets, not decoded).
    pub fn fetched(&self, records: u64, bytes: u64) {
        self.fetched_records.increment(records);
        self.fetched_bytes.increment(bytes);
    }
}

/// A [`PartitionMetrics`]'s values at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionCounts {
    pub produced_records: u64,
    pub produced_bytes: u64,
    pub fetched_records: u64,
    pub fetched_bytes: u64,
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests")]
mod tests {
    use std::time::Duration;

    use warren_protocol::{Compression, RecordBatchBuilder};

    use warren_storage::LogConfig;

    use super::*;

    fn partition(dir: &std::path::Path) -> Arc<Partition> {
        let config = LogConfig {
            max_index_bytes: 4096,
            ..LogConfig::default()
        };
        Arc::new(Partition::new(
            Arc::from("t"),
            0,
            PartitionLog::open(dir, "t-0", config).unwrap(),
            PartitionMetrics::new(false),
        ))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn background_syncs_are_one_at_a_time_and_the_last_append_becomes_visible() {
        let dir = tempfile::tempdir().unwrap();
        let p = partition(dir.path());
        let mut b = RecordBatchBuilder::new(Compression::None);
        b.append(1_700_000_000_000, None, Some(b"v"), &[]);
        let batch = b.build().unwrap();
        for _ in 0..500 {
            p.log.append(&batch).unwrap();
            p.sync_in_background();
            // Scheduled or running from the first call until caught up.
            assert!(
                p.background_sync_pending() || p.log.durable_offset() == p.log.log_end_offset()
            );
        }
        let end = p.log.log_end_offset();
        assert_eq!(end, Offset(500));
        for _ in 0..3000 {
            if p.high_watermark() == end && !p.background_sync_pending() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(p.high_watermark(), end, "the last append is synced");
        assert!(
            !p.background_sync_pending(),
            "the task let go once caught up"
        );
        p.log.close().unwrap();
    }
}
