//! Compaction: write the map as of the log end to a snapshot, then delete
//! older snapshots and every log segment wholly below it. Runs on a background
//! thread once enough was appended (see the store's module docs), on
//! [`KvStore::compact`], and from close. One at a time (`compact_lock`).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::error::{Error, Result};
use crate::file_names::kv_snapshot_file;
use crate::kv::snapshot::{remove_snapshots_before, write_snapshot};
use crate::kv::{KvStore, SNAPSHOT_SIZE_FACTOR, lock, read};

impl KvStore {
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

    /// Starts a background compaction if enough was appended since the last
    /// snapshot and none is running.
    pub(super) fn maybe_compact_in_background(&self) {
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
    pub(super) fn compact_now(&self) -> Result<bool> {
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

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests")]
mod tests {
    use crate::error::Error;
    use crate::kv::{KvConfig, KvOp, KvStore};
    use crate::offset::Offset;

    #[test]
    fn compaction_snapshots_the_log_end_and_only_when_something_changed() {
        let dir = tempfile::tempdir().unwrap();
        let store = KvStore::open(dir.path(), KvConfig::default()).unwrap();
        assert!(!store.compact_now().unwrap(), "nothing applied yet");
        store.apply(&[KvOp::Put(b"k", b"v")]).unwrap();
        assert!(store.compact_now().unwrap());
        let stats = store.stats();
        assert_eq!(stats.snapshot_offset, Offset(1));
        assert_eq!(stats.bytes_since_snapshot, 0);
        assert_eq!(stats.compactions, 1);
        assert_eq!(
            stats.durable_offset,
            Offset(1),
            "synced before the snapshot"
        );
        assert!(!store.compact_now().unwrap(), "no apply since");
        store.close().unwrap();
        assert!(matches!(store.compact(), Err(Error::Closed(_))));
    }
}
