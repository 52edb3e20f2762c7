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

#[cfg(test)]
#[expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
mod tests {
    use super::*;
    use crate::config::Durability;
    use crate::log::test_support::{BASE_TIMESTAMP_MS, all_batches, batch, config};

    /// 10 batches of 3 records (offsets 0..30) in 1 KiB segments.
    fn filled(dir: &std::path::Path) -> PartitionLog {
        let log = PartitionLog::open(dir, "t-0", config(Durability::None, 1024)).unwrap();
        for i in 0..10 {
            log.append(&batch(i, 3, 60)).unwrap();
        }
        assert!(log.segments().len() > 2);
        log
    }

    #[test]
    fn read_starts_at_the_batch_holding_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        let log = filled(dir.path());
        for from in 0..30u64 {
            let info = log.read(Offset(from), 1).unwrap();
            assert_eq!(
                info.slices.len(),
                1,
                "at least one batch, however small max_bytes"
            );
            let slice = &info.slices[0];
            assert_eq!(slice.first_offset, Offset(from / 3 * 3));
            assert_eq!(slice.next_offset, Offset(from / 3 * 3 + 3));
        }
        assert!(log.read(Offset(30), 1024).unwrap().slices.is_empty());
    }

    #[test]
    fn read_spans_segments_up_to_max_bytes_in_whole_batches() {
        let dir = tempfile::tempdir().unwrap();
        let log = filled(dir.path());
        let all = log.read(Offset(0), u32::MAX).unwrap();
        assert_eq!(
            all.slices.len(),
            log.segments().len(),
            "one slice per segment"
        );
        assert_eq!(all.slices.last().unwrap().next_offset, Offset(30));
        assert_eq!(all.bytes(), log.size_bytes());
        let one_batch = all_batches(&log)[0].len() as u32;
        let some = log.read(Offset(0), one_batch * 2).unwrap();
        assert!(some.bytes() <= u64::from(one_batch * 2));
        assert_eq!(some.slices.last().unwrap().next_offset, Offset(6));
    }

    #[test]
    fn reads_outside_the_log_are_out_of_range() {
        let dir = tempfile::tempdir().unwrap();
        let log = filled(dir.path());
        assert!(matches!(
            log.read(Offset(31), 1024),
            Err(Error::OffsetOutOfRange {
                requested: 31,
                log_start: 0,
                log_end: 30
            })
        ));
        log.delete_segments_before(Offset(9)).unwrap();
        let start = log.log_start_offset();
        assert!(start > Offset(0));
        assert!(matches!(
            log.read(Offset(0), 1024),
            Err(Error::OffsetOutOfRange { requested: 0, .. })
        ));
        assert_eq!(log.read(start, 1).unwrap().slices[0].first_offset, start);
    }

    #[test]
    fn read_to_returns_only_batches_ending_at_or_before_upto() {
        let dir = tempfile::tempdir().unwrap();
        let log = filled(dir.path());
        let info = log.read_to(Offset(0), u32::MAX, Offset(12)).unwrap();
        assert_eq!(info.log_end_offset, Offset(12));
        assert_eq!(info.slices.last().unwrap().next_offset, Offset(12));
        // Inside a batch: that batch is not visible yet.
        let info = log.read_to(Offset(0), u32::MAX, Offset(13)).unwrap();
        assert_eq!(info.slices.last().unwrap().next_offset, Offset(12));
        assert!(matches!(
            log.read_to(Offset(14), 1024, Offset(13)),
            Err(Error::OffsetOutOfRange { .. })
        ));
        let batches = log
            .read_located_batches(Offset(0), u32::MAX, Offset(9))
            .unwrap();
        assert_eq!(batches.len(), 3);
        assert_eq!(batches[0].position, 0);
        assert_eq!(*batches[0].path, log.segments()[0].log_path());
    }

    #[test]
    fn read_batches_reports_a_corrupt_batch_with_its_position() {
        let dir = tempfile::tempdir().unwrap();
        let log = filled(dir.path());
        let segment = log.segments()[0].clone();
        let second = all_batches(&log)[0].len() as u64;
        let mut bytes = std::fs::read(segment.log_path()).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(segment.log_path(), &bytes).unwrap();
        match log.read_batches(Offset(0), u32::MAX) {
            Err(Error::CorruptLog { position, .. }) => assert!(position >= second),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn offset_for_timestamp_finds_the_first_record_at_or_after() {
        let dir = tempfile::tempdir().unwrap();
        let log = filled(dir.path());
        // Batch i holds offsets 3i..3i+3 with timestamps BASE + 1000 i + 0..3.
        assert_eq!(
            log.offset_for_timestamp(0).unwrap(),
            Some((Offset(0), BASE_TIMESTAMP_MS))
        );
        assert_eq!(
            log.offset_for_timestamp(BASE_TIMESTAMP_MS + 4001).unwrap(),
            Some((Offset(13), BASE_TIMESTAMP_MS + 4001))
        );
        assert_eq!(
            log.offset_for_timestamp(BASE_TIMESTAMP_MS + 4003).unwrap(),
            Some((Offset(15), BASE_TIMESTAMP_MS + 5000))
        );
        assert_eq!(
            log.offset_for_timestamp(BASE_TIMESTAMP_MS + 9003).unwrap(),
            None
        );
    }
}
