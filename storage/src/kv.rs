//! A durable key-value store on a [`PartitionLog`]: the broker keeps committed
//! consumer-group offsets (and later share-group state and bindings) in it.
//!
//! - **Writes**: [`KvStore::apply`] turns a list of puts and deletes into one
//!   RecordBatch (key = the map key, value = the new value, a null value = a
//!   delete), appends it to the store's own log, then applies it to the in-memory
//!   map. One apply is one batch, so it is atomic: replay applies all of it or
//!   none. [`KvStore::sync_to`] makes it durable with the log's group commit
//!   (concurrent callers share one `fdatasync`); [`KvStore::apply_durable`] does both.
//! - **Reads** ([`get`](KvStore::get), [`scan_prefix`](KvStore::scan_prefix)) only
//!   touch the map, a `BTreeMap` sorted by key so prefix scans are range scans.
//!   A read may see an apply that is not durable yet (as Kafka's group
//!   coordinator serves its cache); a caller that must only act on durable state
//!   waits on `sync_to` first.
//! - **Compaction** ([`compact`](KvStore::compact)) writes the whole map as of log
//!   offset N to a snapshot file, then deletes older snapshots and every log
//!   segment lying wholly below N. It runs on a background thread once the bytes
//!   appended since the last snapshot exceed [`KvConfig::compact_after_bytes`] or
//!   4 times the last snapshot's size, whichever is larger (so the log never holds
//!   much more than the live data), and from [`close`](KvStore::close).
//! - **Open** loads the newest snapshot whose checksum holds and replays the log
//!   from its offset: time proportional to live keys plus the records appended
//!   since the last snapshot (at most about one compaction threshold), not to
//!   every write ever made.
//!
//! # Files
//! ```text
//! <dir>/
//!   .lock                               flock(2)-ed while a KvStore has the dir open
//!   snapshot-00000000000000368769.kv    the map as of log offset 368769
//!   snapshot-00000000000000368769.kv.tmp  a snapshot being written (removed at open)
//!   log/                                the store's PartitionLog (segments, indexes,
//!                                       recovery-point), durability fsync
//! ```
//!
//! Normally one snapshot exists; a crash in the middle of a compaction may leave
//! an older one beside it, which the next compaction removes.
//!
//! # Snapshot format
//! ```text
//! offset  size  field
//! 0       4     magic            "WKVS"
//! 4       1     version u8       = 1
//! 5       8     snapshot_offset  u64  the map holds every batch below this log
//!                                       offset and nothing above; equals the
//!                                       offset in the file name
//! 13      8     entry_count      u64
//! 21      ...   entry_count entries, keys strictly ascending (bytewise):
//!                 key_len u32 | key | value_len u32 | value
//! end-4   4     crc32c u32       CRC-32C of every byte before it (0..end-4)
//! ```
//! All integers big-endian. The whole file is read and its CRC checked before
//! any entry is parsed; a bad magic, version, checksum, length or order is a
//! [`Error::CorruptFile`] naming the file and the byte position.
//!
//! # Crash safety
//! The store is crash-safe if a kill -9 (or power loss) at any instant loses no
//! apply whose `sync_to` returned and never half-applies one:
//! 1. An apply is one batch. Log recovery CRC-checks the unflushed tail and cuts
//!    it at the first torn or corrupt batch, so a batch is replayed whole or not
//!    at all; `sync_to` returns only after the `fdatasync` covering the batch.
//! 2. A snapshot as of N is captured under the writer lock, so the map is exactly
//!    the fold of the batches below N. Before it is written the log is synced up
//!    to N, so after any crash the log still reaches N and new batches never reuse
//!    an offset the snapshot already covers.
//! 3. The snapshot is written to a temp file, fsynced, renamed into place and the
//!    directory fsynced: a crash leaves the old snapshot or the whole new one.
//! 4. Only then are older snapshots deleted, and then only segments wholly below
//!    N ([`PartitionLog::delete_segments_before`], never the active one), so the
//!    log still holds every record from N on. A crash that undoes a deletion only
//!    leaves an extra file.
//! 5. Open takes the newest snapshot that checks and replays from its offset,
//!    checking that the batches are contiguous from there to the log end. A
//!    corrupt newest snapshot is reported (path and byte position); an older valid
//!    one (or the empty map at offset 0) is used instead only if the log still
//!    holds every record since it, else open fails naming the corrupt file.
//!
//! # Thread safety
//! `KvStore` is `Send + Sync` and cheap to clone (an `Arc`). Locks, in the order
//! they may nest:
//! - `compact_lock` (Mutex): one compaction at a time, held while it writes.
//! - `writer` (Mutex): serializes appends with their map updates, so the map
//!   changes in log order; a compaction holds it only to clone the map.
//! - `map` (RwLock): readers share it; an apply holds it for writing only while
//!   it updates the map, never across file I/O.
//! - `compaction` (Mutex): the background compaction thread's handle.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use warren_protocol::{Compression, RecordBatchBuilder};

use crate::checkpoint::sync_dir;
use crate::config::{Durability, LogConfig};
use crate::error::{Error, IoContext, Result};
use crate::file_names::{
    KV_LOCK_FILE, KV_LOG_DIR, TMP_SUFFIX, kv_snapshot_file, parse_kv_snapshot_file, tmp_path,
};
use crate::log::{PartitionLog, RecoveryReport};
use crate::metrics::StorageMetrics;
use crate::offset::Offset;

/// Default [`KvConfig::compact_after_bytes`]: 64 MiB.
pub const DEFAULT_COMPACT_AFTER_BYTES: u64 = 64 << 20;
/// Default [`KvConfig::segment_bytes`]: 16 MiB.
pub const DEFAULT_KV_SEGMENT_BYTES: u32 = 16 << 20;
/// Compaction also waits for this many times the last snapshot's size, so a
/// store with many live keys does not rewrite them all after a few updates. Not
/// configurable.
pub const SNAPSHOT_SIZE_FACTOR: u64 = 4;

/// Bytes read from the log per call while replaying at open.
const REPLAY_READ_BYTES: u32 = 1 << 20;
/// Buffer of the snapshot writer.
const SNAPSHOT_WRITE_BUFFER: usize = 1 << 20;

const SNAPSHOT_MAGIC: &[u8; 4] = b"WKVS";
const SNAPSHOT_VERSION: u8 = 1;
/// magic + version + snapshot_offset + entry_count.
const SNAPSHOT_HEADER_LEN: usize = 21;
/// The trailing CRC-32C.
const SNAPSHOT_TRAILER_LEN: usize = 4;
/// The smallest entry: two empty length-prefixed fields.
const MIN_ENTRY_LEN: usize = 8;

/// Configuration of a [`KvStore`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KvConfig {
    /// Compact once this many bytes of batches were appended since the last
    /// snapshot, or [`SNAPSHOT_SIZE_FACTOR`] times the last snapshot's size if
    /// that is larger. Bounds the replay at open. Default 64 MiB; at least 1.
    pub compact_after_bytes: u64,
    /// Segment size of the store's log: compaction deletes whole segments, so the
    /// log keeps at most about this much below the snapshot. Also the largest
    /// single apply. Default 16 MiB; 1 KiB..=2 GiB.
    pub segment_bytes: u32,
}

impl Default for KvConfig {
    fn default() -> Self {
        KvConfig {
            compact_after_bytes: DEFAULT_COMPACT_AFTER_BYTES,
            segment_bytes: DEFAULT_KV_SEGMENT_BYTES,
        }
    }
}

impl KvConfig {
    /// Checks value ranges.
    ///
    /// # Errors
    /// [`Error::Config`] naming the offending field.
    pub fn validate(&self) -> Result<()> {
        if self.compact_after_bytes == 0 {
            return Err(Error::Config(
                "compact_after_bytes must be at least 1".into(),
            ));
        }
        self.log_config().validate()
    }

    /// The config of the store's log: `fsync` durability (group commit through
    /// `sync_to`), no retention (compaction deletes segments), and batches up to
    /// a whole segment.
    fn log_config(&self) -> LogConfig {
        let index_interval_bytes = 4096u32.min(self.segment_bytes);
        // One index entry per interval at most; no need for the 10 MiB default.
        let entries = self.segment_bytes / index_interval_bytes.max(1) + 2;
        LogConfig {
            segment_bytes: self.segment_bytes,
            index_interval_bytes,
            max_index_bytes: entries.saturating_mul(8).max(96),
            durability: Durability::Fsync,
            retention_bytes: None,
            retention_ms: None,
            max_message_bytes: self.segment_bytes,
            ..LogConfig::default()
        }
    }
}

/// One change in an [`apply`](KvStore::apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvOp<'a> {
    /// Sets `key` to `value`.
    Put(&'a [u8], &'a [u8]),
    /// Removes `key` (a no-op if absent; still logged).
    Delete(&'a [u8]),
}

impl KvOp<'_> {
    /// The key the op changes.
    pub fn key(&self) -> &[u8] {
        match self {
            KvOp::Put(key, _) | KvOp::Delete(key) => key,
        }
    }

    /// Bytes of key and value.
    fn payload_len(&self) -> usize {
        match self {
            KvOp::Put(key, value) => key.len().saturating_add(value.len()),
            KvOp::Delete(key) => key.len(),
        }
    }
}

/// What [`KvStore::open`] loaded and replayed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvOpenReport {
    /// The snapshot loaded; `None` when the map started empty at offset 0.
    pub snapshot: Option<PathBuf>,
    /// The offset replay started from (the snapshot's).
    pub snapshot_offset: Offset,
    /// Entries in the loaded snapshot.
    pub snapshot_entries: usize,
    /// Batches replayed from the log (one per apply since the snapshot).
    pub batches_replayed: u64,
    /// Records replayed from the log (one per op since the snapshot).
    pub records_replayed: u64,
    /// Bytes of batches replayed.
    pub bytes_replayed: u64,
    /// Newer snapshots that failed their checks and were passed over, newest first.
    pub corrupt_snapshots: Vec<PathBuf>,
    /// What the log's own open found and repaired.
    pub log_recovery: RecoveryReport,
}

/// Counters and positions, for metrics and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvStats {
    /// Keys in the map.
    pub live_keys: usize,
    /// Offset of the newest snapshot (0 before the first).
    pub snapshot_offset: Offset,
    /// Size of the newest snapshot file.
    pub snapshot_bytes: u64,
    /// Bytes of batches appended since the newest snapshot.
    pub bytes_since_snapshot: u64,
    /// Snapshots written by this handle.
    pub compactions: u64,
    /// Background compactions that failed (each is logged).
    pub compaction_failures: u64,
    /// First offset still in the log.
    pub log_start_offset: Offset,
    /// Offset of the next apply.
    pub log_end_offset: Offset,
    /// Every apply below this offset is on disk.
    pub durable_offset: Offset,
    /// Bytes of batches in the log's segments.
    pub log_bytes: u64,
    /// Segments in the log.
    pub log_segments: usize,
}

struct Inner {
    dir: PathBuf,
    config: KvConfig,
    log: PartitionLog,
    map: RwLock<BTreeMap<Bytes, Bytes>>,
    /// Serializes appends with their map updates; see the module docs.
    writer: Mutex<()>,
    /// Held for a whole compaction.
    compact_lock: Mutex<()>,
    /// The background compaction thread, if one was started.
    compaction: Mutex<Option<JoinHandle<()>>>,
    compaction_running: AtomicBool,
    snapshot_offset: AtomicU64,
    snapshot_bytes: AtomicU64,
    bytes_since_snapshot: AtomicU64,
    /// Added to the compaction threshold after a failed background compaction,
    /// so it is retried after another threshold's worth of appends, not on every
    /// apply.
    compaction_backoff_bytes: AtomicU64,
    compactions: AtomicU64,
    compaction_failures: AtomicU64,
    closed: AtomicBool,
    closed_cleanly: AtomicBool,
    open_report: KvOpenReport,
    /// flock(2)-ed for the store's lifetime.
    _lock: File,
}

/// A durable key-value store. See the module docs.
#[derive(Clone)]
pub struct KvStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for KvStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvStore")
            .field("dir", &self.inner.dir)
            .field("live_keys", &self.len())
            .field("log_end_offset", &self.inner.log.log_end_offset())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl KvStore {
    /// Opens the store in `dir` (creating it if needed): locks the directory,
    /// opens (and if needed recovers) the log, loads the newest valid snapshot
    /// and replays the log from its offset. See the module docs for the rules
    /// when a snapshot is corrupt.
    ///
    /// # Errors
    /// [`Error::Config`]; [`Error::DataDirLocked`] if another store has `dir`
    /// open; I/O errors; [`Error::CorruptFile`] naming a corrupt snapshot that no
    /// older one can replace, or the log directory when the log misses records a
    /// snapshot needs; [`Error::CorruptLog`] from the log.
    pub fn open(dir: &Path, config: KvConfig) -> Result<KvStore> {
        KvStore::open_with_metrics(dir, config, StorageMetrics::default())
    }

    /// [`open`](Self::open), with the store's log recording its fsyncs and
    /// rolls into `metrics` (compaction's segment deletions are not counted
    /// as retention).
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_with_metrics(
        dir: &Path,
        config: KvConfig,
        metrics: StorageMetrics,
    ) -> Result<KvStore> {
        config.validate()?;
        std::fs::create_dir_all(dir).ctx("create kv directory", dir)?;
        let lock_file = lock_dir(dir)?;
        let snapshots = list_snapshots(dir)?;
        let log_dir = dir.join(KV_LOG_DIR);
        let name = format!("kv {}", dir.display());
        let log = PartitionLog::open_with_metrics(&log_dir, &name, config.log_config(), metrics)?;
        let mut report = KvOpenReport {
            log_recovery: log.recovery_report().clone(),
            ..KvOpenReport::default()
        };
        let base = choose_snapshot(dir, &log_dir, &snapshots, &log, &mut report)?;
        let snapshot_bytes = match &base.path {
            Some(path) => std::fs::metadata(path).ctx("stat snapshot", path)?.len(),
            None => 0,
        };
        let mut map = base.map;
        replay(&log, &log_dir, base.offset, &mut map, &mut report)?;
        tracing::info!(
            dir = %dir.display(),
            snapshot_offset = %report.snapshot_offset,
            snapshot_entries = report.snapshot_entries,
            records_replayed = report.records_replayed,
            live_keys = map.len(),
            log_end_offset = %log.log_end_offset(),
            "kv store opened"
        );
        Ok(KvStore {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                config,
                log,
                map: RwLock::new(map),
                writer: Mutex::new(()),
                compact_lock: Mutex::new(()),
                compaction: Mutex::new(None),
                compaction_running: AtomicBool::new(false),
                snapshot_offset: AtomicU64::new(base.offset.0),
                snapshot_bytes: AtomicU64::new(snapshot_bytes),
                bytes_since_snapshot: AtomicU64::new(report.bytes_replayed),
                compaction_backoff_bytes: AtomicU64::new(0),
                compactions: AtomicU64::new(0),
                compaction_failures: AtomicU64::new(0),
                closed: AtomicBool::new(false),
                closed_cleanly: AtomicBool::new(false),
                open_report: report,
                _lock: lock_file,
            }),
        })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The config the store was opened with.
    pub fn config(&self) -> &KvConfig {
        &self.inner.config
    }

    /// The store's log (for inspection; writing to it directly breaks the store).
    pub fn log(&self) -> &PartitionLog {
        &self.inner.log
    }

    /// Appends `ops` as one batch and applies them, in order, to the map. Not yet
    /// durable: returns the offset to pass to [`sync_to`](Self::sync_to) (the log
    /// end after this batch). Readers see the change at once. An empty `ops`
    /// writes nothing and returns the current log end.
    ///
    /// May start a background compaction (see the module docs).
    ///
    /// # Errors
    /// [`Error::BatchTooLarge`] when the ops do not fit one segment (nothing
    /// written); [`Error::Closed`]; the log's append errors (`DiskFull` is
    /// retriable; the map is then unchanged).
    pub fn apply(&self, ops: &[KvOp<'_>]) -> Result<Offset> {
        let inner = &self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed(inner.log.name().to_string()));
        }
        if ops.is_empty() {
            return Ok(inner.log.log_end_offset());
        }
        let batch = encode_batch(ops, inner.config.segment_bytes)?;
        let end = {
            let _w = lock(&inner.writer);
            // Checked again under the lock: close sets it under the lock too, so
            // nothing is appended after close's final compaction captured the map.
            if inner.closed.load(Ordering::Acquire) {
                return Err(Error::Closed(inner.log.name().to_string()));
            }
            let info = inner.log.append(&batch)?;
            let mut map = write(&inner.map);
            for op in ops {
                match op {
                    KvOp::Put(key, value) => {
                        let value = Bytes::copy_from_slice(value);
                        // Updates (the common case: an offset commit) keep the
                        // existing key and allocate only the value.
                        if let Some(slot) = map.get_mut(*key) {
                            *slot = value;
                        } else {
                            map.insert(Bytes::copy_from_slice(key), value);
                        }
                    }
                    KvOp::Delete(key) => {
                        map.remove(*key);
                    }
                }
            }
            // Counted under the writer lock, as compaction reads it, so a snapshot
            // never subtracts bytes it does not cover.
            inner
                .bytes_since_snapshot
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            info.log_end_offset
        };
        self.maybe_compact_in_background();
        Ok(end)
    }

    /// Blocks until every apply below `offset` is on disk. Group commit:
    /// concurrent callers share one `fdatasync`. From async code, call it on a
    /// blocking thread.
    ///
    /// # Errors
    /// I/O errors from `fdatasync`; after one the log refuses writes until the
    /// store is reopened ([`Error::Failed`]).
    pub fn sync_to(&self, offset: Offset) -> Result<()> {
        self.inner.log.sync_to(offset)
    }

    /// [`apply`](Self::apply), then [`sync_to`](Self::sync_to) its offset: when it
    /// returns `Ok`, the change survives a crash.
    ///
    /// # Errors
    /// As `apply` and `sync_to`.
    pub fn apply_durable(&self, ops: &[KvOp<'_>]) -> Result<()> {
        let offset = self.apply(ops)?;
        self.sync_to(offset)
    }

    /// The value of `key`.
    pub fn get(&self, key: &[u8]) -> Option<Bytes> {
        read(&self.inner.map).get(key).cloned()
    }

    /// Every `(key, value)` whose key starts with `prefix`, in key order.
    pub fn scan_prefix(&self, prefix: &[u8]) -> Vec<(Bytes, Bytes)> {
        read(&self.inner.map)
            .range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        read(&self.inner.map).len()
    }

    /// True when the store holds no key.
    pub fn is_empty(&self) -> bool {
        read(&self.inner.map).is_empty()
    }

    /// What the open loaded and replayed.
    pub fn open_report(&self) -> &KvOpenReport {
        &self.inner.open_report
    }

    /// Counters and positions.
    pub fn stats(&self) -> KvStats {
        let inner = &self.inner;
        let segments = inner.log.segments();
        KvStats {
            live_keys: self.len(),
            snapshot_offset: Offset(inner.snapshot_offset.load(Ordering::Acquire)),
            snapshot_bytes: inner.snapshot_bytes.load(Ordering::Acquire),
            bytes_since_snapshot: inner.bytes_since_snapshot.load(Ordering::Relaxed),
            compactions: inner.compactions.load(Ordering::Relaxed),
            compaction_failures: inner.compaction_failures.load(Ordering::Relaxed),
            log_start_offset: inner.log.log_start_offset(),
            log_end_offset: inner.log.log_end_offset(),
            durable_offset: inner.log.durable_offset(),
            log_bytes: segments.iter().map(|s| u64::from(s.size())).sum(),
            log_segments: segments.len(),
        }
    }

    /// Writes a snapshot of the map as of the log end (if anything was applied
    /// since the last one), then deletes older snapshots and the log segments it
    /// covers. Applies wait only while the map is cloned; reads never wait.
    ///
    /// # Errors
    /// [`Error::Closed`]; I/O errors (`DiskFull` included). A failure before the
    /// snapshot's rename leaves the previous snapshot and the whole log in place;
    /// one after it leaves only extra files, removed by the next compaction.
    pub fn compact(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed(self.inner.log.name().to_string()));
        }
        self.compact_now().map(|_| ())
    }

    /// Stops applies, waits for a running background compaction, compacts (so
    /// the next open replays nothing) and closes the log cleanly. Later applies
    /// get [`Error::Closed`]; reads keep working. Idempotent.
    ///
    /// # Errors
    /// I/O errors from the compaction or the log's close; the log is closed in
    /// any case, and the next open replays from the previous snapshot.
    pub fn close(&self) -> Result<()> {
        let inner = &self.inner;
        {
            let _w = lock(&inner.writer);
            inner.closed.store(true, Ordering::Release);
        }
        if inner.closed_cleanly.load(Ordering::Acquire) {
            return Ok(());
        }
        let running = lock(&inner.compaction).take();
        if let Some(handle) = running {
            let _ = handle.join();
        }
        let compacted = self.compact_now();
        if let Err(e) = &compacted {
            tracing::error!(dir = %inner.dir.display(), error = %e, "compaction at close failed");
        }
        let closed = inner.log.close();
        compacted.and(closed)?;
        inner.closed_cleanly.store(true, Ordering::Release);
        Ok(())
    }

    /// Starts a background compaction if enough was appended since the last
    /// snapshot and none is running.
    fn maybe_compact_in_background(&self) {
        let inner = &self.inner;
        let threshold = inner
            .config
            .compact_after_bytes
            .max(
                inner
                    .snapshot_bytes
                    .load(Ordering::Acquire)
                    .saturating_mul(SNAPSHOT_SIZE_FACTOR),
            )
            .saturating_add(inner.compaction_backoff_bytes.load(Ordering::Relaxed));
        if inner.bytes_since_snapshot.load(Ordering::Relaxed) < threshold
            || inner.compaction_running.load(Ordering::Acquire)
        {
            return;
        }
        let mut handle = lock(&inner.compaction);
        // Under the handle's lock, so close (which sets `closed` first, then takes
        // the handle) either sees this thread's handle or stops it being started.
        if inner.closed.load(Ordering::Acquire) || inner.compaction_running.load(Ordering::Acquire)
        {
            return;
        }
        if let Some(finished) = handle.take() {
            let _ = finished.join();
        }
        inner.compaction_running.store(true, Ordering::Release);
        // A weak handle: a store dropped without close (a crash in tests) must
        // not have a thread writing into its directory afterwards.
        let weak = Arc::downgrade(inner);
        let spawned = std::thread::Builder::new()
            .name("warren-kv-compact".into())
            .spawn(move || {
                let Some(inner) = weak.upgrade() else { return };
                let store = KvStore { inner };
                let inner = &store.inner;
                match store.compact_now() {
                    Ok(_) => inner.compaction_backoff_bytes.store(0, Ordering::Relaxed),
                    Err(e) => {
                        inner.compaction_failures.fetch_add(1, Ordering::Relaxed);
                        inner.compaction_backoff_bytes.store(
                            inner.bytes_since_snapshot.load(Ordering::Relaxed),
                            Ordering::Relaxed,
                        );
                        tracing::error!(dir = %inner.dir.display(), error = %e,
                            "background compaction failed; retrying after more appends");
                    }
                }
                inner.compaction_running.store(false, Ordering::Release);
            });
        match spawned {
            Ok(h) => *handle = Some(h),
            Err(e) => {
                inner.compaction_running.store(false, Ordering::Release);
                tracing::warn!(error = %e, "could not start the kv compaction thread");
            }
        }
    }

    /// The compaction; returns whether a snapshot was written.
    fn compact_now(&self) -> Result<bool> {
        let inner = &self.inner;
        let _c = lock(&inner.compact_lock);
        let (offset, map, covered_bytes) = {
            let _w = lock(&inner.writer);
            let offset = inner.log.log_end_offset();
            if offset.0 <= inner.snapshot_offset.load(Ordering::Acquire) {
                return Ok(false);
            }
            // Cloning bumps reference counts: no key or value is copied.
            let map = read(&inner.map).clone();
            (
                offset,
                map,
                inner.bytes_since_snapshot.load(Ordering::Relaxed),
            )
        };
        // See "Crash safety" 2: the log must reach `offset` after any crash.
        inner.log.sync_to(offset)?;
        let path = kv_snapshot_file(&inner.dir, offset);
        let bytes = write_snapshot(&path, offset, &map)?;
        drop(map);
        inner.snapshot_offset.store(offset.0, Ordering::Release);
        inner.snapshot_bytes.store(bytes, Ordering::Release);
        let _ =
            inner
                .bytes_since_snapshot
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                    Some(b.saturating_sub(covered_bytes))
                });
        inner.compactions.fetch_add(1, Ordering::Relaxed);
        let removed = remove_snapshots_before(&inner.dir, offset)?;
        let deleted = inner.log.delete_segments_before(offset)?;
        tracing::info!(
            dir = %inner.dir.display(),
            snapshot_offset = %offset,
            snapshot_bytes = bytes,
            older_snapshots_removed = removed,
            segments_deleted = deleted.segments_deleted,
            log_start_offset = %deleted.log_start_offset,
            "kv snapshot written"
        );
        Ok(true)
    }
}

/// Takes the directory's flock, so two stores never share a directory.
fn lock_dir(dir: &Path) -> Result<File> {
    crate::dir_lock::lock_exclusive(dir, KV_LOCK_FILE, "lock kv directory")
}

/// The snapshot files in `dir`, oldest first, after removing leftover temp files
/// of interrupted compactions.
fn list_snapshots(dir: &Path) -> Result<Vec<(Offset, PathBuf)>> {
    let mut snapshots = Vec::new();
    for entry in std::fs::read_dir(dir).ctx("list kv directory", dir)? {
        let entry = entry.ctx("list kv directory", dir)?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if let Some(offset) = parse_kv_snapshot_file(&name) {
            snapshots.push((offset, path));
        } else if name
            .strip_suffix(TMP_SUFFIX)
            .and_then(|n| n.strip_suffix('.'))
            .and_then(parse_kv_snapshot_file)
            .is_some()
        {
            tracing::info!(path = %path.display(), "removing the temp file of an interrupted snapshot");
            std::fs::remove_file(&path).ctx("remove temp snapshot", &path)?;
        }
    }
    snapshots.sort();
    Ok(snapshots)
}

/// Deletes the snapshot files below `offset`; returns how many.
fn remove_snapshots_before(dir: &Path, offset: Offset) -> Result<usize> {
    let mut removed = 0;
    for (older, path) in list_snapshots(dir)? {
        if older < offset {
            std::fs::remove_file(&path).ctx("remove old snapshot", &path)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The state replay starts from.
struct Base {
    offset: Offset,
    path: Option<PathBuf>,
    map: BTreeMap<Bytes, Bytes>,
}

/// Picks the newest snapshot that checks and that the log can continue from;
/// see "Crash safety" 5.
fn choose_snapshot(
    dir: &Path,
    log_dir: &Path,
    snapshots: &[(Offset, PathBuf)],
    log: &PartitionLog,
    report: &mut KvOpenReport,
) -> Result<Base> {
    let log_start = log.log_start_offset();
    let log_end = log.log_end_offset();
    let mut newest_corrupt: Option<(PathBuf, String)> = None;
    let mut too_old: Option<(PathBuf, Offset)> = None;
    for (offset, path) in snapshots.iter().rev() {
        let map = match read_snapshot(path, *offset) {
            Ok(map) => map,
            Err(Error::CorruptFile { path, reason }) => {
                tracing::error!(path = %path.display(), %reason, "corrupt kv snapshot, trying an older one");
                report.corrupt_snapshots.push(path.clone());
                newest_corrupt.get_or_insert((path, reason));
                continue;
            }
            Err(e) => return Err(e),
        };
        if *offset > log_end {
            return Err(Error::CorruptFile {
                path: log_dir.to_path_buf(),
                reason: format!(
                    "the log ends at offset {log_end}, below snapshot {} (offset {offset}): \
                     records the log had fsynced are missing",
                    path.display()
                ),
            });
        }
        if *offset < log_start {
            too_old = Some((path.clone(), *offset));
            break;
        }
        report.snapshot = Some(path.clone());
        report.snapshot_offset = *offset;
        report.snapshot_entries = map.len();
        return Ok(Base {
            offset: *offset,
            path: Some(path.clone()),
            map,
        });
    }
    if too_old.is_none() && log_start == Offset(0) {
        // The empty map at offset 0 is the oldest snapshot of all.
        return Ok(Base {
            offset: Offset(0),
            path: None,
            map: BTreeMap::new(),
        });
    }
    if let Some((path, reason)) = newest_corrupt {
        return Err(Error::CorruptFile {
            path,
            reason: format!(
                "{reason}; no older snapshot can replace it: the log starts at offset \
                 {log_start}, after every older snapshot"
            ),
        });
    }
    Err(match too_old {
        Some((path, offset)) => Error::CorruptFile {
            path,
            reason: format!(
                "snapshot is as of offset {offset} but the log starts at {log_start}: \
                 the records between are lost"
            ),
        },
        None => Error::CorruptFile {
            path: dir.to_path_buf(),
            reason: format!(
                "no snapshot, and the log starts at offset {log_start}: the records below it are lost"
            ),
        },
    })
}

/// Applies the log's batches from `from` to its end to `map`.
fn replay(
    log: &PartitionLog,
    log_dir: &Path,
    from: Offset,
    map: &mut BTreeMap<Bytes, Bytes>,
    report: &mut KvOpenReport,
) -> Result<()> {
    let corrupt = |reason: String| Error::CorruptFile {
        path: log_dir.to_path_buf(),
        reason,
    };
    let end = log.log_end_offset();
    let mut next = from;
    while next < end {
        let batches = log.read_batches(next, REPLAY_READ_BYTES)?;
        if batches.is_empty() {
            return Err(corrupt(format!(
                "no batch at offset {next} below the log end {end}"
            )));
        }
        for batch in batches {
            let header = batch.header();
            let base = u64::try_from(header.base_offset).unwrap_or(u64::MAX);
            let batch_next = u64::try_from(header.next_offset()).unwrap_or(0);
            // Contiguity: the first batch holds `next` (it starts there unless a
            // snapshot offset fell inside a batch), and each follows the last.
            if base > next.0 || batch_next <= next.0 {
                return Err(corrupt(format!(
                    "expected a batch holding offset {next}, found offsets {base}..{batch_next}: \
                     the log has a gap"
                )));
            }
            let records = batch
                .records()
                .map_err(|e| corrupt(format!("batch at offset {base} does not decode: {e}")))?;
            for record in records {
                let offset = u64::try_from(record.offset).unwrap_or(0);
                if offset < next.0 {
                    continue;
                }
                let Some(key) = record.key else {
                    return Err(corrupt(format!("record at offset {offset} has no key")));
                };
                // Copy out of the batch buffer: a slice would keep the whole
                // read buffer alive for as long as the key lives.
                match record.value {
                    Some(value) => {
                        let value = Bytes::copy_from_slice(&value);
                        if let Some(slot) = map.get_mut(key.as_ref()) {
                            *slot = value;
                        } else {
                            map.insert(Bytes::copy_from_slice(&key), value);
                        }
                    }
                    None => {
                        map.remove(key.as_ref());
                    }
                }
                report.records_replayed += 1;
            }
            report.batches_replayed += 1;
            report.bytes_replayed += batch.as_bytes().len() as u64;
            next = Offset(batch_next);
        }
    }
    Ok(())
}

/// One batch holding `ops` in order: puts with their value, deletes with a null
/// value (a tombstone).
fn encode_batch(ops: &[KvOp<'_>], limit: u32) -> Result<Bytes> {
    let payload = ops
        .iter()
        .fold(0usize, |n, op| n.saturating_add(op.payload_len()));
    // Checked before encoding: the record codec takes lengths below i32::MAX on
    // trust, and a batch beyond a segment could never be appended.
    if payload > limit as usize {
        return Err(Error::BatchTooLarge {
            bytes: payload,
            limit,
        });
    }
    let mut builder = RecordBatchBuilder::new(Compression::None);
    builder.reserve(payload.saturating_add(ops.len().saturating_mul(16)));
    let timestamp = now_ms();
    for op in ops {
        match op {
            KvOp::Put(key, value) => builder.append(timestamp, Some(key), Some(value), &[]),
            KvOp::Delete(key) => builder.append(timestamp, Some(key), None, &[]),
        };
    }
    Ok(builder.build()?)
}

/// A writer that keeps the CRC-32C and length of what went through it.
struct CrcWriter<W> {
    inner: W,
    crc: u32,
    bytes: u64,
}

impl<W: Write> CrcWriter<W> {
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.inner.write_all(bytes)?;
        self.crc = crc32c::crc32c_append(self.crc, bytes);
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    fn put_len(&mut self, len: usize) -> std::io::Result<()> {
        let len = u32::try_from(len).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "key or value longer than 4 GiB",
            )
        })?;
        self.put(&len.to_be_bytes())
    }
}

/// Writes `map` as the snapshot at `offset` to `path` atomically (see "Crash
/// safety" 3); returns the file's size.
fn write_snapshot(path: &Path, offset: Offset, map: &BTreeMap<Bytes, Bytes>) -> Result<u64> {
    let tmp = tmp_path(path);
    let written = (|| -> Result<u64> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .ctx("create snapshot", &tmp)?;
        let mut w = CrcWriter {
            inner: BufWriter::with_capacity(SNAPSHOT_WRITE_BUFFER, file),
            crc: 0,
            bytes: 0,
        };
        (|| {
            w.put(SNAPSHOT_MAGIC)?;
            w.put(&[SNAPSHOT_VERSION])?;
            w.put(&offset.0.to_be_bytes())?;
            w.put(&(map.len() as u64).to_be_bytes())?;
            for (key, value) in map {
                w.put_len(key.len())?;
                w.put(key)?;
                w.put_len(value.len())?;
                w.put(value)?;
            }
            let crc = w.crc;
            w.put(&crc.to_be_bytes())?;
            w.inner.flush()
        })()
        .ctx("write snapshot", &tmp)?;
        let bytes = w.bytes;
        let file = w
            .inner
            .into_inner()
            .map_err(|e| Error::io("write snapshot", &tmp, e.into_error()))?;
        file.sync_all().ctx("fsync snapshot", &tmp)?;
        Ok(bytes)
    })();
    let bytes = match written {
        Ok(bytes) => bytes,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, path).ctx("rename snapshot", path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))?;
    Ok(bytes)
}

/// Reads and checks the snapshot at `path`, whose name says `offset`.
fn read_snapshot(path: &Path, offset: Offset) -> Result<BTreeMap<Bytes, Bytes>> {
    let bytes = std::fs::read(path).ctx("read snapshot", path)?;
    decode_snapshot(&bytes, path, offset)
}

/// A bounds-checked reader over snapshot bytes.
struct Cursor<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.position.checked_add(n)?;
        let taken = self.bytes.get(self.position..end)?;
        self.position = end;
        Some(taken)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
    }
}

/// Parses a snapshot; see the format in the module docs.
fn decode_snapshot(
    bytes: &[u8],
    path: &Path,
    name_offset: Offset,
) -> Result<BTreeMap<Bytes, Bytes>> {
    let corrupt = |position: usize, reason: String| Error::CorruptFile {
        path: path.to_path_buf(),
        reason: format!("at byte {position}: {reason}"),
    };
    let Some((body, trailer)) = bytes
        .len()
        .checked_sub(SNAPSHOT_TRAILER_LEN)
        .filter(|n| *n >= SNAPSHOT_HEADER_LEN)
        .and_then(|n| bytes.split_at_checked(n))
    else {
        return Err(corrupt(
            bytes.len(),
            format!(
                "file of {} bytes is shorter than a snapshot's header and checksum ({} bytes)",
                bytes.len(),
                SNAPSHOT_HEADER_LEN + SNAPSHOT_TRAILER_LEN
            ),
        ));
    };
    let mut header = Cursor {
        bytes: body,
        position: 0,
    };
    if header.take(4) != Some(SNAPSHOT_MAGIC.as_slice()) {
        return Err(corrupt(0, "bad magic (not a kv snapshot)".into()));
    }
    match header.take(1) {
        Some([SNAPSHOT_VERSION]) => {}
        other => {
            return Err(corrupt(
                4,
                format!("unknown version {:?}", other.and_then(|v| v.first())),
            ));
        }
    }
    let stored = <[u8; 4]>::try_from(trailer)
        .map(u32::from_be_bytes)
        .map_err(|_| corrupt(body.len(), "short checksum".into()))?;
    let computed = crc32c::crc32c(body);
    if stored != computed {
        return Err(corrupt(
            body.len(),
            format!(
                "CRC-32C mismatch over bytes 0..{}: stored {stored:#010x}, computed {computed:#010x}",
                body.len()
            ),
        ));
    }
    let (Some(offset), Some(count)) = (header.u64(), header.u64()) else {
        return Err(corrupt(5, "short header".into()));
    };
    if offset != name_offset.0 {
        return Err(corrupt(
            5,
            format!("snapshot_offset {offset} differs from the file name's {name_offset}"),
        ));
    }
    let room = body.len().saturating_sub(SNAPSHOT_HEADER_LEN) / MIN_ENTRY_LEN;
    if count > room as u64 {
        return Err(corrupt(
            13,
            format!("entry_count {count} cannot fit in {} bytes", body.len()),
        ));
    }
    let mut entries: Vec<(Bytes, Bytes)> = Vec::with_capacity(count as usize);
    let mut cursor = header;
    for i in 0..count {
        let at = cursor.position;
        let entry = (|| {
            let key_len = cursor.u32()? as usize;
            let key = cursor.take(key_len)?;
            let value_len = cursor.u32()? as usize;
            let value = cursor.take(value_len)?;
            Some((key, value))
        })();
        let Some((key, value)) = entry else {
            return Err(corrupt(
                at,
                format!("entry {i} of {count} runs past the end"),
            ));
        };
        if entries
            .last()
            .is_some_and(|(previous, _)| previous.as_ref() >= key)
        {
            return Err(corrupt(
                at,
                format!("entry {i}: keys are not in ascending order"),
            ));
        }
        entries.push((Bytes::copy_from_slice(key), Bytes::copy_from_slice(value)));
    }
    if cursor.position != body.len() {
        return Err(corrupt(
            cursor.position,
            format!(
                "{} bytes after the last entry",
                body.len() - cursor.position
            ),
        ));
    }
    // Sorted input: BTreeMap builds it in one pass.
    Ok(entries.into_iter().collect())
}

#[cfg(test)]
#[expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
mod tests {
    use super::*;

    fn sample() -> BTreeMap<Bytes, Bytes> {
        (0..50u32)
            .map(|i| {
                (
                    Bytes::from(format!("group/{i:03}")),
                    Bytes::from(vec![i as u8; (i % 7) as usize]),
                )
            })
            .collect()
    }

    #[test]
    fn snapshot_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = kv_snapshot_file(dir.path(), Offset(77));
        let map = sample();
        let bytes = write_snapshot(&path, Offset(77), &map).unwrap();
        assert_eq!(bytes, std::fs::metadata(&path).unwrap().len());
        assert!(!tmp_path(&path).exists());
        assert_eq!(read_snapshot(&path, Offset(77)).unwrap(), map);
        let empty = kv_snapshot_file(dir.path(), Offset(0));
        write_snapshot(&empty, Offset(0), &BTreeMap::new()).unwrap();
        assert!(read_snapshot(&empty, Offset(0)).unwrap().is_empty());
    }

    #[test]
    fn every_flipped_byte_and_every_cut_is_reported_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = kv_snapshot_file(dir.path(), Offset(9));
        write_snapshot(&path, Offset(9), &sample()).unwrap();
        let good = std::fs::read(&path).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x20;
            match decode_snapshot(&bad, &path, Offset(9)) {
                Err(Error::CorruptFile { path: p, reason }) => {
                    assert_eq!(p, path);
                    assert!(reason.starts_with("at byte "), "{reason}");
                }
                other => panic!("flip at {i}: {other:?}"),
            }
        }
        for len in 0..good.len() {
            assert!(
                matches!(
                    decode_snapshot(&good[..len], &path, Offset(9)),
                    Err(Error::CorruptFile { .. })
                ),
                "cut at {len}"
            );
        }
        assert!(
            decode_snapshot(&good, &path, Offset(10)).is_err(),
            "name mismatch"
        );
    }

    #[test]
    fn a_checksummed_but_malformed_body_is_an_error_not_a_panic() {
        let path = Path::new("/x/snapshot.kv");
        let seal = |body: Vec<u8>| {
            let mut b = body;
            let crc = crc32c::crc32c(&b);
            b.extend_from_slice(&crc.to_be_bytes());
            b
        };
        let header = |count: u64| {
            let mut b = SNAPSHOT_MAGIC.to_vec();
            b.push(SNAPSHOT_VERSION);
            b.extend_from_slice(&1u64.to_be_bytes());
            b.extend_from_slice(&count.to_be_bytes());
            b
        };
        // A count far beyond the file.
        assert!(decode_snapshot(&seal(header(u64::MAX)), path, Offset(1)).is_err());
        // A key length past the end.
        let mut b = header(1);
        b.extend_from_slice(&u32::MAX.to_be_bytes());
        b.extend_from_slice(&[0; 8]);
        assert!(decode_snapshot(&seal(b), path, Offset(1)).is_err());
        // Keys out of order.
        let mut b = header(2);
        for key in [b"b", b"a"] {
            b.extend_from_slice(&1u32.to_be_bytes());
            b.extend_from_slice(key);
            b.extend_from_slice(&0u32.to_be_bytes());
        }
        assert!(decode_snapshot(&seal(b), path, Offset(1)).is_err());
        // Trailing bytes.
        let mut b = header(0);
        b.push(0);
        assert!(decode_snapshot(&seal(b), path, Offset(1)).is_err());
    }

    #[test]
    fn batches_carry_puts_and_tombstones_in_order() {
        let batch = encode_batch(&[KvOp::Put(b"a", b"1"), KvOp::Delete(b"b")], 1 << 20).unwrap();
        let batch = warren_protocol::RecordBatch::new(batch).unwrap();
        batch.verify_crc().unwrap();
        let records = batch.records().unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].key.as_deref(), Some(&b"a"[..]));
        assert_eq!(records[0].value.as_deref(), Some(&b"1"[..]));
        assert_eq!(records[1].key.as_deref(), Some(&b"b"[..]));
        assert_eq!(records[1].value, None);
        assert!(matches!(
            encode_batch(&[KvOp::Put(b"k", &[0; 2000])], 1024),
            Err(Error::BatchTooLarge { .. })
        ));
    }
}
