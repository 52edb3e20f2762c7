//! The partition log: an ordered set of segments, one of them active (Kafka's
//! `UnifiedLog`).
//!
//! - **Append** validates the batch (header, CRC, offsets), assigns offsets
//!   `log_end_offset..`, rolls the active segment when it is full or old, writes.
//!   [`PartitionLog::append_validated`] takes a batch the produce path already
//!   ran through `record_batch::validate` (records included) and checks only
//!   its size; internal writers (dead letters, the metadata store) use `append`.
//!   [`PartitionLog::append_replicated`] is a follower's append: the batch keeps
//!   its offsets (and leader epoch), and its base offset must be the log end.
//! - **Durability**: [`PartitionLog::sync_to`] is group commit. Callers that need
//!   "on disk" queue on one flush lock; whoever holds it `fdatasync`s everything
//!   written so far, so one `fsync` covers every append that landed while the
//!   previous one ran.
//! - **Fencing**: the first failed fsync (group commit, interval flush, the
//!   flush of a rolled segment, close) fails the log for good. Linux reports a
//!   writeback error to one `fsync` and may let the next one of the same file
//!   succeed without the lost pages ("fsyncgate"), so from then on the durable
//!   offset and the recovery point never move, every `sync_to` that is not
//!   already covered and every append get
//!   [`Error::Failed`](crate::Error::Failed), and only a reopen (which
//!   CRC-checks everything after the recovery point) serves writes again.
//!   Every fsync runs under one `fsync_gate` that also checks and sets the
//!   failed flag, so no fsync can start after a failed one and succeed
//!   unnoticed.
//! - **Read** returns [`FileSlice`]s of whole batches for `sendfile`.
//! - **Recovery** on open scans only segments after the recovery point (nothing after
//!   a clean close), truncating at the first torn or corrupt batch.
//! - **Retention** deletes whole oldest segments, never the active one;
//!   [`PartitionLog::delete_segments_before`] does the same below an offset that a
//!   snapshot covers (the key-value store's compaction).
//! - **Truncation** ([`PartitionLog::truncate_to`]) removes the newest records,
//!   from a batch boundary on (a follower whose log diverged from its
//!   leader's); the durable offset, the recovery point and the high watermark
//!   move down with the log end.
//!
//! Thread-safety: `PartitionLog` is `Send + Sync` and cheap to clone (an `Arc`).
//! Locks, in the order they may nest:
//! - `writer` (Mutex): appends, rolls, retention, truncation, close. One writer
//!   per partition.
//! - `checkpoint` (Mutex): writing the recovery-point file and the background flush
//!   of rolled segments.
//! - `syncing` (`Mutex<bool>` + Condvar `synced`): group commit; the flag is held
//!   across `fdatasync`, the mutex only to flip it.
//! - `fsync_gate` (Mutex): held across each segment fsync and each move of the
//!   durable offset, with the `failed` check (see **Fencing**).
//! - `segments` (RwLock): the segment map; held only to look up or clone an `Arc`.
//!
//! Readers take only the `segments` read lock, briefly, and never wait for an
//! append; they wait on a segment's index lock only while a roll trims it.
//!
//! # Layout
//! - this file: [`PartitionLog`], its state and locks, `open` and the accessors.
//! - `append`: append, a follower's append (offsets kept), rolls.
//! - `read`: reads by offset and by timestamp.
//! - `recovery`: what `open` trusts, CRC-checks and cuts.
//! - `sync`: group commit, the fsync gate and fencing, interval flushes, the
//!   high watermark, close.
//! - `retention`: deleting the oldest segments (retention, kv compaction).
//! - `truncate`: removing the newest records (a follower's truncation).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use warren_protocol::record_batch::RecordBatch;

use crate::config::LogConfig;
use crate::error::{IoContext, Result};
use crate::file_slice::FileSlice;
use crate::metrics::StorageMetrics;
use crate::offset::{FilePosition, Offset};
use crate::segment::Segment;

mod append;
mod read;
mod recovery;
mod retention;
mod sync;
#[cfg(test)]
mod test_support;
mod truncate;

/// Where an appended batch went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset assigned to the batch's first record.
    pub base_offset: Offset,
    /// Offset of its last record.
    pub last_offset: Offset,
    /// The log end offset after the append.
    pub log_end_offset: Offset,
    /// Base offset of the segment it was written to.
    pub segment_base_offset: Offset,
    /// Its byte position in that segment.
    pub position: FilePosition,
}

/// The result of a read.
#[derive(Debug, Clone, Default)]
pub struct ReadInfo {
    /// Whole batches, in offset order; empty at the log end.
    pub slices: Vec<FileSlice>,
    /// The log start offset when the read ran.
    pub log_start_offset: Offset,
    /// The log end offset when the read ran.
    pub log_end_offset: Offset,
}

impl ReadInfo {
    /// Total bytes in the slices.
    pub fn bytes(&self) -> u64 {
        self.slices.iter().map(|s| u64::from(s.len)).sum()
    }
}

/// A CRC-checked batch and where it lies on disk
/// ([`PartitionLog::read_located_batches`]).
#[derive(Debug, Clone)]
pub struct LocatedBatch {
    pub batch: RecordBatch,
    /// The segment file it was read from.
    pub path: Arc<PathBuf>,
    /// Its byte position in that file.
    pub position: u64,
}

/// What opening the log found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Whether the previous close was clean (no scan needed).
    pub clean_shutdown: bool,
    /// Segments whose every batch was CRC-checked.
    pub segments_recovered: usize,
    /// Bytes cut from torn or corrupt tails.
    pub truncated_bytes: u64,
    /// Indexes rebuilt because they were missing or inconsistent.
    pub indexes_rebuilt: usize,
}

/// What retention deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    pub segments_deleted: usize,
    pub bytes_deleted: u64,
    /// The log start offset afterwards.
    pub log_start_offset: Offset,
}

/// What a truncation removed ([`PartitionLog::truncate_to`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TruncateOutcome {
    /// Whole segments deleted.
    pub segments_deleted: usize,
    /// Bytes of batches removed, over all segments.
    pub bytes_removed: u64,
    /// The log end offset afterwards (unchanged by a no-op).
    pub log_end_offset: Offset,
}

/// Counters, for metrics and tests.
#[derive(Debug, Default)]
pub struct LogStats {
    pub appends: AtomicU64,
    pub bytes_appended: AtomicU64,
    /// `fdatasync` calls made by group commit and interval flushes.
    pub fsyncs: AtomicU64,
    pub segments_rolled: AtomicU64,
    /// Segments deleted by retention, compaction or truncation.
    pub segments_deleted: AtomicU64,
    /// Truncations that removed records ([`PartitionLog::truncate_to`]).
    pub truncations: AtomicU64,
}

struct Writer {
    active: Arc<Segment>,
    /// False after a clean open until the first append rewrites the checkpoint as
    /// not clean (so a crash after that is recovered).
    marked_dirty: bool,
    roll_flushes: Vec<JoinHandle<()>>,
}

struct Inner {
    dir: PathBuf,
    name: Arc<str>,
    config: LogConfig,
    segments: RwLock<BTreeMap<Offset, Arc<Segment>>>,
    writer: Mutex<Writer>,
    /// Guards the recovery-point file; holds the last offset written to it.
    checkpoint: Mutex<Offset>,
    /// True while one caller runs the group commit's `fdatasync`.
    syncing: Mutex<bool>,
    /// Signalled when a sync finishes.
    synced: Condvar,
    /// Serializes every segment fsync with the `failed` flag and the moves of
    /// `durable_offset` (see the module docs, **Fencing**). Two fsyncs of one
    /// log rarely overlap (group commit syncs the active segment, a roll flush
    /// the one before, which group commit already synced under `fsync`).
    fsync_gate: Mutex<()>,
    log_start_offset: AtomicU64,
    log_end_offset: AtomicU64,
    durable_offset: AtomicU64,
    last_sync_ms: AtomicU64,
    closed: AtomicBool,
    /// Set by the first failed fsync or flush. Linux may drop the dirty pages of a
    /// failed fsync and report the next one as a success ("fsyncgate"), so after a
    /// failure nothing written since the last good sync may be called durable:
    /// appends and syncs are refused and no clean checkpoint is written until the
    /// log is reopened (and recovered, which CRC-checks what is really on disk).
    failed: AtomicBool,
    /// Set once a close finished cleanly; a second close is then a no-op.
    closed_cleanly: AtomicBool,
    stats: LogStats,
    /// Where fsyncs, rolls, retention deletions and truncations are recorded.
    metrics: StorageMetrics,
    recovery: RecoveryReport,
}

/// One partition's log. See the module docs.
#[derive(Clone)]
pub struct PartitionLog {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PartitionLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionLog")
            .field("name", &self.inner.name)
            .field("log_start_offset", &self.log_start_offset())
            .field("log_end_offset", &self.log_end_offset())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl PartitionLog {
    /// Opens the log in `dir` (creating it if needed), recovering as needed.
    /// `name` (e.g. `orders-3`) appears in logs and errors.
    ///
    /// # Errors
    /// Config errors, I/O errors, and `CorruptLog` when segments overlap.
    pub fn open(dir: &Path, name: &str, config: LogConfig) -> Result<PartitionLog> {
        PartitionLog::open_with_metrics(dir, name, config, StorageMetrics::default())
    }

    /// [`open`](Self::open), recording the log's fsyncs, rolls, retention
    /// deletions and the bytes its recovery truncates into `metrics`.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_with_metrics(
        dir: &Path,
        name: &str,
        config: LogConfig,
        metrics: StorageMetrics,
    ) -> Result<PartitionLog> {
        config.validate()?;
        std::fs::create_dir_all(dir).ctx("create partition directory", dir)?;
        let name: Arc<str> = Arc::from(name);
        let recovered = recovery::recover(dir, &name, &config, &metrics)?;
        Ok(PartitionLog {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                name,
                config,
                segments: RwLock::new(recovered.segments),
                writer: Mutex::new(Writer {
                    active: recovered.active,
                    marked_dirty: !recovered.clean,
                    roll_flushes: Vec::new(),
                }),
                checkpoint: Mutex::new(recovered.checkpointed),
                syncing: Mutex::new(false),
                synced: Condvar::new(),
                fsync_gate: Mutex::new(()),
                log_start_offset: AtomicU64::new(recovered.log_start.0),
                log_end_offset: AtomicU64::new(recovered.log_end.0),
                durable_offset: AtomicU64::new(recovered.log_end.0),
                last_sync_ms: AtomicU64::new(now_ms() as u64),
                closed: AtomicBool::new(false),
                failed: AtomicBool::new(false),
                closed_cleanly: AtomicBool::new(false),
                stats: LogStats::default(),
                metrics,
                recovery: recovered.report,
            }),
        })
    }

    /// The name given at open (`topic-partition`).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The config the log was opened with.
    pub fn config(&self) -> &LogConfig {
        &self.inner.config
    }

    /// First offset still in the log.
    pub fn log_start_offset(&self) -> Offset {
        Offset(self.inner.log_start_offset.load(Ordering::Acquire))
    }

    /// Offset the next appended record gets.
    pub fn log_end_offset(&self) -> Offset {
        Offset(self.inner.log_end_offset.load(Ordering::Acquire))
    }

    /// Every offset below this is on disk (`fdatasync`ed).
    pub fn durable_offset(&self) -> Offset {
        Offset(self.inner.durable_offset.load(Ordering::Acquire))
    }

    /// Counters.
    pub fn stats(&self) -> &LogStats {
        &self.inner.stats
    }

    /// What the open found.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.inner.recovery
    }

    /// Bytes of batches on disk, over all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments().iter().map(|s| u64::from(s.size())).sum()
    }

    /// A snapshot of the segments, oldest first.
    pub fn segments(&self) -> Vec<Arc<Segment>> {
        self.inner
            .segments
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }
}
