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
