//! The metadata-store keys and values of committed consumer-group offsets
//! (prefix `o`), their only owner. The group coordinator
//! ([`crate::groups::coordinator`]) reads and writes them through these.
//!
//! ```text
//! key:   o group \0 topic \0 partition(u32 BE)
//! value: version u8 = 0 | offset u64 | commit_time_ms i64 | metadata_len i32 (-1 = null) | metadata
//! ```
//!
//! Big-endian throughout; the store's own CRCs cover the bytes.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::keys::{self, OFFSET};

/// The prefix of every committed-offset key.
pub const ALL: &[u8] = &[OFFSET];

/// Version byte of a stored committed offset.
const VALUE_VERSION: u8 = 0;
/// Bytes of a value with no metadata: version, offset, time, length.
const VALUE_HEAD_BYTES: usize = 1 + 8 + 8 + 4;

/// The store key of a committed offset.
pub fn key(group: &str, topic: &str, partition: u32) -> Vec<u8> {
    keys::partition_key(OFFSET, &[group, topic], partition)
}

/// The prefix of every committed offset of `group`: `o` group `\0`.
pub fn group_prefix(group: &str) -> Vec<u8> {
    keys::with_fields(OFFSET, &[group], 0)
}

/// Splits a committed-offset key into (group, topic, partition); `None` for
/// anything else.
pub fn parse_key(key: &[u8]) -> Option<(&str, &str, u32)> {
    let rest = key.strip_prefix(ALL)?;
    let (rest, partition) = rest.split_last_chunk::<4>()?;
    let rest = rest.strip_suffix(&[keys::SEPARATOR])?;
    let split = rest.iter().position(|&b| b == keys::SEPARATOR)?;
    let group = std::str::from_utf8(rest.get(..split)?).ok()?;
    let topic = std::str::from_utf8(rest.get(split + 1..)?).ok()?;
    Some((group, topic, u32::from_be_bytes(*partition)))
}

/// A committed offset as stored (see the module docs).
pub fn encode(offset: u64, commit_time_ms: i64, metadata: Option<&str>) -> Bytes {
    let meta = metadata.map(str::as_bytes);
    let mut b = BytesMut::with_capacity(VALUE_HEAD_BYTES + meta.map_or(0, <[u8]>::len));
    b.put_u8(VALUE_VERSION);
    b.put_u64(offset);
    b.put_i64(commit_time_ms);
    match meta {
        Some(m) => {
            // Protocol strings are at most 65 535 bytes, far below i32::MAX.
            b.put_i32(i32::try_from(m.len()).unwrap_or(i32::MAX));
            b.put_slice(m);
        }
        None => b.put_i32(-1),
    }
    b.freeze()
}

/// A stored committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOffset {
    pub offset: u64,
    pub commit_time_ms: i64,
    pub metadata: Option<String>,
}

/// Parses [`encode`]'s bytes; `None` if they are not such a value.
pub fn decode(mut b: &[u8]) -> Option<StoredOffset> {
    if b.remaining() < VALUE_HEAD_BYTES || b.get_u8() != VALUE_VERSION {
        return None;
    }
    let offset = b.get_u64();
    let commit_time_ms = b.get_i64();
    let len = b.get_i32();
    let metadata = if len < 0 {
        None
    } else {
        let len = usize::try_from(len).ok()?;
        Some(String::from_utf8(b.get(..len)?.to_vec()).ok()?)
    };
    Some(StoredOffset {
        offset,
        commit_time_ms,
        metadata,
    })
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn offset_keys_round_trip_and_sort_by_partition() {
        let k = key("billing", "orders.eu", 258);
        assert_eq!(parse_key(&k), Some(("billing", "orders.eu", 258)));
        assert!(key("g", "t", 2) < key("g", "t", 10));
        assert!(key("g", "t", 0).starts_with(&group_prefix("g")));
        assert!(!key("g2", "t", 0).starts_with(&group_prefix("g")));
        assert_eq!(parse_key(b"ogroup"), None);
        assert_eq!(parse_key(b"x"), None);
    }

    #[test]
    fn offset_values_round_trip_and_garbage_is_none() {
        for meta in [None, Some(""), Some("host-a")] {
            let v = encode(42, 1_700_000_000_000, meta);
            let d = decode(&v).unwrap();
            assert_eq!(d.offset, 42);
            assert_eq!(d.commit_time_ms, 1_700_000_000_000);
            assert_eq!(d.metadata.as_deref(), meta);
        }
        assert_eq!(decode(b""), None);
        assert_eq!(decode(&[1; 21]), None);
        let mut v = encode(1, 0, Some("abc")).to_vec();
        v.truncate(v.len() - 1);
        assert_eq!(decode(&v), None);
    }

    #[test]
    fn a_value_keeps_its_bytes() {
        assert_eq!(
            encode(0x0102, -2, Some("ab")).as_ref(),
            b"\0\0\0\0\0\0\0\x01\x02\xff\xff\xff\xff\xff\xff\xff\xfe\0\0\0\x02ab"
        );
        assert_eq!(
            encode(7, 0, None).as_ref(),
            b"\0\0\0\0\0\0\0\0\x07\0\0\0\0\0\0\0\0\xff\xff\xff\xff"
        );
    }
}
