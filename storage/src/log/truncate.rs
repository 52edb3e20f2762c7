//! Truncation: removing the newest records, at and above an offset (Kafka's
//! `UnifiedLog.truncateTo`). A follower does it when its log diverges from the
//! leader's; nothing in a single-node broker calls it yet.
//!
//! Rules:
//! - The log is cut only between batches; cutting inside one is refused
//!   ([`Error::NotBatchBoundary`]) and changes nothing. An offset in a gap
//!   (offsets recovery lost to corruption in a flushed segment) cuts at the
//!   gap's start, the first offset the log lacks: nothing lies between, so
//!   the same records go, and the log end becomes the gap's start (the
//!   outcome says so). At or past the log end
//!   it is a no-op; below the log start it is refused
//!   ([`Error::OffsetOutOfRange`]). At the log start it empties the log, which
//!   then starts and ends there.
//! - The segment holding the offset is cut and becomes the active segment;
//!   every later segment is deleted. At a segment boundary the segment that
//!   starts at the offset is cut to empty and stays, as the active segment: the
//!   one before it stays sealed (trimmed indexes, flushed), so nothing has to be
//!   reopened for appends. The same code cuts inside a segment and at its start.
//! - The durable offset, the recovery point and so the high watermark never
//!   exceed the new log end: the recovery point is lowered (and written, not
//!   clean) before any file changes, so a crash from then on CRC-checks the
//!   segment that was cut and everything after it.
//! - Crash order: later segments are deleted newest first and the directory
//!   fsynced before the cut, and the cut is fsynced before `truncate_to`
//!   returns. A crash in the middle leaves a prefix of the old log that ends
//!   at or above the offset (never a hole); a crash after it, the truncated log.
//! - Readers are not stopped. A [`FileSlice`](crate::FileSlice) of the removed
//!   range gives a short read (an I/O error) or, from a deleted segment, the
//!   old bytes (the inode lives while it is open). A read racing the
//!   truncation and the appends after it may get an error (short read, a
//!   `CorruptLog` for a header that is now the middle of a new batch) or a
//!   slice whose tail is the start of a new batch, which the consumer's CRC
//!   check rejects; never a panic. A follower truncates before it serves
//!   reads of that range, so this is the rare case, as in Kafka, whose reads
//!   take no lock either.
//!
//! Thread-safety: takes the locks in the documented order, `writer`,
//! `checkpoint`, `syncing` (waiting for a running group commit to finish and
//! keeping new ones out), `fsync_gate`, `segments`; joins the roll flushes
//! first, as close does, so none moves the recovery point past the cut.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::checkpoint::{Checkpoint, sync_dir};
use crate::error::{Error, Result};
use crate::log::{PartitionLog, TruncateOutcome, Writer, lock};
use crate::offset::Offset;
use crate::segment::Segment;

impl PartitionLog {
    /// Removes every record at and above `offset`: the log end becomes
    /// `offset` (or, for an offset in a gap of lost offsets, the gap's start;
    /// [`TruncateOutcome::log_end_offset`] says which). See the module docs for the rules. Blocking (fsyncs): from
    /// async code, call it on a blocking thread.
    ///
    /// A [`sync_to`](Self::sync_to) waiting for a removed offset returns once
    /// the truncated log is durable, without its records: the caller must not
    /// acknowledge records it truncates.
    ///
    /// # Errors
    /// Nothing is changed on: [`Error::Closed`]; [`Error::Failed`] (a fenced
    /// log is not truncated: reopen it first); [`Error::OffsetOutOfRange`]
    /// below the log start; [`Error::NotBatchBoundary`]; an I/O error writing
    /// the recovery point (`DiskFull` is retriable). An I/O error after that
    /// fails the log ([`Error::Failed`] from then on); a reopen recovers a
    /// prefix of the old log that reaches at least `offset`.
    pub fn truncate_to(&self, offset: Offset) -> Result<TruncateOutcome> {
        let inner = &self.inner;
        let mut w = lock(&inner.writer);
        if inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed(inner.name.to_string()));
        }
        self.check_not_failed()?;
        let log_end = self.log_end_offset();
        let log_start = self.log_start_offset();
        let mut outcome = TruncateOutcome {
            log_end_offset: log_end,
            ..TruncateOutcome::default()
        };
        if offset >= log_end {
            return Ok(outcome);
        }
        let out_of_range = || Error::OffsetOutOfRange {
            requested: offset.0,
            log_start: log_start.0,
            log_end: log_end.0,
        };
        if offset < log_start {
            return Err(out_of_range());
        }
        let target = self
            .segment_key_for(offset)
            .and_then(|key| self.segment_at_or_after(key))
            .map(|(_, segment)| segment)
            .ok_or_else(out_of_range)?;
        let (offset, position) = match target.batch_start(offset)? {
            Some(position) => (offset, position),
            // `offset` lies in a gap after `target`: offsets recovery lost to
            // corruption in a flushed segment, later segments kept. Nothing
            // lies between the gap's start and `offset`, so cutting at the
            // gap's start removes exactly the records at and above `offset`.
            None if target.next_offset() < log_end => {
                (target.next_offset(), u64::from(target.size()))
            }
            // Only if the log end and the segments disagree; cut nothing.
            None => return Ok(outcome),
        };

        for handle in w.roll_flushes.drain(..) {
            let _ = handle.join();
        }
        let mut cp = lock(&inner.checkpoint);
        let mut syncing = lock(&inner.syncing);
        while *syncing {
            syncing = inner
                .synced
                .wait(syncing)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        // A group commit that just finished may have failed.
        self.check_not_failed()?;

        // 1. The recovery point, before any file changes: from here a crash
        // CRC-checks the cut segment and everything after it.
        let recovery_offset = (*cp).min(offset);
        Checkpoint {
            recovery_offset,
            clean: false,
        }
        .write(&inner.dir)?;
        *cp = recovery_offset;
        w.marked_dirty = true;

        // 2. The offsets: readers check the log end before touching segments.
        {
            let _gate = lock(&inner.fsync_gate);
            inner.durable_offset.fetch_min(offset.0, Ordering::AcqRel);
        }
        inner.log_end_offset.store(offset.0, Ordering::Release);

        // 3. The files. From here a failure leaves the files between the old
        // and the new state: fence the log so only a reopen (which recovers
        // them) serves writes again.
        if let Err(e) = self.cut_files(&mut w, &target, offset, position, &mut outcome) {
            let _gate = lock(&inner.fsync_gate);
            if !inner.failed.swap(true, Ordering::AcqRel) {
                tracing::error!(partition = %inner.name, error = %e, %offset,
                    "truncation failed: the log refuses appends and syncs until it is reopened and recovered");
            }
            return Err(e);
        }
        drop(syncing);
        inner.stats.truncations.fetch_add(1, Ordering::Relaxed);
        outcome.log_end_offset = offset;
        tracing::info!(partition = %inner.name, %offset, old_log_end_offset = %log_end,
            segments_deleted = outcome.segments_deleted, bytes_removed = outcome.bytes_removed,
            "log truncated");
        Ok(outcome)
    }

    /// Step 3 of [`truncate_to`](Self::truncate_to): deletes the segments
    /// above `target` (newest first, then fsyncs the directory), cuts `target`
    /// at `position` and fsyncs it, and makes it the active segment. The caller
    /// holds `writer`, `checkpoint` and `syncing`.
    fn cut_files(
        &self,
        w: &mut Writer,
        target: &Arc<Segment>,
        offset: Offset,
        position: u64,
        outcome: &mut TruncateOutcome,
    ) -> Result<()> {
        let inner = &self.inner;
        let doomed: Vec<Arc<Segment>> = {
            let mut map = inner
                .segments
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let later = map.split_off(&target.base_offset().plus(1));
            later.into_values().collect()
        };
        for segment in doomed.iter().rev() {
            segment.delete_files(&inner.dir)?;
            outcome.segments_deleted += 1;
            outcome.bytes_removed += u64::from(segment.size());
            inner.stats.segments_deleted.fetch_add(1, Ordering::Relaxed);
        }
        if !doomed.is_empty() {
            sync_dir(&inner.dir)?;
        }
        outcome.bytes_removed += target.truncate_to(offset, position)?;
        let started = Instant::now();
        self.fenced_sync(target, false)?;
        inner.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        inner.metrics.fsynced(started);
        if !Arc::ptr_eq(target, &w.active) {
            if let Err(e) = target.preallocate_indexes(&inner.config) {
                // As at open: on a full disk keep the index at its size; the
                // next append rolls (and gets DiskFull) until space is freed.
                if !e.is_retriable() {
                    return Err(e);
                }
                tracing::warn!(partition = %inner.name, error = %e, "cannot preallocate the active index");
            }
            w.active = Arc::clone(target);
        }
        Ok(())
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
mod tests {
    use super::*;
    use crate::config::Durability;
    use crate::fault_injection::SyncFault;
    use crate::log::test_support::{all_batches, batch, config};

    #[test]
    fn truncate_inside_the_active_segment_cuts_file_and_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), "t-0", config(Durability::None, 1 << 20)).unwrap();
        let mut ends = Vec::new();
        for i in 0..20 {
            ends.push(log.append(&batch(i, 3, 100)).unwrap().log_end_offset);
        }
        let cut = ends[9];
        let before = all_batches(&log);
        let size_before = log.size_bytes();
        let outcome = log.truncate_to(cut).unwrap();
        assert_eq!(outcome.log_end_offset, cut);
        assert_eq!(outcome.segments_deleted, 0);
        assert_eq!(log.log_end_offset(), cut);
        assert_eq!(log.size_bytes(), size_before - outcome.bytes_removed);
        assert_eq!(all_batches(&log), before[..10]);
        let segment = log.segments().pop().unwrap();
        assert_eq!(
            std::fs::metadata(segment.log_path()).unwrap().len(),
            u64::from(segment.size()),
            "the file is cut, not only the published size"
        );
        assert!(segment.indexes_look_sane(cut));
        assert_eq!(log.stats().truncations.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn truncate_at_the_log_start_empties_the_log_and_below_it_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), "t-0", config(Durability::None, 1024)).unwrap();
        for i in 0..6 {
            log.append(&batch(i, 1, 600)).unwrap();
        }
        log.delete_segments_before(Offset(2)).unwrap();
        assert_eq!(log.log_start_offset(), Offset(2));
        assert!(matches!(
            log.truncate_to(Offset(1)),
            Err(Error::OffsetOutOfRange { requested: 1, .. })
        ));
        assert_eq!(log.log_end_offset(), Offset(6));
        log.truncate_to(Offset(2)).unwrap();
        assert_eq!(log.log_start_offset(), Offset(2));
        assert_eq!(log.log_end_offset(), Offset(2));
        assert_eq!(log.segments().len(), 1);
        assert_eq!(log.append(&batch(9, 1, 10)).unwrap().base_offset, Offset(2));
    }

    #[test]
    fn truncate_past_the_end_is_a_no_op_and_inside_a_batch_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), "t-0", config(Durability::None, 1 << 20)).unwrap();
        log.append(&batch(0, 5, 10)).unwrap();
        log.append(&batch(1, 5, 10)).unwrap();
        let before = all_batches(&log);
        for at in [10, 11, 1000] {
            let outcome = log.truncate_to(Offset(at)).unwrap();
            assert_eq!(outcome.log_end_offset, Offset(10));
            assert_eq!(outcome.bytes_removed, 0);
        }
        assert!(matches!(
            log.truncate_to(Offset(7)),
            Err(Error::NotBatchBoundary {
                offset: 7,
                batch_base_offset: 5,
                batch_next_offset: 10
            })
        ));
        assert_eq!(
            all_batches(&log),
            before,
            "a refused truncation changes nothing"
        );
        assert_eq!(log.stats().truncations.load(Ordering::Relaxed), 0);
        assert!(!log.has_failed());
    }

    #[test]
    fn truncate_lowers_the_durable_offset_high_watermark_and_recovery_point() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), "t-0", config(Durability::Fsync, 1024)).unwrap();
        let mut ends = Vec::new();
        for i in 0..8 {
            ends.push(
                log.append_durable(&batch(i, 1, 300))
                    .unwrap()
                    .log_end_offset,
            );
        }
        log.close().unwrap();
        let log = PartitionLog::open(dir.path(), "t-0", config(Durability::Fsync, 1024)).unwrap();
        assert_eq!(log.durable_offset(), Offset(8));
        let cut = ends[2];
        log.truncate_to(cut).unwrap();
        assert_eq!(log.durable_offset(), cut);
        assert_eq!(log.high_watermark(), cut);
        let checkpoint = Checkpoint::read(dir.path()).unwrap().unwrap();
        assert_eq!(checkpoint.recovery_offset, cut);
        assert!(!checkpoint.clean);
        let info = log.append_durable(&batch(9, 1, 10)).unwrap();
        assert_eq!(info.base_offset, cut);
        assert_eq!(log.high_watermark(), info.log_end_offset);
    }

    #[test]
    fn a_fenced_log_refuses_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let fault = SyncFault::fail_nth(dir.path(), 1).install();
        let log =
            PartitionLog::open(dir.path(), "t-0", config(Durability::Fsync, 1 << 20)).unwrap();
        log.append(&batch(0, 2, 10)).unwrap();
        let end = log.append(&batch(1, 2, 10)).unwrap().log_end_offset;
        assert!(matches!(log.sync_to(end), Err(Error::Failed(_))));
        assert!(fault.fired());
        assert!(matches!(log.truncate_to(Offset(2)), Err(Error::Failed(_))));
        assert_eq!(log.log_end_offset(), end, "nothing cut");
        drop(log);
        drop(fault);
        let log =
            PartitionLog::open(dir.path(), "t-0", config(Durability::Fsync, 1 << 20)).unwrap();
        log.truncate_to(Offset(2)).unwrap();
        assert_eq!(log.log_end_offset(), Offset(2));
    }

    #[test]
    fn a_failed_fsync_of_the_cut_fences_the_log_and_reopen_recovers_a_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), "t-0", config(Durability::None, 1 << 20)).unwrap();
        for i in 0..4 {
            log.append(&batch(i, 2, 10)).unwrap();
        }
        let before = all_batches(&log);
        // The truncation's fsync of the cut segment is the first one here.
        let fault = SyncFault::fail_nth(dir.path(), 1).install();
        assert!(matches!(log.truncate_to(Offset(4)), Err(Error::Failed(_))));
        assert!(fault.fired());
        assert!(log.has_failed());
        assert!(matches!(
            log.append(&batch(9, 1, 10)),
            Err(Error::Failed(_))
        ));
        drop(log);
        drop(fault);
        let log = PartitionLog::open(dir.path(), "t-0", config(Durability::None, 1 << 20)).unwrap();
        assert!(log.log_end_offset() >= Offset(4));
        let after = all_batches(&log);
        assert_eq!(after, before[..after.len()], "a prefix of the old log");
    }

    /// The roll-flush thread of an earlier roll must not move the recovery
    /// point past the cut after the truncation lowered it.
    #[test]
    fn a_pending_roll_flush_does_not_raise_the_recovery_point_past_the_cut() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), "t-0", config(Durability::None, 1024)).unwrap();
        for i in 0..6 {
            log.append(&batch(i, 1, 600)).unwrap();
        }
        // Every append rolled: flush threads are pending or done for bases 1..=5.
        log.truncate_to(Offset(1)).unwrap();
        let checkpoint = Checkpoint::read(dir.path()).unwrap().unwrap();
        assert!(checkpoint.recovery_offset <= Offset(1));
        assert!(log.durable_offset() <= Offset(1));
        assert!(lock(&log.inner.writer).roll_flushes.is_empty());
    }
}
