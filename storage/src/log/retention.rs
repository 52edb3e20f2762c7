//! Deleting the oldest segments: retention by size and age, and
//! [`PartitionLog::delete_segments_before`] for the key-value store's
//! compaction. Never the active segment; both run under the `writer` lock.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::UNIX_EPOCH;

use crate::error::{Error, Result};
use crate::log::{PartitionLog, RetentionOutcome, lock};
use crate::offset::Offset;
use crate::segment::Segment;

impl PartitionLog {
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
}

fn file_mtime_ms(path: &Path) -> i64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
#[expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
mod tests {
    use super::*;
    use crate::config::{Durability, LogConfig};
    use crate::log::test_support::{BASE_TIMESTAMP_MS, all_batches, batch, config};

    /// 6 batches of 2 records, one per 1 KiB segment (offsets 0..12).
    fn filled(dir: &Path, config: LogConfig) -> PartitionLog {
        let log = PartitionLog::open(dir, "t-0", config).unwrap();
        for i in 0..6 {
            log.append(&batch(i, 2, 300)).unwrap();
        }
        assert_eq!(log.segments().len(), 6);
        log
    }

    #[test]
    fn retention_by_bytes_deletes_the_oldest_segments_never_the_active_one() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            retention_bytes: Some(1),
            ..config(Durability::None, 1024)
        };
        let log = filled(dir.path(), config);
        let active_bytes = u64::from(log.segments()[5].size());
        let size = log.size_bytes();
        let outcome = log.apply_retention(BASE_TIMESTAMP_MS).unwrap();
        assert_eq!(outcome.segments_deleted, 5);
        assert_eq!(outcome.bytes_deleted, size - active_bytes);
        assert_eq!(outcome.log_start_offset, Offset(10));
        assert_eq!(log.log_start_offset(), Offset(10));
        assert_eq!(log.segments().len(), 1);
        assert_eq!(all_batches(&log).len(), 1);
        assert_eq!(log.stats().segments_deleted.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn retention_by_time_goes_by_the_newest_record_of_each_segment() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            retention_ms: Some(10_000),
            ..config(Durability::None, 1024)
        };
        let log = filled(dir.path(), config);
        // Batch i's newest record is at BASE + 1000 i + 1: at BASE + 12_500 the
        // batches 0..=2 are older than 10 s.
        let outcome = log.apply_retention(BASE_TIMESTAMP_MS + 12_500).unwrap();
        assert_eq!(outcome.segments_deleted, 3);
        assert_eq!(log.log_start_offset(), Offset(6));
        // Nothing is old enough any more.
        let again = log.apply_retention(BASE_TIMESTAMP_MS + 12_500).unwrap();
        assert_eq!(again.segments_deleted, 0);
        assert_eq!(again.log_start_offset, Offset(6));
    }

    #[test]
    fn delete_segments_before_keeps_every_record_at_or_above_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        let log = filled(dir.path(), config(Durability::None, 1024));
        // Offset 5 lies in the segment holding 4..6: it stays.
        let outcome = log.delete_segments_before(Offset(5)).unwrap();
        assert_eq!(outcome.segments_deleted, 2);
        assert_eq!(log.log_start_offset(), Offset(4));
        // Never the active segment, even past the log end.
        log.delete_segments_before(Offset(100)).unwrap();
        assert_eq!(log.log_start_offset(), Offset(10));
        assert_eq!(log.log_end_offset(), Offset(12));
        assert_eq!(all_batches(&log).len(), 1);
    }

    #[test]
    fn a_closed_log_deletes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let log = filled(dir.path(), config(Durability::None, 1024));
        log.close().unwrap();
        assert!(matches!(
            log.apply_retention(i64::MAX),
            Err(Error::Closed(_))
        ));
        assert!(matches!(
            log.delete_segments_before(Offset(12)),
            Err(Error::Closed(_))
        ));
        assert_eq!(log.segments().len(), 6);
    }
}
