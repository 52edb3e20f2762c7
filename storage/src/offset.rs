//! Offset newtypes, so absolute and relative offsets and file positions never mix.
//!
//! - [`Offset`]: an absolute record offset in a partition (0, 1, 2, ...).
//! - [`RelativeOffset`]: an offset minus its segment's base offset; what indexes store.
//! - [`FilePosition`]: a byte position inside one segment file.
//!
//! Only segment code translates between relative and absolute offsets.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An absolute record offset within a partition.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Offset(pub u64);

/// An offset relative to its segment's base offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct RelativeOffset(pub u32);

/// A byte position within a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FilePosition(pub u32);

impl Offset {
    /// `self - base` when it fits a [`RelativeOffset`].
    pub fn relative_to(self, base: Offset) -> Option<RelativeOffset> {
        self.0
            .checked_sub(base.0)
            .and_then(|d| u32::try_from(d).ok())
            .map(RelativeOffset)
    }

    /// `self + n`, saturating.
    pub fn plus(self, n: u64) -> Offset {
        Offset(self.0.saturating_add(n))
    }
}

impl RelativeOffset {
    /// The absolute offset in a segment based at `base`.
    pub fn absolute(self, base: Offset) -> Offset {
        Offset(base.0 + u64::from(self.0))
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for FilePosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
