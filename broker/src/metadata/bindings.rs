//! The metadata-store keys of topic bindings (prefix `b`), their only owner:
//!
//! ```text
//! b topic \0 key \0 partition(u32 BE)     value: empty (the binding exists)
//! ```
//!
//! A binding key (`key` above) is any string of at most 255 bytes and may
//! itself hold a NUL byte: [`parse`] reads the topic up to the first NUL and
//! the partition from the last 4 bytes, so the key is whatever lies between.
//! [`crate::topics`] keeps the store and each topic's in-memory bindings in step.

use super::keys::{self, BINDING};

/// The prefix of every binding key.
pub const ALL: &[u8] = &[BINDING];

/// The metadata-store key of the binding of `key` to `partition` of `topic`:
/// `b` topic `\0` key `\0` partition (u32 big-endian).
pub fn key(topic: &str, key: &str, partition: u32) -> Vec<u8> {
    keys::partition_key(BINDING, &[topic, key], partition)
}

/// The prefix of every binding of `topic`: `b` topic `\0`.
pub fn topic_prefix(topic: &str) -> Vec<u8> {
    keys::with_fields(BINDING, &[topic], 0)
}

/// A binding parsed from its metadata-store key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredBinding<'a> {
    pub topic: &'a str,
    pub key: &'a str,
    pub partition: u32,
}

/// Reads a key written by [`key`]; `None` for anything else (another
/// prefix, a missing separator, text that is not UTF-8).
pub fn parse(raw: &[u8]) -> Option<StoredBinding<'_>> {
    let rest = raw.strip_prefix(ALL)?;
    let nul = rest.iter().position(|b| *b == keys::SEPARATOR)?;
    let (topic, rest) = rest.split_at(nul);
    let rest = rest.get(1..)?;
    let (key, partition) = rest.split_last_chunk::<4>()?;
    let key = key.strip_suffix(&[keys::SEPARATOR])?;
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
        for (topic, k, partition) in [
            ("orders", "eu.paris", 3),
            ("t", "", 0),
            ("t", "a\0b", 0x0000_0100),
            ("t", "\0", u32::MAX),
        ] {
            let raw = key(topic, k, partition);
            assert!(raw.starts_with(&topic_prefix(topic)));
            assert_eq!(
                parse(&raw),
                Some(StoredBinding {
                    topic,
                    key: k,
                    partition
                })
            );
        }
    }

    #[test]
    fn a_topic_prefix_does_not_catch_a_longer_topic() {
        let a = key("orders", "k", 0);
        let b = key("orders2", "k", 0);
        assert!(a.starts_with(&topic_prefix("orders")));
        assert!(!b.starts_with(&topic_prefix("orders")));
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
            assert_eq!(parse(raw), None, "{raw:?}");
        }
    }
}
