//! Appending: as a leader (offsets assigned from the log end), as a follower
//! (offsets kept, the base offset must be the log end), and rolling the active
//! segment when it is full or old.
//!
//! Every append runs under the `writer` lock (one writer per partition). The
//! first append after a clean open rewrites the recovery point as not clean,
//! so a crash after it is recovered.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use warren_protocol::record_batch::{self, BatchHeader, ValidatedBatch};

use crate::checkpoint::Checkpoint;
use crate::config::Durability;
use crate::error::{Error, Result};
use crate::log::{AppendInfo, PartitionLog, Writer, lock, now_ms};
use crate::offset::{FilePosition, Offset};
use crate::segment::Segment;

/// Where an appended batch's offsets come from.
#[derive(Debug, Clone, Copy)]
enum Assign {
    /// From the log end (a leader's append); the batch's base offset is ignored.
    FromLogEnd,
    /// The batch's own base offset, which must be the log end (a follower's).
    Keep(i64),
}

impl PartitionLog {
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
        self.append_checked(batch, &header, Assign::FromLogEnd)
    }

    /// Appends a batch replicated from a leader, keeping its offsets: its base
    /// offset must equal the log end (a follower's append, Kafka's
    /// `appendAsFollower`). The batch is checked as [`append`](Self::append)
    /// checks it (header, CRC, sizes) and written byte for byte as sent,
    /// base offset and partition leader epoch included.
    ///
    /// # Errors
    /// [`Error::OffsetMismatch`] when the base offset is not the log end (a gap
    /// or an overlap); nothing is written, and the caller truncates or fetches
    /// from the log end. Otherwise as [`append`](Self::append).
    pub fn append_replicated(&self, batch: &[u8]) -> Result<AppendInfo> {
        let header = validate_batch(batch, self.inner.config.batch_limit())?;
        self.append_checked(batch, &header, Assign::Keep(header.base_offset))
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
        self.append_checked(bytes, batch.header(), Assign::FromLogEnd)
    }

    /// Appends a batch whose `header` is parsed and checked.
    fn append_checked(
        &self,
        batch: &[u8],
        header: &BatchHeader,
        assign: Assign,
    ) -> Result<AppendInfo> {
        let mut w = lock(&self.inner.writer);
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed(self.inner.name.to_string()));
        }
        self.check_not_failed()?;
        if let Assign::Keep(got) = assign {
            let expected = self.log_end_offset();
            if u64::try_from(got).ok() != Some(expected.0) {
                return Err(Error::OffsetMismatch {
                    expected: expected.0,
                    got,
                });
            }
        }
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

#[cfg(test)]
#[expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
mod tests {
    use super::*;
    use crate::log::PartitionLog;
    use crate::log::test_support::{all_batches, batch, config, crash, leader_batch};

    fn open(dir: &std::path::Path, segment_bytes: u32) -> PartitionLog {
        PartitionLog::open(dir, "t-0", config(Durability::None, segment_bytes)).unwrap()
    }

    #[test]
    fn append_assigns_offsets_from_the_log_end_whatever_the_batch_says() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), 1 << 20);
        let sent = leader_batch(0, 3, 999, 7);
        let first = log.append(&sent).unwrap();
        assert_eq!(
            (first.base_offset, first.last_offset),
            (Offset(0), Offset(2))
        );
        assert_eq!(first.log_end_offset, Offset(3));
        assert_eq!(first.position, FilePosition(0));
        let second = log.append(&batch(1, 2, 10)).unwrap();
        assert_eq!(second.base_offset, Offset(3));
        assert_eq!(second.position, FilePosition(sent.len() as u32));
        assert_eq!(log.log_end_offset(), Offset(5));
        let stored = all_batches(&log);
        assert_eq!(
            &stored[0][..8],
            &0i64.to_be_bytes(),
            "base offset rewritten"
        );
        assert_eq!(&stored[1][..8], &3i64.to_be_bytes());
        assert_eq!(log.stats().appends.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn append_refuses_a_bad_batch_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), 1 << 20);
        let good = batch(0, 2, 10);
        let mut bad_crc = good.to_vec();
        *bad_crc.last_mut().unwrap() ^= 1;
        assert!(matches!(
            log.append(&bad_crc),
            Err(Error::InvalidBatch(
                warren_protocol::Error::ChecksumMismatch { .. }
            ))
        ));
        let mut extra = good.to_vec();
        extra.push(0);
        assert!(matches!(log.append(&extra), Err(Error::InvalidBatch(_))));
        assert!(matches!(
            log.append(&good[..good.len() - 1]),
            Err(Error::InvalidBatch(_))
        ));
        assert_eq!(log.log_end_offset(), Offset(0));
        assert_eq!(log.size_bytes(), 0);
    }

    #[test]
    fn append_refuses_a_batch_over_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), 1024);
        assert!(matches!(
            log.append(&batch(0, 1, 2000)),
            Err(Error::BatchTooLarge { limit: 1024, .. })
        ));
        assert!(matches!(
            log.append_replicated(&leader_batch(0, 1, 0, 1)[..])
                .map(|_| ()),
            Ok(())
        ));
        let big = {
            let mut b = batch(1, 1, 2000).to_vec();
            record_batch::set_base_offset(&mut b, 1).unwrap();
            b
        };
        assert!(matches!(
            log.append_replicated(&big),
            Err(Error::BatchTooLarge { .. })
        ));
        assert_eq!(log.log_end_offset(), Offset(1));
    }

    #[test]
    fn a_full_segment_rolls_and_offsets_continue_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), 1024);
        let mut segment_bases = Vec::new();
        for i in 0..5 {
            let info = log.append(&batch(i, 2, 400)).unwrap();
            assert_eq!(info.base_offset, Offset(i * 2));
            segment_bases.push(info.segment_base_offset);
        }
        segment_bases.dedup();
        let actual: Vec<Offset> = log.segments().iter().map(|s| s.base_offset()).collect();
        assert_eq!(actual, segment_bases);
        assert!(actual.len() >= 3, "{actual:?}");
        assert_eq!(
            log.stats().segments_rolled.load(Ordering::Relaxed),
            actual.len() as u64 - 1
        );
        assert_eq!(all_batches(&log).len(), 5);
    }

    #[test]
    fn append_replicated_keeps_offsets_and_leader_epoch_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), 1024);
        let mut sent = Vec::new();
        let mut next = 0i64;
        for i in 0..12u64 {
            let records = 1 + (i % 4) as usize;
            let b = leader_batch(i, records, next, 40 + i as i32);
            let info = log.append_replicated(&b).unwrap();
            assert_eq!(info.base_offset, Offset(next as u64));
            next += records as i64;
            assert_eq!(info.log_end_offset, Offset(next as u64));
            sent.push(b);
        }
        assert!(log.segments().len() > 1, "rolled on the way");
        assert_eq!(all_batches(&log), sent, "stored byte for byte");
        // What a fetch sends is the same bytes.
        let mut fetched = Vec::new();
        let mut from = Offset(0);
        while from < log.log_end_offset() {
            let read = log.read(from, u32::MAX).unwrap();
            for slice in &read.slices {
                slice.read_into(&mut fetched).unwrap();
            }
            from = read.slices.last().unwrap().next_offset;
        }
        assert_eq!(fetched, sent.concat());
    }

    #[test]
    fn append_replicated_refuses_a_gap_or_an_overlap_and_leaves_the_log_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), 1 << 20);
        log.append_replicated(&leader_batch(0, 3, 0, 1)).unwrap();
        log.append_replicated(&leader_batch(1, 2, 3, 1)).unwrap();
        let before = all_batches(&log);
        let size = log.size_bytes();
        for (base, what) in [
            (6, "a gap"),
            (4, "an overlap"),
            (0, "a replay"),
            (-1, "negative"),
        ] {
            match log.append_replicated(&leader_batch(2, 1, base, 1)) {
                Err(Error::OffsetMismatch { expected: 5, got }) => assert_eq!(got, base, "{what}"),
                other => panic!("{what}: {other:?}"),
            }
        }
        assert_eq!(log.log_end_offset(), Offset(5));
        assert_eq!(log.size_bytes(), size);
        assert_eq!(all_batches(&log), before);
        let mut bad_crc = leader_batch(3, 1, 5, 1).to_vec();
        *bad_crc.last_mut().unwrap() ^= 1;
        assert!(matches!(
            log.append_replicated(&bad_crc),
            Err(Error::InvalidBatch(_))
        ));
        log.append_replicated(&leader_batch(3, 1, 5, 1)).unwrap();
        assert_eq!(log.log_end_offset(), Offset(6));
    }

    #[test]
    fn append_and_append_replicated_mix() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), 1 << 20);
        log.append(&batch(0, 2, 10)).unwrap();
        let replicated = leader_batch(1, 3, 2, 9);
        log.append_replicated(&replicated).unwrap();
        let info = log.append(&batch(2, 1, 10)).unwrap();
        assert_eq!(info.base_offset, Offset(5));
        assert!(matches!(
            log.append_replicated(&leader_batch(3, 1, 5, 9)),
            Err(Error::OffsetMismatch {
                expected: 6,
                got: 5
            })
        ));
        log.append_replicated(&leader_batch(3, 1, 6, 9)).unwrap();
        let stored = all_batches(&log);
        assert_eq!(stored.len(), 4);
        assert_eq!(stored[1], replicated);
        assert_eq!(log.log_end_offset(), Offset(7));
    }

    #[test]
    fn replicated_batches_survive_close_and_crash_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), 1024);
        let mut sent = Vec::new();
        let mut next = 0i64;
        for i in 0..10u64 {
            let b = leader_batch(i, 2, next, 3);
            log.append_replicated(&b).unwrap();
            next += 2;
            sent.push(b);
        }
        log.close().unwrap();
        drop(log);
        let log = open(dir.path(), 1024);
        assert!(log.recovery_report().clean_shutdown);
        assert_eq!(all_batches(&log), sent);
        for i in 10..14u64 {
            let b = leader_batch(i, 2, next, 4);
            log.append_replicated(&b).unwrap();
            next += 2;
            sent.push(b);
        }
        crash(log);
        let log = open(dir.path(), 1024);
        assert!(!log.recovery_report().clean_shutdown);
        assert_eq!(all_batches(&log), sent);
        assert_eq!(log.log_end_offset(), Offset(next as u64));
    }

    #[test]
    fn a_follower_truncates_to_the_leader_and_appends_its_batches() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), 1024);
        let mut leader = Vec::new();
        for i in 0..4u64 {
            let b = leader_batch(i, 2, i as i64 * 2, 1);
            log.append_replicated(&b).unwrap();
            leader.push(b);
        }
        // Records the new leader never had (epoch 1, offsets 8..12).
        log.append_replicated(&leader_batch(90, 2, 8, 1)).unwrap();
        log.append_replicated(&leader_batch(91, 2, 10, 1)).unwrap();
        log.truncate_to(Offset(8)).unwrap();
        for i in 4..8u64 {
            let b = leader_batch(i, 2, i as i64 * 2, 2);
            log.append_replicated(&b).unwrap();
            leader.push(b);
        }
        assert_eq!(all_batches(&log), leader);
        crash(log);
        let log = open(dir.path(), 1024);
        assert_eq!(all_batches(&log), leader);
    }
}
