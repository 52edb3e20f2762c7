//! Durability: group commit, the fsync gate and fencing, interval flushes, the
//! high watermark and close. See the log's module docs, **Durability** and
//! **Fencing**, for the rules; this file is where they are kept.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::checkpoint::Checkpoint;
use crate::config::Durability;
use crate::error::{Error, Result};
use crate::log::{PartitionLog, lock, now_ms};
use crate::offset::Offset;
use crate::segment::Segment;

impl PartitionLog {
    /// Flushes every segment below `upto` not yet covered by the recovery point,
    /// then moves the recovery point to `upto`.
    ///
    /// On a failed log it does nothing but return [`Error::Failed`]: a flush of
    /// a file whose earlier fsync failed may "succeed" without the lost pages,
    /// so it proves nothing (see the module docs, **Fencing**).
    pub(super) fn checkpoint_below(&self, upto: Offset) -> Result<()> {
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

    pub(super) fn check_not_failed(&self) -> Result<()> {
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
    pub(super) fn fenced_sync(&self, segment: &Segment, with_indexes: bool) -> Result<()> {
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

    /// The offset after the last record consumers may see: the durable offset
    /// under `fsync` (so a consumer never sees a record a crash could take
    /// back), the log end otherwise. Always on a batch boundary.
    pub fn high_watermark(&self) -> Offset {
        match self.inner.config.durability {
            Durability::Fsync => self.durable_offset().min(self.log_end_offset()),
            _ => self.log_end_offset(),
        }
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
}

/// A failed fsync is never acknowledged: the fault-injection seam fails the
/// n-th segment fsync (without timing), and the log must stay fenced.
#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests")]
mod tests {
    use std::path::Path;
    use std::thread::JoinHandle;
    use std::time::Duration;

    use bytes::Bytes;
    use warren_protocol::{Compression, RecordBatchBuilder};

    use super::*;
    use crate::config::LogConfig;
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
