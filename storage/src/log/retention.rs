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
