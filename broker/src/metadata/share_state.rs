//! The metadata-store keys of share-partition state (prefix `s`), their only
//! owner:
//!
//! ```text
//! s group \0 topic \0 partition(u32 BE)     value: the share-partition's state
//! ```
//!
//! The value is [`ShareState`](crate::share::ShareState)'s encoding, drawn and
//! owned by [`crate::share::state`]; [`crate::share::ShareKey`] names the
//! share-partition and turns itself into a key through [`key`] and [`parse_key`].

use super::keys::{self, SHARE_STATE};

/// The prefix of every share-state key.
pub const ALL: &[u8] = &[SHARE_STATE];

/// The metadata-store key of share group `group`'s state for `partition` of
/// `topic`.
pub fn key(group: &str, topic: &str, partition: u32) -> Vec<u8> {
    keys::partition_key(SHARE_STATE, &[group, topic], partition)
}

/// Splits a key written by [`key`] into (group, topic, partition); `None` for
/// anything else.
pub fn parse_key(key: &[u8]) -> Option<(&str, &str, u32)> {
    let rest = key.strip_prefix(ALL)?;
    let (rest, partition) = rest.split_last_chunk::<4>()?;
    let rest = rest.strip_suffix(&[keys::SEPARATOR])?;
    let mut parts = rest.splitn(2, |b| *b == keys::SEPARATOR);
    let group = std::str::from_utf8(parts.next()?).ok()?;
    let topic = std::str::from_utf8(parts.next()?).ok()?;
    Some((group, topic, u32::from_be_bytes(*partition)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_malformed_ones_are_none() {
        let raw = key("billing", "orders.v2", 258);
        assert_eq!(parse_key(&raw), Some(("billing", "orders.v2", 258)));
        assert!(raw < key("billing", "orders.v2", 259));
        for bad in [&b""[..], b"s", b"s\0\0", b"o", b"sgroup\0\0\0\0\x01"] {
            assert_eq!(parse_key(bad), None, "{bad:?}");
        }
    }
}
