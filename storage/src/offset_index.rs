//! The sparse offset index of one segment: offset -> byte position of the batch
//! that starts at that offset.
//!
//! ```text
//! +----------------------+---------------+
//! | relative_offset: u32 | position: u32 |  8 bytes per entry, big-endian, no checksum
//! +----------------------+---------------+  (rebuilt from the log after a crash)
//! ```
//!
//! An entry is added for the batch about to be written whenever at least
//! `index_interval_bytes` of batches were written since the previous entry. The
//! first batch of a segment (position 0) is never indexed, so every valid entry has
//! a relative offset and a position above 0, and both strictly increase: a zeroed,
//! preallocated tail left by a crash fails [`OffsetIndex::sanity_check`].
//!
//! Not thread-safe; see [`crate::index_file`].

use crate::error::Result;
use crate::index_file::{Index, IndexEntry};
use crate::offset::{FilePosition, Offset, RelativeOffset};

/// One entry: a batch's offset relative to the segment base, and its position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEntry {
    pub relative_offset: RelativeOffset,
    pub position: FilePosition,
}

impl IndexEntry for OffsetEntry {
    const BYTES: usize = 8;

    fn decode(entry: &[u8]) -> Self {
        let mut rel = [0u8; 4];
        let mut pos = [0u8; 4];
        if let (Some(r), Some(p)) = (entry.get(..4), entry.get(4..8)) {
            rel.copy_from_slice(r);
            pos.copy_from_slice(p);
        }
        OffsetEntry {
            relative_offset: RelativeOffset(u32::from_be_bytes(rel)),
            position: FilePosition(u32::from_be_bytes(pos)),
        }
    }

    fn relative_offset(&self) -> RelativeOffset {
        self.relative_offset
    }
}

/// One segment's offset index.
pub type OffsetIndex = Index<OffsetEntry>;

impl Index<OffsetEntry> {
    /// Entry `i` as (absolute offset, position).
    pub fn entry(&self, i: usize) -> Option<(Offset, FilePosition)> {
        let e = self.raw_entry(i)?;
        Some((e.relative_offset.absolute(self.base_offset), e.position))
    }

    /// The last entry, if any.
    pub fn last_entry(&self) -> Option<(Offset, FilePosition)> {
        self.entry(self.entries().checked_sub(1)?)
    }

    /// Adds `offset -> position`. Both must exceed the last entry's.
    ///
    /// # Errors
    /// `CorruptIndex` if out of order or full (callers roll before it fills).
    pub fn append(&mut self, offset: Offset, position: FilePosition) -> Result<()> {
        let rel = offset.relative_to(self.base_offset).ok_or_else(|| {
            self.corrupt(format!(
                "offset {offset} does not fit segment {}",
                self.base_offset
            ))
        })?;
        if let Some((last_offset, last_pos)) = self.last_entry()
            && (offset <= last_offset || position <= last_pos)
        {
            return Err(self.corrupt(format!(
                "entry ({offset}, {position}) after ({last_offset}, {last_pos}) is out of order"
            )));
        }
        let mut entry = [0u8; OffsetEntry::BYTES];
        entry[..4].copy_from_slice(&rel.0.to_be_bytes());
        entry[4..].copy_from_slice(&position.0.to_be_bytes());
        self.file.push(&entry)
    }

    /// The entry with the greatest offset `<= target`, or `(base_offset, 0)` when
    /// every entry is greater (Kafka's `lookup`).
    pub fn lookup(&self, target: Offset) -> (Offset, FilePosition) {
        let Some(rel) = target.relative_to(self.base_offset) else {
            return (self.base_offset, FilePosition(0));
        };
        self.largest_le(|e| e.relative_offset.cmp(&rel))
            .and_then(|i| self.entry(i))
            .unwrap_or((self.base_offset, FilePosition(0)))
    }

    /// The entry with the greatest position `<= position`, or `(base_offset, 0)`.
    pub fn lookup_by_position(&self, position: FilePosition) -> (Offset, FilePosition) {
        self.largest_le(|e| e.position.cmp(&position))
            .and_then(|i| self.entry(i))
            .unwrap_or((self.base_offset, FilePosition(0)))
    }

    /// Checks the last entry against the log: its offset and position are above
    /// zero and its position is inside the log.
    ///
    /// # Errors
    /// `CorruptIndex` with the reason; the caller rebuilds.
    pub fn sanity_check(&self, log_bytes: u64) -> Result<()> {
        let Some((offset, position)) = self.last_entry() else {
            return Ok(());
        };
        if offset <= self.base_offset || position.0 == 0 || u64::from(position.0) >= log_bytes {
            return Err(self.corrupt(format!(
                "last entry ({offset}, {position}) is not inside the {log_bytes}-byte log \
                 of segment {}",
                self.base_offset
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests")]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::error::Error;

    fn index(dir: &tempfile::TempDir, base: u64) -> OffsetIndex {
        let mut idx = OffsetIndex::open(&dir.path().join("i.index"), Offset(base)).unwrap();
        idx.resize(8 * 1000).unwrap();
        idx
    }

    #[test]
    fn lookup_on_empty_index_returns_base_offset() {
        let dir = tempfile::tempdir().unwrap();
        let idx = index(&dir, 100);
        assert_eq!(idx.lookup(Offset(500)), (Offset(100), FilePosition(0)));
        assert_eq!(idx.lookup(Offset(3)), (Offset(100), FilePosition(0)));
    }

    #[test]
    fn append_out_of_order_fails() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = index(&dir, 0);
        idx.append(Offset(10), FilePosition(4096)).unwrap();
        assert!(idx.append(Offset(10), FilePosition(9000)).is_err());
        assert!(idx.append(Offset(11), FilePosition(4096)).is_err());
        assert!(idx.append(Offset(9), FilePosition(9000)).is_err());
        assert_eq!(idx.entries(), 1);
    }

    #[test]
    fn trim_and_reopen_keeps_entries_and_zeroed_tail_fails_sanity_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.index");
        {
            let mut idx = index(&dir, 0);
            idx.append(Offset(5), FilePosition(100)).unwrap();
            idx.append(Offset(9), FilePosition(300)).unwrap();
            idx.trim().unwrap();
        }
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 16);
        let idx = OffsetIndex::open(&path, Offset(0)).unwrap();
        assert_eq!(idx.entries(), 2);
        assert!(idx.sanity_check(1000).is_ok());
        assert!(idx.sanity_check(300).is_err(), "position past the log");
        drop(idx);
        // A preallocated index left by a crash: valid entries then zeros.
        let mut idx = OffsetIndex::open(&path, Offset(0)).unwrap();
        idx.resize(80).unwrap();
        drop(idx);
        let idx = OffsetIndex::open(&path, Offset(0)).unwrap();
        assert_eq!(idx.entries(), 10);
        assert!(idx.sanity_check(1000).is_err());
        std::fs::write(&path, [0u8; 12]).unwrap();
        assert!(matches!(
            OffsetIndex::open(&path, Offset(0)),
            Err(Error::CorruptIndex { .. })
        ));
    }

    #[test]
    fn truncate_to_drops_entries_at_and_after() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = index(&dir, 0);
        for i in 1..=10u32 {
            idx.append(Offset(u64::from(i) * 10), FilePosition(i * 100))
                .unwrap();
        }
        idx.truncate_to(Offset(50));
        assert_eq!(idx.last_entry(), Some((Offset(40), FilePosition(400))));
        idx.truncate_to(Offset(41));
        assert_eq!(idx.entries(), 4);
        idx.truncate_to(Offset(0));
        assert_eq!(idx.entries(), 0);
    }

    proptest! {
        /// "The index should give the same answer as the sorted map" (Kafka).
        #[test]
        fn lookup_matches_a_sorted_map(
            gaps in proptest::collection::vec((1u64..50, 1u32..5000), 0..300),
            targets in proptest::collection::vec(0u64..20_000, 1..50),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let base = 1000;
            let mut idx = index(&dir, base);
            let mut model = BTreeMap::new();
            let (mut off, mut pos) = (base, 0u32);
            for (g, p) in gaps {
                off += g;
                pos += p;
                idx.append(Offset(off), FilePosition(pos)).unwrap();
                model.insert(off, pos);
            }
            for t in targets {
                let expected = model
                    .range(..=t)
                    .next_back()
                    .map_or((Offset(base), FilePosition(0)), |(o, p)| (Offset(*o), FilePosition(*p)));
                prop_assert_eq!(idx.lookup(Offset(t)), expected);
                let by_pos = model
                    .iter()
                    .rfind(|(_, p)| **p <= t as u32)
                    .map_or((Offset(base), FilePosition(0)), |(o, p)| (Offset(*o), FilePosition(*p)));
                prop_assert_eq!(idx.lookup_by_position(FilePosition(t as u32)), by_pos);
            }
        }
    }
}
