//! Reading: whole batches by offset as [`FileSlice`]s for `sendfile`, copied
//! and CRC-checked batches for tools, and lookups by timestamp.
//!
//! Readers take the `segments` read lock only to find a segment, never the
//! writer lock: an append never blocks a read.

use std::ops::ControlFlow;
use std::sync::Arc;

use warren_protocol::record_batch::{self, Compression, RecordBatch};
use warren_protocol::record_stream::ClipLimits;

use crate::error::{Error, Result};
use crate::log::{LocatedBatch, PartitionLog, ReadInfo};
use crate::offset::Offset;
use crate::segment::Segment;

/// How [`PartitionLog::offset_for_timestamp`] reads a batch: offsets and
/// timestamps only, at most the 64 MiB a batch may decompress to.
const OFFSETS_ONLY: ClipLimits = ClipLimits {
    max_decompressed_bytes: record_batch::DEFAULT_MAX_DECOMPRESSED_BYTES,
    max_field_bytes: 0,
    max_headers: 0,
};

impl PartitionLog {
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

    /// Base offset of the last segment starting at or below `offset`; `None` when
    /// `offset` is below every segment (retention raced the caller).
    pub(super) fn segment_key_for(&self, offset: Offset) -> Option<Offset> {
        let map = self
            .inner
            .segments
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.range(..=offset).next_back().map(|(k, _)| *k)
    }

    /// The first segment with base offset `>= key`.
    pub(super) fn segment_at_or_after(&self, key: Offset) -> Option<(Offset, Arc<Segment>)> {
        self.inner
            .segments
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .range(key..)
            .next()
            .map(|(k, s)| (*k, s.clone()))
    }
}
