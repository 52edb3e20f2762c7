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

use std::path::Path;

use crate::error::{Error, Result};
use crate::index_file::IndexFile;
use crate::offset::{Offset, RelativeOffset};

const ENTRY_BYTES: usize = 12;

/// One segment's time index.
#[derive(Debug)]
pub struct TimeIndex {
    base_offset: Offset,
    file: IndexFile,
}

fn decode(entry: &[u8]) -> (i64, RelativeOffset) {
    let mut ts = [0u8; 8];
    let mut rel = [0u8; 4];
    if let (Some(t), Some(r)) = (entry.get(..8), entry.get(8..12)) {
        ts.copy_from_slice(t);
        rel.copy_from_slice(r);
    }
    (
        i64::from_be_bytes(ts),
        RelativeOffset(u32::from_be_bytes(rel)),
    )
}

impl TimeIndex {
    /// Opens or creates the time index of the segment based at `base_offset`.
    ///
    /// # Errors
    /// I/O errors, or `CorruptIndex` for a length that is not whole entries.
    pub fn open(path: &Path, base_offset: Offset) -> Result<TimeIndex> {
        Ok(TimeIndex {
            base_offset,
            file: IndexFile::open(path, ENTRY_BYTES)?,
        })
    }

    /// Number of entries.
    pub fn entries(&self) -> usize {
        self.file.entries()
    }

    /// True when another entry needs a resize.
    pub fn is_full(&self) -> bool {
        self.file.is_full()
    }

    /// Entry `i` as (timestamp, absolute offset).
    pub fn entry(&self, i: usize) -> Option<(i64, Offset)> {
        let (ts, rel) = decode(self.file.entry(i)?);
        Some((ts, rel.absolute(self.base_offset)))
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
                return Err(Error::CorruptIndex {
                    path: self.file.path().to_path_buf(),
                    reason: format!("offset {offset} after {last_offset} is out of order"),
                });
            }
        }
        let rel = offset
            .relative_to(self.base_offset)
            .ok_or_else(|| Error::CorruptIndex {
                path: self.file.path().to_path_buf(),
                reason: format!("offset {offset} does not fit segment {}", self.base_offset),
            })?;
        let mut entry = [0u8; ENTRY_BYTES];
        entry[..8].copy_from_slice(&timestamp.to_be_bytes());
        entry[8..].copy_from_slice(&rel.0.to_be_bytes());
        self.file.push(&entry)
    }

    /// The offset to start scanning from for the first record with timestamp
    /// `>= target`: the offset of the last entry with timestamp `< target`, or the
    /// base offset.
    pub fn lookup(&self, target: i64) -> Offset {
        self.file
            .largest_le(|e| decode(e).0.cmp(&target).then(std::cmp::Ordering::Greater))
            .and_then(|i| self.entry(i))
            .map_or(self.base_offset, |(_, offset)| offset)
    }

    /// Removes every entry with offset `>= offset`.
    pub fn truncate_to(&mut self, offset: Offset) {
        let keep = match offset.relative_to(self.base_offset) {
            None => 0,
            Some(rel) => self
                .file
                .largest_le(|e| decode(e).1.cmp(&rel).then(std::cmp::Ordering::Greater))
                .map_or(0, |i| i + 1),
        };
        self.file.truncate_entries(keep);
    }

    /// Removes every entry.
    pub fn reset(&mut self) {
        self.file.truncate_entries(0);
    }

    /// The last entry's offset is above the base and below `next_offset`.
    ///
    /// # Errors
    /// `CorruptIndex`; the caller rebuilds.
    pub fn sanity_check(&self, next_offset: Offset) -> Result<()> {
        match self.last_entry() {
            Some((_, offset)) if offset <= self.base_offset || offset >= next_offset => {
                Err(Error::CorruptIndex {
                    path: self.file.path().to_path_buf(),
                    reason: format!(
                        "last entry offset {offset} outside segment {}..{next_offset}",
                        self.base_offset
                    ),
                })
            }
            _ => Ok(()),
        }
    }

    /// Preallocates the file.
    ///
    /// # Errors
    /// I/O errors; `DiskFull`.
    pub fn resize(&mut self, bytes: u64) -> Result<()> {
        self.file.resize(bytes)
    }

    /// Shrinks the file to its valid entries.
    ///
    /// # Errors
    /// I/O errors.
    pub fn trim(&mut self) -> Result<()> {
        self.file.trim()
    }

    /// Flushes the map and the file to disk.
    ///
    /// # Errors
    /// I/O errors.
    pub fn flush(&self) -> Result<()> {
        self.file.flush()
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
