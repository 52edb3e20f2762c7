//! Offset newtypes, so absolute and relative offsets never mix.
//!
//! - [`Offset`]: an absolute record offset in a partition (0, 1, 2, ...).
//! - [`RelativeOffset`]: an offset minus a base offset, when the difference fits
//!   a `u32`: what storage's indexes store (relative to their segment's base
//!   offset), as a batch's records carry deltas from the batch's base offset.
//!
//! They live here, below storage, so that the wire types and the client can use
//! them too. Byte positions inside a segment file (`FilePosition`) are storage's
//! alone and stay there. [`Offset::relative_to`] and [`RelativeOffset::absolute`]
//! are the only translations between the two kinds.
//!
//! Plain `Copy` values: thread-safe.

use std::fmt;

/// An absolute record offset within a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Offset(pub u64);

/// An offset relative to a base offset (for storage's indexes, the base offset
/// of their segment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct RelativeOffset(pub u32);

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
    /// The absolute offset relative to `base`.
    pub fn absolute(self, base: Offset) -> Offset {
        Offset(base.0 + u64::from(self.0))
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_to_is_none_below_the_base_or_past_u32() {
        let base = Offset(100);
        assert_eq!(Offset(100).relative_to(base), Some(RelativeOffset(0)));
        assert_eq!(Offset(105).relative_to(base), Some(RelativeOffset(5)));
        assert_eq!(Offset(99).relative_to(base), None);
        assert_eq!(
            Offset(100 + u64::from(u32::MAX)).relative_to(base),
            Some(RelativeOffset(u32::MAX))
        );
        assert_eq!(Offset(101 + u64::from(u32::MAX)).relative_to(base), None);
    }

    #[test]
    fn absolute_undoes_relative_to() {
        let base = Offset(1 << 40);
        for rel in [0, 1, 7, u32::MAX] {
            let abs = RelativeOffset(rel).absolute(base);
            assert_eq!(abs.relative_to(base), Some(RelativeOffset(rel)));
        }
    }

    #[test]
    fn plus_saturates_and_display_is_the_number() {
        assert_eq!(Offset(u64::MAX - 1).plus(5), Offset(u64::MAX));
        assert_eq!(Offset(41).plus(1).to_string(), "42");
    }
}
