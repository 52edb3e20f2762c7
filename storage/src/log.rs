//! The partition log: an ordered set of segments, one of them active (Kafka's
//! `UnifiedLog`).
//!
//! - **Append** validates the batch (header, CRC, offsets), assigns offsets
//!   `log_end_offset..`, rolls the active segment when it is full or old, writes.
//!   [`PartitionLog::append_validated`] takes a batch the produce path already
//!   ran through `record_batch::validate` (records included) and checks only
//!   its size; internal writers (dead letters, the metadata store) use `append`.
//! - **Durability**: [`PartitionLog::sync_to`] is group commit. Callers that need
//!   "on disk" queue on one flush lock; whoever holds it `fdatasync`s everything
//!   written so far, so one `fsync` covers every append that landed while the
//!   previous one ran.
//! - **Fencing**: the first failed fsync (group commit, interval flush, the
//!   flush of a rolled segment, close) fails the log for good. Linux reports a
//!   writeback error to one `fsync` and may let the next one of the same file
//!   succeed without the lost pages ("fsyncgate"), so from then on the durable
//!   offset and the recovery point never move, every `sync_to` that is not
//!   already covered and every append get [`Error::Failed`], and only a reopen
//!   (which CRC-checks everything after the recovery point) serves writes
//!   again. Every fsync runs under one `fsync_gate` that also checks and sets
//!   the failed flag, so no fsync can start after a failed one and succeed
//!   unnoticed.
//! - **Read** returns [`FileSlice`]s of whole batches for `sendfile`.
//! - **Recovery** on open scans only segments after the recovery point (nothing after
//!   a clean close), truncating at the first torn or corrupt batch.
//! - **Retention** deletes whole oldest segments, never the active one;
//!   [`PartitionLog::delete_segments_before`] does the same below an offset that a
//!   snapshot covers (the key-value store's compaction).
//!
//! Thread-safety: `PartitionLog` is `Send + Sync` and cheap to clone (an `Arc`).
//! Locks, in the order they may nest:
//! - `writer` (Mutex): appends, rolls, retention, close. One writer per partition.
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

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use warren_protocol::record_batch::{self, BatchHeader, Compression, RecordBatch, ValidatedBatch};
use warren_protocol::record_stream::ClipLimits;

use crate::checkpoint::Checkpoint;
use crate::config::{Durability, LogConfig};
use crate::error::{Error, IoContext, Result};
use crate::file_names::{RECOVERY_POINT_FILE, SegmentFile, TMP_SUFFIX, parse_segment_file};
use crate::file_slice::FileSlice;
use crate::metrics::StorageMetrics;
use crate::offset::{FilePosition, Offset};
use crate::segment::Segment;

/// How [`PartitionLog::offset_for_timestamp`] reads a batch: offsets and
/// timestamps only, at most the 64 MiB a batch may decompress to.
const OFFSETS_ONLY: ClipLimits = ClipLimits {
    max_decompressed_bytes: record_batch::DEFAULT_MAX_DECOMPRESSED_BYTES,
    max_field_bytes: 0,
    max_headers: 0,
};

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

/// Counters, for metrics and tests.
#[derive(Debug, Default)]
pub struct LogStats {
    pub appends: AtomicU64,
    pub bytes_appended: AtomicU64,
    /// `fdatasync` calls made by group commit and interval flushes.
    pub fsyncs: AtomicU64,
    pub segments_rolled: AtomicU64,
    pub segments_deleted: AtomicU64,
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
        let checkpoint = match Checkpoint::read(dir) {
            Ok(cp) => cp,
            Err(e) => {
                tracing::warn!(partition = %name, error = %e, "unreadable recovery point, scanning every segment");
                None
            }
        };
        let bases = list_segments(dir, &name)?;
        let clean = checkpoint.is_some_and(|c| c.clean);
        let recovery_point = checkpoint.map_or(Offset(0), |c| c.recovery_offset);
        let mut report = RecoveryReport {
            clean_shutdown: clean,
            ..RecoveryReport::default()
        };
        let mut segments = BTreeMap::new();
        let mut needs_sync = Vec::new();
        for (i, base) in bases.iter().enumerate() {
            let next_base = bases.get(i + 1).copied();
            let (segment, index_missing) = Segment::open(dir, name.clone(), *base, &config)?;
            let trusted = match next_base {
                None => clean,
                Some(next) => clean || next <= recovery_point,
            };
            let mut recovered = false;
            let mut outcome = None;
            if trusted {
                let tail = segment.load_tail()?;
                let tail_ok = tail.invalid.is_none()
                    && !index_missing
                    && segment.indexes_look_sane(tail.next_offset)
                    && (next_base.is_some() || tail.next_offset == recovery_point);
                if tail_ok {
                    outcome = Some(tail);
                } else {
                    tracing::warn!(partition = %name, segment = %base, "flushed segment fails its checks, recovering it");
                    report.indexes_rebuilt += 1;
                }
            }
            let outcome = match outcome {
                Some(o) => o,
                None => {
                    recovered = true;
                    report.segments_recovered += 1;
                    segment.recover(true)?
                }
            };
            if let Some((position, reason)) = &outcome.invalid {
                let dropped = outcome.file_bytes.saturating_sub(outcome.valid_bytes);
                report.truncated_bytes += dropped;
                metrics.recovery_truncated_bytes.increment(dropped);
                tracing::warn!(
                    partition = %name,
                    path = %segment.log_path().display(),
                    position,
                    %reason,
                    truncated_bytes = dropped,
                    first_dropped_offset = %outcome.next_offset,
                    "truncated log at the first invalid batch"
                );
            }
            if let Some(next) = next_base {
                if outcome.next_offset > next {
                    return Err(Error::CorruptLog {
                        partition: name.to_string(),
                        path: segment.log_path().to_path_buf(),
                        position: outcome.valid_bytes,
                        reason: format!(
                            "segment ends at offset {} but the next segment starts at {next}",
                            outcome.next_offset
                        ),
                    });
                }
                if outcome.next_offset < next && outcome.invalid.is_some() {
                    tracing::error!(partition = %name, from = %outcome.next_offset, to = %next,
                        "offsets lost to corruption in a flushed segment; later segments kept");
                }
                segment.seal()?;
            } else if let Err(e) = segment.preallocate_indexes(&config) {
                // On a full disk the log must still open for reads: keep the
                // index at its size; appends roll (and get DiskFull) until space
                // is freed.
                if !e.is_retriable() {
                    return Err(e);
                }
                tracing::warn!(partition = %name, error = %e, "cannot preallocate the active index");
            }
            let segment = Arc::new(segment);
            if recovered {
                needs_sync.push(segment.clone());
            }
            segments.insert(*base, segment);
        }
        if segments.is_empty() {
            let segment = Arc::new(Segment::create(dir, name.clone(), recovery_point, &config)?);
            segments.insert(recovery_point, segment);
        }
        let active = segments
            .values()
            .next_back()
            .cloned()
            .ok_or_else(|| Error::Closed(name.to_string()))?;
        let log_start = segments.keys().next().copied().unwrap_or_default();
        let log_end = active.next_offset();
        // What a previous process left in the page cache may not be on disk yet:
        // make it durable before anyone is told it is.
        for segment in &needs_sync {
            segment.flush()?;
        }
        // A clean checkpoint holds only if the log ends exactly where it says;
        // otherwise (open cut the log, or found more) rewrite it as not clean.
        let clean = clean && log_end == recovery_point;
        let mut checkpointed = recovery_point;
        if !clean {
            Checkpoint {
                recovery_offset: log_end,
                clean: false,
            }
            .write(dir)?;
            checkpointed = log_end;
        }
        if report.segments_recovered > 0 || report.truncated_bytes > 0 {
            tracing::info!(partition = %name, ?report, %log_end, "log recovered");
        }
        Ok(PartitionLog {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                name,
                config,
                segments: RwLock::new(segments),
                writer: Mutex::new(Writer {
                    active,
                    marked_dirty: !clean,
                    roll_flushes: Vec::new(),
                }),
                checkpoint: Mutex::new(checkpointed),
                syncing: Mutex::new(false),
                synced: Condvar::new(),
                fsync_gate: Mutex::new(()),
                log_start_offset: AtomicU64::new(log_start.0),
                log_end_offset: AtomicU64::new(log_end.0),
                durable_offset: AtomicU64::new(log_end.0),
                last_sync_ms: AtomicU64::new(now_ms() as u64),
                closed: AtomicBool::new(false),
                failed: AtomicBool::new(false),
                closed_cleanly: AtomicBool::new(false),
                stats: LogStats::default(),
                metrics,
                recovery: report,
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

    /// Appends one batch, assigning offsets from the log end. Returns once the
    /// batch is in the page cache; see [`append_durable`](Self::append_durable).
    ///
    /// The batch must be a whole RecordBatch with a valid CRC and
    /// `last_offset_delta == records_count - 1`; its base offset is ignored.
    ///
    /// # Errors
    /// `InvalidBatch` (nothing written), `BatchTooLarge`, `DiskFull` (retriable;
    /// the log is unchanged), other I/O errors, `Closed`.
    pub fn append(&self, batch: &[u8]) -> Result<AppendInfo> {
        let header = validate_batch(batch, self.inner.config.batch_limit())?;
        self.append_checked(batch, &header)
    }

    /// Appends a batch [`record_batch::validate`] accepted (the produce
    /// path): its header is not parsed and its CRC not computed again, but
    /// its size is still checked against this log's limit.
    ///
    /// # Errors
    /// As [`append`](Self::append).
    pub fn append_validated(&self, batch: &ValidatedBatch<'_>) -> Result<AppendInfo> {
        let bytes = batch.as_bytes();
        let limit = self.inner.config.batch_limit();
        if bytes.len() > limit as usize {
            return Err(Error::BatchTooLarge {
                bytes: bytes.len(),
                limit,
            });
        }
        self.append_checked(bytes, batch.header())
    }

    /// Appends a batch whose `header` is parsed and checked.
    fn append_checked(&self, batch: &[u8], header: &BatchHeader) -> Result<AppendInfo> {
        let mut w = lock(&self.inner.writer);
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed(self.inner.name.to_string()));
        }
        self.check_not_failed()?;
        if !w.marked_dirty {
            let cp = lock(&self.inner.checkpoint);
            Checkpoint {
                recovery_offset: *cp,
                clean: false,
            }
            .write(&self.inner.dir)?;
            w.marked_dirty = true;
        }
        let base_offset = self.log_end_offset();
        let last_offset = base_offset.plus(u64::from(header.offset_count()) - 1);
        let now = now_ms();
        if self.should_roll(&w.active, batch.len(), last_offset, now) {
            self.roll(&mut w, base_offset)?;
        }
        let position = FilePosition(w.active.size());
        w.active.append(base_offset, batch, header, now)?;
        let log_end = last_offset.plus(1);
        self.inner
            .log_end_offset
            .store(log_end.0, Ordering::Release);
        let stats = &self.inner.stats;
        stats.appends.fetch_add(1, Ordering::Relaxed);
        stats
            .bytes_appended
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(AppendInfo {
            base_offset,
            last_offset,
            log_end_offset: log_end,
            segment_base_offset: w.active.base_offset(),
            position,
        })
    }

    /// Appends one batch and returns when it is durable as the log's
    /// [`Durability`] defines: after a (shared) `fdatasync` for `fsync`, at once
    /// for `interval` and `none`.
    ///
    /// # Errors
    /// As [`append`](Self::append), plus I/O errors from the sync.
    pub fn append_durable(&self, batch: &[u8]) -> Result<AppendInfo> {
        let info = self.append(batch)?;
        if self.inner.config.durability == Durability::Fsync {
            self.sync_to(info.log_end_offset)?;
        }
        Ok(info)
    }

    fn should_roll(
        &self,
        active: &Segment,
        batch_bytes: usize,
        last_offset: Offset,
        now: i64,
    ) -> bool {
        let size = u64::from(active.size());
        if size == 0 {
            return false;
        }
        let config = &self.inner.config;
        let since = active.rolling_base_ms();
        size + batch_bytes as u64 > u64::from(config.segment_bytes)
            || active.indexes_full()
            || last_offset.relative_to(active.base_offset()).is_none()
            || (since >= 0
                && now.saturating_sub(since) > i64::try_from(config.segment_ms).unwrap_or(i64::MAX))
    }

    /// Starts a new active segment at `new_base`. The old one is sealed now and
    /// flushed in the background, after which the recovery point moves past it.
    fn roll(&self, w: &mut Writer, new_base: Offset) -> Result<()> {
        let inner = &self.inner;
        let new = Arc::new(Segment::create(
            &inner.dir,
            inner.name.clone(),
            new_base,
            &inner.config,
        )?);
        if let Err(e) = w.active.seal() {
            let _ = new.delete_files(&inner.dir);
            return Err(e);
        }
        inner
            .segments
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(new_base, new.clone());
        w.active = new;
        inner.stats.segments_rolled.fetch_add(1, Ordering::Relaxed);
        inner.metrics.segment_rolls.increment(1);
        w.roll_flushes.retain(|h| !h.is_finished());
        // A weak handle: a log dropped without close (a simulated crash, a
        // deleted topic) must not have a thread writing into its directory later.
        let weak = Arc::downgrade(&self.inner);
        let spawned = std::thread::Builder::new()
            .name("warren-roll-flush".into())
            .spawn(move || {
                let Some(inner) = weak.upgrade() else { return };
                let log = PartitionLog { inner };
                if let Err(e) = log.checkpoint_below(new_base) {
                    tracing::error!(partition = %log.inner.name, error = %e, "flush of rolled segment failed");
                }
            });
        match spawned {
            Ok(handle) => w.roll_flushes.push(handle),
            // No thread: the next roll or close flushes these segments instead.
            Err(e) => tracing::warn!(error = %e, "could not start the roll flush thread"),
        }
        tracing::debug!(partition = %inner.name, base_offset = %new_base, "segment rolled");
        Ok(())
    }

    /// Flushes every segment below `upto` not yet covered by the recovery point,
    /// then moves the recovery point to `upto`.
    ///
    /// On a failed log it does nothing but return [`Error::Failed`]: a flush of
    /// a file whose earlier fsync failed may "succeed" without the lost pages,
    /// so it proves nothing (see the module docs, **Fencing**).
    fn checkpoint_below(&self, upto: Offset) -> Result<()> {
        let inner = &self.inner;
        let mut cp = lock(&inner.checkpoint);
        if inner.closed.load(Ordering::Acquire) || *cp >= upto {
            return Ok(());
        }
        self.check_not_failed()?;
        for segment in self.segments() {
            if segment.base_offset() >= upto {
                break;
            }
            if segment.next_offset() > *cp {
                let started = Instant::now();
                self.fenced_sync(&segment, true)?;
                inner.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
                inner.metrics.fsynced(started);
            }
        }
        // A group commit that failed while we flushed fails this too: the
        // recovery point must not move past pages that fsync may have lost.
        self.check_not_failed()?;
        Checkpoint {
            recovery_offset: upto,
            clean: false,
        }
        .write(&inner.dir)?;
        *cp = upto;
        self.advance_durable(upto)
    }

    /// Blocks until every offset below `target` is on disk (group commit).
    ///
    /// One caller at a time is the leader: it `fdatasync`s the segments with
    /// unsynced bytes and publishes the log end it saw before syncing, which
    /// covers every append that finished meanwhile. The others wait on a condvar
    /// and all wake when it is done; those it covered return at once, and one of
    /// the rest leads the next sync. (A plain mutex around the fsync hands the lock
    /// to waiters one by one, and each wake-up in that convoy can start a new
    /// fsync: in `tests/group_commit.rs` (8 appenders) that gave 1.7 appends per
    /// fsync, the condvar 4-4.5.) Blocking: from async code, call it on a
    /// blocking thread.
    ///
    /// A target already below the durable offset returns `Ok` at once, also on a
    /// failed log: those offsets were synced before the failure.
    ///
    /// # Errors
    /// [`Error::Failed`] when an fsync failed, now or earlier: the leader and
    /// every waiter its sync did not cover get it, and so does every later
    /// call, until the log is reopened. The durable offset does not move.
    pub fn sync_to(&self, target: Offset) -> Result<()> {
        let inner = &self.inner;
        if self.durable_offset() >= target {
            return Ok(());
        }
        let mut syncing = lock(&inner.syncing);
        loop {
            if self.durable_offset() >= target {
                return Ok(());
            }
            if !*syncing {
                break;
            }
            syncing = inner
                .synced
                .wait(syncing)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        self.check_not_failed()?;
        *syncing = true;
        drop(syncing);
        // On error the log is already failed (`fenced_sync`), so the waiters
        // woken below find it failed and return the error too.
        let result = self.sync_unsynced();
        *lock(&inner.syncing) = false;
        inner.synced.notify_all();
        result
    }

    fn check_not_failed(&self) -> Result<()> {
        if self.inner.failed.load(Ordering::Acquire) {
            return Err(Error::Failed(self.inner.name.to_string()));
        }
        Ok(())
    }

    /// Fails the log for good (see the module docs, **Fencing**); the caller
    /// holds `fsync_gate`.
    fn mark_failed(&self, cause: &Error) {
        if !self.inner.failed.swap(true, Ordering::AcqRel) {
            tracing::error!(partition = %self.inner.name, error = %cause,
                durable_offset = %self.durable_offset(), log_end_offset = %self.log_end_offset(),
                "fsync failed: the log refuses appends and syncs until it is reopened and recovered");
        }
    }

    /// One fsync of `segment` (its log file; with its indexes when
    /// `with_indexes`) under `fsync_gate`: refused on a failed log, and a
    /// failure fails the log. See the module docs, **Fencing**.
    ///
    /// # Errors
    /// [`Error::Failed`], whether this fsync failed or an earlier one did.
    fn fenced_sync(&self, segment: &Segment, with_indexes: bool) -> Result<()> {
        let _gate = lock(&self.inner.fsync_gate);
        self.check_not_failed()?;
        let synced = if with_indexes {
            segment.flush()
        } else {
            segment.sync_log()
        };
        if let Err(e) = synced {
            self.mark_failed(&e);
            return Err(Error::Failed(self.inner.name.to_string()));
        }
        Ok(())
    }

    /// Moves the durable offset up to `to` unless the log has failed (checked
    /// under `fsync_gate`, so no fsync failure can come between the check and
    /// the move).
    ///
    /// # Errors
    /// [`Error::Failed`]; the durable offset then stays where it is.
    fn advance_durable(&self, to: Offset) -> Result<()> {
        let _gate = lock(&self.inner.fsync_gate);
        self.check_not_failed()?;
        self.inner.durable_offset.fetch_max(to.0, Ordering::AcqRel);
        Ok(())
    }

    /// True after a failed fsync: see [`Error::Failed`].
    pub fn has_failed(&self) -> bool {
        self.inner.failed.load(Ordering::Acquire)
    }

    /// The leader's half of [`sync_to`](Self::sync_to); the caller owns `syncing`.
    fn sync_unsynced(&self) -> Result<()> {
        let inner = &self.inner;
        let durable = self.durable_offset();
        let end = self.log_end_offset();
        let unsynced: Vec<Arc<Segment>> = {
            let map = inner
                .segments
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut v: Vec<_> = map
                .values()
                .rev()
                .take_while(|s| s.next_offset() > durable)
                .cloned()
                .collect();
            v.reverse();
            v
        };
        for segment in unsynced {
            let started = Instant::now();
            self.fenced_sync(&segment, false)?;
            inner.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
            inner.metrics.fsynced(started);
        }
        self.advance_durable(end)?;
        inner.last_sync_ms.store(now_ms() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// For `interval:<ms>` logs: syncs if the interval has passed since the last
    /// sync and there is something to sync. A no-op for other modes, and on a
    /// failed log (its failure was logged when it happened; it stays fenced).
    ///
    /// # Errors
    /// As [`sync_to`](Self::sync_to).
    pub fn sync_if_due(&self) -> Result<bool> {
        let Durability::Interval { ms } = self.inner.config.durability else {
            return Ok(false);
        };
        if self.has_failed() {
            return Ok(false);
        }
        let last = self.inner.last_sync_ms.load(Ordering::Relaxed);
        let end = self.log_end_offset();
        if (now_ms() as u64).saturating_sub(last) < ms || self.durable_offset() >= end {
            return Ok(false);
        }
        self.sync_to(end)?;
        Ok(true)
    }

    /// Whole batches starting with the one that holds `from`, up to `max_bytes`
    /// (at least one batch, however large), possibly spanning segments.
    ///
    /// Only the headers at the ends of each slice are checked; see
    /// [`Segment::read`]. Use [`read_batches`](Self::read_batches) to check all.
    ///
    /// # Errors
    /// `OffsetOutOfRange` outside `[log_start, log_end]`; `CorruptLog` for a bad
    /// batch header it walks (naming partition and position).
    pub fn read(&self, from: Offset, max_bytes: u32) -> Result<ReadInfo> {
        self.read_to(from, max_bytes, self.log_end_offset())
    }

    /// The offset after the last record consumers may see: the durable offset
    /// under `fsync` (so a consumer never sees a record a crash could take
    /// back), the log end otherwise. Always on a batch boundary.
    pub fn high_watermark(&self) -> Offset {
        match self.inner.config.durability {
            Durability::Fsync => self.durable_offset().min(self.log_end_offset()),
            _ => self.log_end_offset(),
        }
    }

    /// Like [`read`](Self::read), but only batches that end at or before `upto`
    /// (clamped to the log end), such as the [`high_watermark`](Self::high_watermark).
    ///
    /// # Errors
    /// As [`read`](Self::read), with `upto` as the end of the valid range.
    pub fn read_to(&self, from: Offset, max_bytes: u32, upto: Offset) -> Result<ReadInfo> {
        let log_end = self.log_end_offset().min(upto);
        let log_start = self.log_start_offset();
        let mut info = ReadInfo {
            slices: Vec::new(),
            log_start_offset: log_start,
            log_end_offset: log_end,
        };
        if from < log_start || from > log_end {
            return Err(Error::OffsetOutOfRange {
                requested: from.0,
                log_start: log_start.0,
                log_end: log_end.0,
            });
        }
        let mut position = from;
        let mut remaining = max_bytes;
        let Some(first_key) = self.segment_key_for(from) else {
            // Retention removed the segment between the check above and here.
            let log_start = self.log_start_offset();
            return Err(Error::OffsetOutOfRange {
                requested: from.0,
                log_start: log_start.0,
                log_end: log_end.0,
            });
        };
        let mut key = Some(first_key);
        while let Some((base, segment)) = key.and_then(|k| self.segment_at_or_after(k)) {
            if position >= log_end {
                break;
            }
            if let Some(slice) = segment.read(position, remaining, log_end)? {
                if !info.slices.is_empty() && slice.len > remaining {
                    break;
                }
                let reached_end = slice.position.0 + slice.len >= segment.size();
                remaining = remaining.saturating_sub(slice.len);
                position = slice.next_offset;
                info.slices.push(slice);
                if remaining == 0 || !reached_end {
                    break;
                }
            }
            key = Some(base.plus(1));
        }
        Ok(info)
    }

    /// Like [`read`](Self::read), but copies the bytes into memory and CRC-checks
    /// every batch: the path for tools, tests and TLS.
    ///
    /// # Errors
    /// As [`read`](Self::read); `CorruptLog` naming the position of a batch whose
    /// CRC fails.
    pub fn read_batches(&self, from: Offset, max_bytes: u32) -> Result<Vec<RecordBatch>> {
        let batches = self.read_located_batches(from, max_bytes, self.log_end_offset())?;
        Ok(batches.into_iter().map(|b| b.batch).collect())
    }

    /// Like [`read_batches`](Self::read_batches), but only batches that end at
    /// or before `upto` (as [`read_to`](Self::read_to)), each with the file and
    /// position it was read from, so a caller that finds its records bad can
    /// say where (the admin API's message peek).
    ///
    /// # Errors
    /// As [`read_to`](Self::read_to); `CorruptLog` naming the position of a
    /// batch whose CRC fails.
    pub fn read_located_batches(
        &self,
        from: Offset,
        max_bytes: u32,
        upto: Offset,
    ) -> Result<Vec<LocatedBatch>> {
        let info = self.read_to(from, max_bytes, upto)?;
        let mut batches = Vec::new();
        for slice in &info.slices {
            let bytes = slice.to_bytes()?;
            let mut at = 0usize;
            while at < bytes.len() {
                let position = u64::from(slice.position.0) + at as u64;
                let corrupt = |reason: String| Error::CorruptLog {
                    partition: self.inner.name.to_string(),
                    path: slice.path.to_path_buf(),
                    position,
                    reason,
                };
                let rest = bytes.get(at..).unwrap_or_default();
                let len = record_batch::peek_batch_len(rest)
                    .map_err(|e| corrupt(e.to_string()))?
                    .filter(|len| *len <= rest.len())
                    .ok_or_else(|| corrupt("truncated batch".into()))?;
                let batch = RecordBatch::new(bytes.slice(at..at + len))
                    .map_err(|e| corrupt(e.to_string()))?;
                batch.verify_crc().map_err(|e| corrupt(e.to_string()))?;
                batches.push(LocatedBatch {
                    batch,
                    path: Arc::clone(&slice.path),
                    position,
                });
                at += len;
            }
        }
        Ok(batches)
    }

    /// The first record with timestamp `>= timestamp`, as (offset, its timestamp);
    /// `None` if every record is older (ListOffsets by time).
    ///
    /// # Errors
    /// `CorruptLog` for a bad batch on the way.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(Offset, i64)>> {
        let mut unlimited = u64::MAX;
        self.offset_for_timestamp_within(timestamp, &mut unlimited)
    }

    /// [`offset_for_timestamp`](Self::offset_for_timestamp), decompressing at
    /// most `*budget` bytes of zstd records (what it decompresses is taken
    /// off `*budget`: one ListOffsets request shares one budget across its
    /// partitions). A compressed batch that would need more answers at batch
    /// granularity instead: its base offset and `max_timestamp` (at or
    /// before the exact record, whose timestamp is at most that). Records are
    /// streamed, never held: memory is the zstd window, whatever the batch.
    ///
    /// # Errors
    /// `CorruptLog` for a bad batch on the way.
    pub fn offset_for_timestamp_within(
        &self,
        timestamp: i64,
        budget: &mut u64,
    ) -> Result<Option<(Offset, i64)>> {
        let start = self.log_start_offset();
        for segment in self.segments() {
            if segment.max_timestamp() < timestamp {
                continue;
            }
            let Some((position, _)) = segment.find_batch_by_timestamp(timestamp)? else {
                continue;
            };
            let batch = segment.batch_at(position)?;
            let header = *batch.header();
            let compressed = header.compression().is_ok_and(|c| c != Compression::None);
            let cap = record_batch::DEFAULT_MAX_DECOMPRESSED_BYTES;
            let allowed = if compressed {
                usize::try_from(*budget).unwrap_or(usize::MAX).min(cap)
            } else {
                cap
            };
            let batch_answer = Some((
                Offset(u64::try_from(header.base_offset).unwrap_or(0).max(start.0)),
                header.max_timestamp,
            ));
            if allowed == 0 {
                return Ok(batch_answer);
            }
            let mut found = None;
            let mut read = 0u64;
            let limits = ClipLimits {
                max_decompressed_bytes: allowed,
                ..OFFSETS_ONLY
            };
            let visited = batch.visit_clipped(&limits, |r| {
                read = r.block_bytes_read;
                if r.timestamp >= timestamp && r.offset >= start.0 as i64 {
                    found = Some((Offset(r.offset as u64), r.timestamp));
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            });
            match visited {
                Ok(()) => {
                    if compressed {
                        *budget = budget.saturating_sub(read);
                    }
                }
                Err(warren_protocol::Error::DecompressedTooLarge { .. }) if allowed < cap => {
                    *budget = 0;
                    return Ok(batch_answer);
                }
                Err(e) => {
                    return Err(Error::CorruptLog {
                        partition: self.inner.name.to_string(),
                        path: segment.log_path().to_path_buf(),
                        position,
                        reason: e.to_string(),
                    });
                }
            }
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// Deletes the oldest segments past `retention_bytes` / `retention_ms`, never
    /// the active one. Reads below the new start then get `OffsetOutOfRange`;
    /// slices already handed out stay readable.
    ///
    /// # Errors
    /// I/O errors deleting files (segments already removed from the map stay removed).
    pub fn apply_retention(&self, now_ms: i64) -> Result<RetentionOutcome> {
        let inner = &self.inner;
        let _w = lock(&inner.writer);
        // A closed handle may be a stale clone of a deleted topic whose directory
        // now holds a new log: deleting by path would delete that log's files.
        if inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed(inner.name.to_string()));
        }
        let segments = self.segments();
        let mut total: u64 = segments.iter().map(|s| u64::from(s.size())).sum();
        let mut doomed = Vec::new();
        for segment in segments.iter().take(segments.len().saturating_sub(1)) {
            let size = u64::from(segment.size());
            let by_size = inner
                .config
                .retention_bytes
                .is_some_and(|limit| total.saturating_sub(size) >= limit);
            let by_time = inner.config.retention_ms.is_some_and(|ms| {
                let newest = match segment.max_timestamp() {
                    ts if ts >= 0 => ts,
                    _ => file_mtime_ms(segment.log_path()),
                };
                newest < now_ms.saturating_sub(i64::try_from(ms).unwrap_or(i64::MAX))
            });
            if !(by_size || by_time) {
                break;
            }
            total -= size;
            doomed.push(segment.clone());
        }
        let outcome = self.delete_oldest(&segments, doomed, "retention deleted segments")?;
        inner
            .metrics
            .retention_deleted_segments
            .increment(outcome.segments_deleted as u64);
        Ok(outcome)
    }

    /// Deletes the oldest segments whose every record lies below `offset`
    /// (`next_offset <= offset`), never the active one: the log then starts at the
    /// first segment kept, which holds `offset` or starts at or below it. No record
    /// at or above `offset` is ever dropped. Used by the key-value store once a
    /// snapshot covers everything below `offset`; reads below the new start get
    /// `OffsetOutOfRange`, slices already handed out stay readable.
    ///
    /// The deletions are not fsynced into the directory: after a crash a deleted
    /// segment may come back, which only makes the log start earlier.
    ///
    /// # Errors
    /// `Closed`; I/O errors deleting files (segments already removed from the map
    /// stay removed).
    pub fn delete_segments_before(&self, offset: Offset) -> Result<RetentionOutcome> {
        let inner = &self.inner;
        let _w = lock(&inner.writer);
        // As in apply_retention: a closed handle may be stale.
        if inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed(inner.name.to_string()));
        }
        let segments = self.segments();
        let doomed: Vec<Arc<Segment>> = segments
            .iter()
            .take(segments.len().saturating_sub(1))
            .take_while(|s| s.next_offset() <= offset)
            .cloned()
            .collect();
        self.delete_oldest(&segments, doomed, "deleted segments below offset")
    }

    /// Removes `doomed` (the oldest segments of `segments`, in order, never the
    /// active one) from the log and deletes their files. The caller holds `writer`.
    fn delete_oldest(
        &self,
        segments: &[Arc<Segment>],
        doomed: Vec<Arc<Segment>>,
        what: &'static str,
    ) -> Result<RetentionOutcome> {
        let inner = &self.inner;
        let mut outcome = RetentionOutcome {
            log_start_offset: self.log_start_offset(),
            ..RetentionOutcome::default()
        };
        let Some(last) = doomed.last() else {
            return Ok(outcome);
        };
        let new_start = segments
            .iter()
            .find(|s| s.base_offset() > last.base_offset())
            .map_or(self.log_end_offset(), |s| s.base_offset());
        // Readers check the start before touching segments: move it first.
        inner.log_start_offset.store(new_start.0, Ordering::Release);
        {
            let mut map = inner
                .segments
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for segment in &doomed {
                map.remove(&segment.base_offset());
            }
        }
        for segment in &doomed {
            segment.delete_files(&inner.dir)?;
            outcome.segments_deleted += 1;
            outcome.bytes_deleted += u64::from(segment.size());
            inner.stats.segments_deleted.fetch_add(1, Ordering::Relaxed);
        }
        outcome.log_start_offset = new_start;
        tracing::info!(partition = %inner.name, segments = outcome.segments_deleted,
            bytes = outcome.bytes_deleted, log_start_offset = %new_start, "{what}");
        Ok(outcome)
    }

    /// Flushes everything, trims the active indexes and writes a clean recovery
    /// point, so the next open scans nothing. Later appends get `Closed`; reads
    /// keep working. Idempotent.
    ///
    /// # Errors
    /// I/O errors; the log is then recovered on the next open, as after a crash.
    pub fn close(&self) -> Result<()> {
        let inner = &self.inner;
        let mut w = lock(&inner.writer);
        inner.closed.store(true, Ordering::Release);
        if inner.closed_cleanly.load(Ordering::Acquire) {
            return Ok(());
        }
        for handle in w.roll_flushes.drain(..) {
            let _ = handle.join();
        }
        let mut cp = lock(&inner.checkpoint);
        // Let a running group commit finish; none starts after: appends are closed
        // and anything they wrote is flushed below.
        let mut syncing = lock(&inner.syncing);
        while *syncing {
            syncing = inner
                .synced
                .wait(syncing)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        // After a failed fsync a later one may "succeed" without the lost pages:
        // leave the checkpoint unclean so the next open CRC-checks the tail.
        self.check_not_failed()?;
        let log_end = self.log_end_offset();
        w.active.seal()?;
        for segment in self.segments() {
            if segment.next_offset() > *cp || Arc::ptr_eq(&segment, &w.active) {
                self.fenced_sync(&segment, true)?;
            }
        }
        Checkpoint {
            recovery_offset: log_end,
            clean: true,
        }
        .write(&inner.dir)?;
        *cp = log_end;
        self.advance_durable(log_end)?;
        inner.closed_cleanly.store(true, Ordering::Release);
        Ok(())
    }

    /// Base offset of the last segment starting at or below `offset`; `None` when
    /// `offset` is below every segment (retention raced the caller).
    fn segment_key_for(&self, offset: Offset) -> Option<Offset> {
        let map = self
            .inner
            .segments
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.range(..=offset).next_back().map(|(k, _)| *k)
    }

    /// The first segment with base offset `>= key`.
    fn segment_at_or_after(&self, key: Offset) -> Option<(Offset, Arc<Segment>)> {
        self.inner
            .segments
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .range(key..)
            .next()
            .map(|(k, s)| (*k, s.clone()))
    }
}

/// Checks an incoming batch before it may touch the log.
fn validate_batch(batch: &[u8], limit: u32) -> Result<BatchHeader> {
    let header = BatchHeader::parse(batch)?;
    if header.total_len() != batch.len() {
        return Err(Error::InvalidBatch(warren_protocol::Error::InvalidField {
            field: "batch_length",
            value: i64::from(header.batch_length),
        }));
    }
    if header.records_count == 0 || header.last_offset_delta != header.records_count - 1 {
        return Err(Error::InvalidBatch(warren_protocol::Error::InvalidField {
            field: "last_offset_delta",
            value: i64::from(header.last_offset_delta),
        }));
    }
    if batch.len() > limit as usize {
        return Err(Error::BatchTooLarge {
            bytes: batch.len(),
            limit,
        });
    }
    let got = record_batch::compute_crc(batch);
    if got != header.crc {
        return Err(Error::InvalidBatch(
            warren_protocol::Error::ChecksumMismatch {
                expected: header.crc,
                got,
            },
        ));
    }
    Ok(header)
}

fn file_mtime_ms(path: &Path) -> i64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64)
}

/// Lists the base offsets of the segments in `dir`, removing leftovers that are
/// safe to remove (temp files, indexes without a log) and logging anything else
/// that does not belong.
fn list_segments(dir: &Path, name: &str) -> Result<Vec<Offset>> {
    let mut logs = Vec::new();
    let mut indexes = Vec::new();
    for entry in std::fs::read_dir(dir).ctx("list partition directory", dir)? {
        let entry = entry.ctx("list partition directory", dir)?;
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            tracing::warn!(partition = name, path = %entry.path().display(), "ignoring stray file with a non-UTF-8 name");
            continue;
        };
        match parse_segment_file(file_name) {
            Some((base, SegmentFile::Log)) => logs.push(base),
            Some((base, _)) => indexes.push((base, entry.path())),
            None if file_name == RECOVERY_POINT_FILE => {}
            None if file_name.ends_with(&format!(".{TMP_SUFFIX}")) => {
                tracing::info!(partition = name, path = %entry.path().display(), "removing leftover temp file");
                let path = entry.path();
                std::fs::remove_file(&path).ctx("remove temp file", &path)?;
            }
            None => {
                tracing::warn!(partition = name, path = %entry.path().display(), "ignoring stray file in partition directory");
            }
        }
    }
    logs.sort();
    for (base, path) in indexes {
        if logs.binary_search(&base).is_err() {
            tracing::warn!(partition = name, path = %path.display(), "removing index without a segment");
            std::fs::remove_file(&path).ctx("remove orphan index", &path)?;
        }
    }
    Ok(logs)
}

/// A failed fsync is never acknowledged: the fault-injection seam fails the
/// n-th segment fsync (without timing), and the log must stay fenced.
#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests")]
mod fsync_failure_tests {
    use std::time::Duration;

    use bytes::Bytes;
    use warren_protocol::{Compression, RecordBatchBuilder};

    use super::*;
    use crate::fault_injection::SyncFault;

    /// A batch of `records` records of `value_bytes` bytes each.
    fn batch(records: usize, value_bytes: usize) -> Bytes {
        let mut b = RecordBatchBuilder::new(Compression::None);
        let value = vec![7u8; value_bytes];
        for i in 0..records {
            b.append(1_700_000_000_000 + i as i64, None, Some(&value), &[]);
        }
        b.build().unwrap()
    }

    fn config(durability: Durability, segment_bytes: u32) -> LogConfig {
        LogConfig {
            segment_bytes,
            index_interval_bytes: 256,
            max_index_bytes: 4096,
            durability,
            retention_ms: None,
            ..LogConfig::default()
        }
    }

    fn recovery_point(dir: &Path) -> Offset {
        Checkpoint::read(dir).unwrap().unwrap().recovery_offset
    }

    /// Joins the roll-flush threads without closing the log.
    fn join_roll_flushes(log: &PartitionLog) {
        let handles: Vec<JoinHandle<()>> = lock(&log.inner.writer).roll_flushes.drain(..).collect();
        for h in handles {
            h.join().unwrap();
        }
    }

    fn is_failed<T: std::fmt::Debug>(r: Result<T>) -> bool {
        matches!(r, Err(Error::Failed(_)))
    }

    #[test]
    fn a_failed_group_commit_fences_the_log_until_it_is_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let fault = SyncFault::fail_nth(dir.path(), 2).install();
        let log =
            PartitionLog::open(dir.path(), "t-0", config(Durability::Fsync, 1 << 20)).unwrap();
        let first = log.append_durable(&batch(3, 10)).unwrap();
        assert_eq!(log.durable_offset(), first.log_end_offset);

        let second = log.append(&batch(2, 10)).unwrap();
        assert!(
            is_failed(log.sync_to(second.log_end_offset)),
            "the failing fsync"
        );
        assert!(fault.fired());
        assert!(log.has_failed());
        // The next fsync of the file would succeed: it must not be asked.
        assert!(
            is_failed(log.sync_to(second.log_end_offset)),
            "a later waiter"
        );
        assert_eq!(log.durable_offset(), first.log_end_offset);
        assert_eq!(log.high_watermark(), first.log_end_offset);
        // What was durable before the failure still is.
        assert!(log.sync_to(first.log_end_offset).is_ok());
        assert!(is_failed(log.append(&batch(1, 10))), "appends are refused");
        assert!(recovery_point(dir.path()) <= first.log_end_offset);
        assert!(is_failed(log.close()), "no clean close after a failure");
        assert!(!Checkpoint::read(dir.path()).unwrap().unwrap().clean);
        assert_eq!(fault.syncs(), 2, "no fsync ran after the failed one");
        drop(log);
        drop(fault);

        let log =
            PartitionLog::open(dir.path(), "t-0", config(Durability::Fsync, 1 << 20)).unwrap();
        assert!(
            log.recovery_report().segments_recovered > 0,
            "the tail is CRC-checked"
        );
        let batches = log.read_batches(Offset(0), 1 << 20).unwrap();
        assert_eq!(
            batches.first().map(|b| b.header().records_count),
            Some(3),
            "the synced batch is kept"
        );
        let third = log.append_durable(&batch(1, 10)).unwrap();
        assert_eq!(log.durable_offset(), third.log_end_offset);
        log.close().unwrap();
    }

    #[test]
    fn every_waiter_behind_a_failing_fsync_gets_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let fault = SyncFault::fail_nth(dir.path(), 1).held().install();
        let log =
            PartitionLog::open(dir.path(), "t-0", config(Durability::Fsync, 1 << 20)).unwrap();
        let first = log.append(&batch(1, 10)).unwrap();
        let leader = {
            let log = log.clone();
            std::thread::spawn(move || log.sync_to(first.log_end_offset))
        };
        assert!(
            fault.wait_reached(Duration::from_secs(30)),
            "the leader's fsync started"
        );
        // The leader is inside its fsync (`syncing` is set): these queue behind it.
        let waiters: Vec<_> = (0..8)
            .map(|_| {
                let log = log.clone();
                std::thread::spawn(move || {
                    let info = log.append(&batch(1, 10))?;
                    log.sync_to(info.log_end_offset)
                })
            })
            .collect();
        // Not needed for the outcome, only to let most waiters reach the condvar.
        std::thread::sleep(Duration::from_millis(100));
        fault.release();
        assert!(is_failed(leader.join().unwrap()), "the leader");
        for w in waiters {
            assert!(is_failed(w.join().unwrap()), "every waiter");
        }
        assert_eq!(log.durable_offset(), Offset(0));
        assert_eq!(log.high_watermark(), Offset(0));
        assert!(
            is_failed(log.sync_to(log.log_end_offset())),
            "and every later one"
        );
        assert_eq!(fault.syncs(), 1);
    }

    /// The reported bug: a group commit's fdatasync fails, then the flush of
    /// the rolled segment (same file) succeeds, as Linux lets it, and used to
    /// move the durable offset and the recovery point past the lost pages.
    #[test]
    fn a_roll_flush_after_a_failed_group_commit_does_not_move_the_durable_offset() {
        let dir = tempfile::tempdir().unwrap();
        let fault = SyncFault::fail_nth(dir.path(), 1).install();
        let log = PartitionLog::open(dir.path(), "t-0", config(Durability::Fsync, 1024)).unwrap();
        let first = log.append(&batch(1, 600)).unwrap();
        // Keep the roll flush from running until the group commit has failed.
        let checkpoint = lock(&log.inner.checkpoint);
        let second = log.append(&batch(1, 600)).unwrap();
        assert_eq!(second.segment_base_offset, first.log_end_offset, "rolled");
        assert!(is_failed(log.sync_to(second.log_end_offset)));
        drop(checkpoint);
        join_roll_flushes(&log);

        assert_eq!(log.durable_offset(), Offset(0));
        assert_eq!(log.high_watermark(), Offset(0));
        assert_eq!(recovery_point(dir.path()), Offset(0));
        assert!(
            is_failed(log.sync_to(first.log_end_offset)),
            "an acks=-1 producer of the first batch must not get OK"
        );
        assert_eq!(fault.syncs(), 1, "the roll flush did not fsync");
    }

    #[test]
    fn a_failed_roll_flush_fences_the_log_and_reopen_keeps_every_batch() {
        let dir = tempfile::tempdir().unwrap();
        let fault = SyncFault::fail_nth(dir.path(), 1).install();
        let log = PartitionLog::open(dir.path(), "t-0", config(Durability::None, 1024)).unwrap();
        let first = log.append(&batch(1, 600)).unwrap();
        let second = log.append(&batch(1, 600)).unwrap();
        assert_eq!(second.segment_base_offset, first.log_end_offset, "rolled");
        join_roll_flushes(&log);
        assert!(fault.fired());
        assert!(log.has_failed());
        assert!(is_failed(log.append(&batch(1, 10))));
        assert_eq!(recovery_point(dir.path()), Offset(0));
        assert!(is_failed(log.close()));
        drop(log);
        drop(fault);

        let log = PartitionLog::open(dir.path(), "t-0", config(Durability::None, 1024)).unwrap();
        assert_eq!(log.log_end_offset(), second.log_end_offset);
        assert_eq!(log.read_batches(Offset(0), 1 << 20).unwrap().len(), 2);
        log.append(&batch(1, 10)).unwrap();
        log.close().unwrap();
    }

    #[test]
    fn a_failed_interval_flush_fences_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let fault = SyncFault::fail_nth(dir.path(), 1).install();
        let log = PartitionLog::open(
            dir.path(),
            "t-0",
            config(Durability::Interval { ms: 1 }, 1 << 20),
        )
        .unwrap();
        log.append(&batch(1, 10)).unwrap();
        // The interval is 1 ms: a few tries at most.
        let mut outcome = Ok(false);
        for _ in 0..1000 {
            outcome = log.sync_if_due();
            if !matches!(outcome, Ok(false)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(is_failed(outcome));
        assert_eq!(log.durable_offset(), Offset(0));
        assert!(is_failed(log.append(&batch(1, 10))));
        assert!(matches!(log.sync_if_due(), Ok(false)), "quiet once failed");
        assert_eq!(fault.syncs(), 1);
    }
}
