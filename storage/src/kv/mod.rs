//! A durable key-value store on a [`PartitionLog`]: the broker keeps its
//! metadata in it (committed consumer-group offsets, share-group state, topic
//! bindings, users and ACLs). The store sees only bytes: the broker owns the
//! key formats, one key prefix per kind of record.
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
//! The snapshot file format is drawn in `snapshot`'s module docs.
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
//!
//! # Layout
//! - this file: [`KvStore`], its config, `open`, `apply`, reads, `close`.
//! - `snapshot`: the snapshot file format; writing, reading, listing and
//!   removing snapshot files.
//! - `replay`: what `open` does after opening the log: pick the snapshot to
//!   start from and replay the log from its offset.
//! - `compaction`: writing a snapshot and dropping what it covers, in the
//!   background or on demand.

use std::collections::BTreeMap;
use std::fs::File;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use warren_protocol::{Compression, RecordBatchBuilder};

use crate::config::{Durability, LogConfig};
use crate::error::{Error, IoContext, Result};
use crate::file_names::KV_LOG_DIR;
use crate::log::{PartitionLog, RecoveryReport};
use crate::metrics::StorageMetrics;
use crate::offset::Offset;

mod compaction;
mod replay;
mod snapshot;

/// Default [`KvConfig::compact_after_bytes`]: 64 MiB.
pub const DEFAULT_COMPACT_AFTER_BYTES: u64 = 64 << 20;
/// Default [`KvConfig::segment_bytes`]: 16 MiB.
pub const DEFAULT_KV_SEGMENT_BYTES: u32 = 16 << 20;
/// Compaction also waits for this many times the last snapshot's size, so a
/// store with many live keys does not rewrite them all after a few updates. Not
/// configurable.
pub const SNAPSHOT_SIZE_FACTOR: u64 = 4;

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
    pub(super) fn log_config(&self) -> LogConfig {
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
        let lock_file = replay::lock_dir(dir)?;
        let snapshots = snapshot::list_snapshots(dir)?;
        let log_dir = dir.join(KV_LOG_DIR);
        let name = format!("kv {}", dir.display());
        let log = PartitionLog::open_with_metrics(&log_dir, &name, config.log_config(), metrics)?;
        let mut report = KvOpenReport {
            log_recovery: log.recovery_report().clone(),
            ..KvOpenReport::default()
        };
        let base = replay::choose_snapshot(dir, &log_dir, &snapshots, &log, &mut report)?;
        let snapshot_bytes = match &base.path {
            Some(path) => std::fs::metadata(path).ctx("stat snapshot", path)?.len(),
            None => 0,
        };
        let mut map = base.map;
        replay::replay(&log, &log_dir, base.offset, &mut map, &mut report)?;
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
}

/// One batch holding `ops` in order: puts with their value, deletes with a null
/// value (a tombstone).
pub(super) fn encode_batch(ops: &[KvOp<'_>], limit: u32) -> Result<Bytes> {
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

#[cfg(test)]
#[expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
mod tests {
    use super::*;

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
