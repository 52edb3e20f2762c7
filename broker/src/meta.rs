//! The keys of the broker's metadata store ([`Shared::kv`](crate::server::Shared::kv)),
//! one prefix byte per kind, then fields separated by `\0` (topic and group names
//! never contain a NUL byte: topic names are `[A-Za-z0-9._-]`, group names are
//! checked by the coordinator), so a prefix scan finds one group's or one topic's
//! entries:
//!
//! | key                                   | value                         | owner |
//! |---------------------------------------|-------------------------------|-------|
//! | `o` group `\0` topic `\0` partition   | committed offset (see `groups`) | consumer groups |
//! | `b` topic `\0` key `\0` partition       | empty: the binding exists     | routing ([`binding_key`]) |
//! | `s` group `\0` topic `\0` partition | a share-partition's state (see `share::state`) | share groups |
//! | `u` user                              | the user's SCRAM credential and superuser flag (see `auth`) | users |
//! | `a` user `\0` resource `\0` permission | empty: the ACL entry exists (see `auth`) | ACLs |
//!
//! `partition` is 4 bytes big-endian, so a partition's keys sort numerically.
//!
//! A binding key (`key` above) is any string of at most 255 bytes and may itself
//! hold a NUL byte: [`parse_binding_key`] reads the topic up to the first NUL and
//! the partition from the last 4 bytes, so the key is whatever lies between.

/// Prefix of committed consumer-group offsets.
pub const OFFSET_PREFIX: u8 = b'o';
/// Prefix of topic bindings.
pub const BINDING_PREFIX: u8 = b'b';
/// Prefix of share-group state.
pub const SHARE_PREFIX: u8 = b's';
/// Prefix of users ([`crate::auth`]).
pub const USER_PREFIX: u8 = b'u';
/// Prefix of ACL entries ([`crate::auth`]).
pub const ACL_PREFIX: u8 = b'a';

/// The metadata-store key of the binding of `key` to `partition` of `topic`:
/// `b` topic `\0` key `\0` partition (u32 big-endian).
pub fn binding_key(topic: &str, key: &str, partition: u32) -> Vec<u8> {
    let mut out = binding_prefix(topic);
    out.reserve(key.len() + 5);
    out.extend_from_slice(key.as_bytes());
    out.push(0);
    out.extend_from_slice(&partition.to_be_bytes());
    out
}

/// The prefix of every binding of `topic`: `b` topic `\0`.
pub fn binding_prefix(topic: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(topic.len() + 2);
    out.push(BINDING_PREFIX);
    out.extend_from_slice(topic.as_bytes());
    out.push(0);
    out
}

/// A binding parsed from its metadata-store key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredBinding<'a> {
    pub topic: &'a str,
    pub key: &'a str,
    pub partition: u32,
}

/// Reads a key written by [`binding_key`]; `None` for anything else (another
/// prefix, a missing separator, text that is not UTF-8).
pub fn parse_binding_key(raw: &[u8]) -> Option<StoredBinding<'_>> {
    let rest = raw.strip_prefix(&[BINDING_PREFIX])?;
    let nul = rest.iter().position(|b| *b == 0)?;
    let (topic, rest) = rest.split_at(nul);
    let rest = rest.get(1..)?;
    let (key, partition) = rest.split_last_chunk::<4>()?;
    let key = key.strip_suffix(&[0])?;
    Some(StoredBinding {
        topic: std::str::from_utf8(topic).ok()?,
        key: std::str::from_utf8(key).ok()?,
        partition: u32::from_be_bytes(*partition),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_keys_round_trip_even_with_nul_in_the_key() {
        for (topic, key, partition) in [
            ("orders", "eu.paris", 3),
            ("t", "", 0),
            ("t", "a\0b", 0x0000_0100),
            ("t", "\0", u32::MAX),
        ] {
            let raw = binding_key(topic, key, partition);
            assert!(raw.starts_with(&binding_prefix(topic)));
            assert_eq!(
                parse_binding_key(&raw),
                Some(StoredBinding {
                    topic,
                    key,
                    partition
                })
            );
        }
    }

    #[test]
    fn a_topic_prefix_does_not_catch_a_longer_topic() {
        let a = binding_key("orders", "k", 0);
        let b = binding_key("orders2", "k", 0);
        assert!(a.starts_with(&binding_prefix("orders")));
        assert!(!b.starts_with(&binding_prefix("orders")));
    }

    #[test]
    fn malformed_binding_keys_are_none() {
        for raw in [
            &b""[..],
            b"b",
            b"btopic",
            b"btopic\0",
            b"btopic\0key",
            b"btopic\0k\x01\0\0\0\0",
            b"o\0k\0\0\0\0\0",
            b"b\xff\0k\0\0\0\0\0",
        ] {
            assert_eq!(parse_binding_key(raw), None, "{raw:?}");
        }
    }
}
