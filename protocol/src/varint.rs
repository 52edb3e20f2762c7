//! Zig-zag varints (i32) and varlongs (i64), as in Kafka's record format and protobuf.
//!
//! ```text
//! zigzag(n) = (n << 1) ^ (n >> 31)        (>> 63 for i64)
//! then 7 bits per byte, least significant group first, high bit = "more follows"
//! i32: at most 5 bytes; i64: at most 10 bytes
//! ```
//!
//! [`Reader`] is a cursor over a byte slice whose every read is bounds-checked:
//! running off the end is an error, never a panic.

use bytes::BufMut;

use crate::error::{Error, Result};

/// Number of bytes `put_varint(v)` writes.
pub fn varint_len(v: i32) -> usize {
    unsigned_len(u64::from(zigzag32(v)))
}

/// Number of bytes `put_varlong(v)` writes.
pub fn varlong_len(v: i64) -> usize {
    unsigned_len(zigzag64(v))
}

fn unsigned_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn zigzag32(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn put_unsigned(buf: &mut impl BufMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// Appends `v` as a zig-zag varint.
pub fn put_varint(buf: &mut impl BufMut, v: i32) {
    put_unsigned(buf, u64::from(zigzag32(v)));
}

/// Appends `v` as a zig-zag varlong.
pub fn put_varlong(buf: &mut impl BufMut, v: i64) {
    put_unsigned(buf, zigzag64(v));
}

/// A bounds-checked cursor over a byte slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader positioned at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes left to read.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn read_unsigned(&mut self, max_bytes: usize) -> Result<u64> {
        let mut value: u64 = 0;
        for i in 0..max_bytes {
            let byte = *self.buf.get(self.pos).ok_or(Error::BadVarint)?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Error::BadVarint)
    }

    /// Reads a zig-zag varint; more than 5 bytes or a value past `u32` is an error.
    pub fn read_varint(&mut self) -> Result<i32> {
        let raw = self.read_unsigned(5)?;
        let raw = u32::try_from(raw).map_err(|_| Error::BadVarint)?;
        Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    /// Reads a zig-zag varlong; more than 10 bytes is an error.
    pub fn read_varlong(&mut self) -> Result<i64> {
        let raw = self.read_unsigned(10)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// Reads one signed byte.
    pub fn read_i8(&mut self) -> Result<i8> {
        let byte = *self.buf.get(self.pos).ok_or(Error::Truncated {
            what: "record attributes",
            needed: 1,
            available: 0,
        })?;
        self.pos += 1;
        Ok(byte as i8)
    }

    /// Returns the next `len` bytes, or `LengthOutOfBounds` naming `field`.
    pub fn read_slice(&mut self, field: &'static str, len: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|end| *end <= self.buf.len())
            .ok_or(Error::LengthOutOfBounds {
                field,
                value: len as i64,
                available: self.remaining(),
            })?;
        let slice = self
            .buf
            .get(self.pos..end)
            .ok_or(Error::LengthOutOfBounds {
                field,
                value: len as i64,
                available: self.remaining(),
            })?;
        self.pos = end;
        Ok(slice)
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_encodings_match_kafka() {
        // From Kafka's ByteUtilsTest: zig-zag of 0, -1, 1, -2, 2 -> 0, 1, 2, 3, 4.
        for (v, expected) in [
            (0, vec![0u8]),
            (-1, vec![1]),
            (1, vec![2]),
            (-2, vec![3]),
            (64, vec![0x80, 0x01]),
        ] {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            assert_eq!(buf, expected, "varint {v}");
            assert_eq!(varint_len(v), expected.len());
        }
        let mut buf = Vec::new();
        put_varint(&mut buf, i32::MIN);
        assert_eq!(buf, [0xff, 0xff, 0xff, 0xff, 0x0f]);
    }

    #[test]
    fn overlong_varint_is_an_error() {
        let bytes = [0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert!(matches!(
            Reader::new(&bytes).read_varint(),
            Err(Error::BadVarint)
        ));
        // Five bytes whose value overflows u32.
        let bytes = [0xff, 0xff, 0xff, 0xff, 0x7f];
        assert!(matches!(
            Reader::new(&bytes).read_varint(),
            Err(Error::BadVarint)
        ));
        assert!(matches!(
            Reader::new(&[0x80]).read_varlong(),
            Err(Error::BadVarint)
        ));
        assert!(matches!(
            Reader::new(&[]).read_varint(),
            Err(Error::BadVarint)
        ));
    }

    proptest! {
        #[test]
        fn varint_round_trips(v in any::<i32>()) {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            prop_assert_eq!(buf.len(), varint_len(v));
            let mut r = Reader::new(&buf);
            prop_assert_eq!(r.read_varint().unwrap(), v);
            prop_assert_eq!(r.remaining(), 0);
        }

        #[test]
        fn varlong_round_trips(v in any::<i64>()) {
            let mut buf = Vec::new();
            put_varlong(&mut buf, v);
            prop_assert_eq!(buf.len(), varlong_len(v));
            let mut r = Reader::new(&buf);
            prop_assert_eq!(r.read_varlong().unwrap(), v);
        }
    }
}
