//! The time index of one segment: where to start scanning for a timestamp.
//!
//! ```text
//! +-------------------+----------------------+
//! | max_timestamp: i64| relative_offset: u32 |  12 bytes per entry, big-endian, no checksum
//! +-------------------+----------------------+  (rebuilt from the log after a crash)
//! ```
//!
//! An entry `(t, o)` means: every record at an offset below `o` has a timestamp of
//! at most `t`. It is added beside an offset-index entry when the segment's maximum
//! timestamp has grown since the last entry, so both columns strictly increase and
//! `o` is always the base offset of a batch (and has an offset-index entry).
//!
//! To find the first record with timestamp `>= T`, take the last entry with
//! `t < T`: every record before its offset is older than `T`, so scanning can start
//! at that offset.
//!
//! Not thread-safe; see [`crate::index_file`].

use std::cmp::Ordering;

use crate::error::Result;
use crate::index_file::{Index, IndexEntry};
use crate::offset::{Offset, RelativeOffset};

/// One entry: every record before `relative_offset` has a timestamp of at most
/// `max_timestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    pub max_timestamp: i64,
    pub relative_offset: RelativeOffset,
}

impl IndexEntry for TimeEntry {
    const BYTES: usize = 12;

    fn decode(entry: &[u8]) -> Self {
        let mut ts = [0u8; 8];
        let mut rel = [0u8; 4];
        if let (Some(t), Some(r)) = (entry.get(..8), entry.get(8..12)) {
            ts.copy_from_slice(t);
            rel.copy_from_slice(r);
        }
        TimeEntry {
            max_timestamp: i64::from_be_bytes(ts),
            relative_offset: RelativeOffset(u32::from_be_bytes(rel)),
        }
    }

    fn relative_offset(&self) -> RelativeOffset {
        self.relative_offset
    }
}

/// One segment's time index.
pub type TimeIndex = Index<TimeEntry>;

impl Index<TimeEntry> {
    /// Entry `i` as (timestamp, absolute offset).
    pub fn entry(&self, i: usize) -> Option<(i64, Offset)> {
        let e = self.raw_entry(i)?;
        Some((
            e.max_timestamp,
            e.relative_offset.absolute(self.base_offset),
        ))
    }

    /// The last entry, if any.
    pub fn last_entry(&self) -> Option<(i64, Offset)> {
        self.entry(self.entries().checked_sub(1)?)
    }

    /// Adds `(timestamp, offset)` if `timestamp` is above the last entry's; the
    /// offset must then be above the last entry's too.
    ///
    /// # Errors
    /// `CorruptIndex` if the offset goes backwards or the index is full.
    pub fn maybe_append(&mut self, timestamp: i64, offset: Offset) -> Result<()> {
        if let Some((last_ts, last_offset)) = self.last_entry() {
            if timestamp <= last_ts {
                return Ok(());
            }
            if offset <= last_offset {
                return Err(self.corrupt(format!(
                    "offset {offset} after {last_offset} is out of order"
                )));
            }
        }
        let rel = offset.relative_to(self.base_offset).ok_or_else(|| {
            self.corrupt(format!(
                "offset {offset} does not fit segment {}",
                self.base_offset
            ))
        })?;
        let mut entry = [0u8; TimeEntry::BYTES];
        entry[..8].copy_from_slice(&timestamp.to_be_bytes());
        entry[8..].copy_from_slice(&rel.0.to_be_bytes());
        self.file.push(&entry)
    }

    /// The offset to start scanning from for the first record with timestamp
    /// `>= target`: the offset of the last entry with timestamp `< target`, or the
    /// base offset.
    pub fn lookup(&self, target: i64) -> Offset {
        self.largest_le(|e| e.max_timestamp.cmp(&target).then(Ordering::Greater))
            .and_then(|i| self.entry(i))
            .map_or(self.base_offset, |(_, offset)| offset)
    }

    /// The last entry's offset is above the base and below `next_offset`.
    ///
    /// # Errors
    /// `CorruptIndex`; the caller rebuilds.
    pub fn sanity_check(&self, next_offset: Offset) -> Result<()> {
        match self.last_entry() {
            Some((_, offset)) if offset <= self.base_offset || offset >= next_offset => Err(self
                .corrupt(format!(
                    "last entry offset {offset} outside segment {}..{next_offset}",
                    self.base_offset
                ))),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn lookup_returns_last_entry_strictly_older_than_target() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = TimeIndex::open(&dir.path().join("t.timeindex"), Offset(100)).unwrap();
        idx.resize(12 * 100).unwrap();
        assert_eq!(idx.lookup(5), Offset(100), "empty index starts at base");
        idx.maybe_append(1000, Offset(110)).unwrap();
        idx.maybe_append(900, Offset(120)).unwrap(); // not larger: skipped
        idx.maybe_append(2000, Offset(130)).unwrap();
        assert_eq!(idx.entries(), 2);
        assert_eq!(idx.lookup(999), Offset(100));
        assert_eq!(
            idx.lookup(1000),
            Offset(100),
            "records before 110 may equal 1000"
        );
        assert_eq!(idx.lookup(1001), Offset(110));
        assert_eq!(idx.lookup(5000), Offset(130));
        idx.truncate_to(Offset(130));
        assert_eq!(idx.last_entry(), Some((1000, Offset(110))));
        assert!(idx.sanity_check(Offset(111)).is_ok());
        assert!(idx.sanity_check(Offset(110)).is_err());
    }
}
