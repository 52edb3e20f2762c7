//! Offset newtypes, so absolute and relative offsets and file positions never mix.
//!
//! - [`Offset`]: an absolute record offset in a partition (0, 1, 2, ...).
//! - [`RelativeOffset`]: an offset minus its segment's base offset; what indexes store.
//! - [`FilePosition`]: a byte position inside one segment file.
//!
//! `Offset` and `RelativeOffset` are defined in `warren_protocol::offset` (so the
//! wire types and the client can share them) and re-exported here; `FilePosition`
//! is storage's own: nothing outside a segment file has byte positions in it.
//!
//! Only segment code translates between relative and absolute offsets.

use std::fmt;

pub use warren_protocol::offset::{Offset, RelativeOffset};

/// A byte position within a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FilePosition(pub u32);

impl fmt::Display for FilePosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
