//! Primitive field encodings shared by every request and response body.
//!
//! ```text
//! u8 u16 u32 u64 i16 i32 i64   fixed width, big-endian
//! string           = len: u16 | UTF-8 bytes          (len 0xFFFF is null where nullable)
//! bytes            = len: u32 | bytes                (len 0xFFFF_FFFF is null where nullable)
//! array<T>         = count: u32 | T * count
//! ```
//!
//! [`WireReader`] decodes from a frozen frame body without copying `bytes`
//! fields (they are slices of the body). Every length and count is checked
//! against what is left of the body before anything is allocated, so a forged
//! count of 4 billion costs nothing. Not thread-safe (a plain value).

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{Error, Result};

/// Marks a null nullable string.
pub const NULL_STRING_LEN: u16 = u16::MAX;
/// Marks a null nullable bytes field.
pub const NULL_BYTES_LEN: u32 = u32::MAX;

/// Reads fields from one body; see the module docs.
#[derive(Debug)]
pub struct WireReader {
    buf: Bytes,
}

macro_rules! fixed {
    ($name:ident, $t:ty, $get:ident) => {
        #[doc = concat!("Reads a big-endian `", stringify!($t), "`.")]
        ///
        /// # Errors
        /// [`Error::Truncated`] naming `what` if the body ends first.
        pub fn $name(&mut self, what: &'static str) -> Result<$t> {
            self.need(what, size_of::<$t>())?;
            Ok(self.buf.$get())
        }
    };
}

impl WireReader {
    /// A reader over `body`.
    pub fn new(body: Bytes) -> Self {
        WireReader { buf: body }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    fn need(&self, what: &'static str, n: usize) -> Result<()> {
        if self.buf.len() < n {
            return Err(Error::Truncated {
                what,
                needed: n,
                available: self.buf.len(),
            });
        }
        Ok(())
    }

    fixed!(u8, u8, get_u8);
    fixed!(u16, u16, get_u16);
    fixed!(u32, u32, get_u32);
    fixed!(u64, u64, get_u64);
    fixed!(i16, i16, get_i16);
    fixed!(i32, i32, get_i32);
    fixed!(i64, i64, get_i64);

    /// Reads a `string`.
    ///
    /// # Errors
    /// `Truncated`; [`Error::InvalidString`] for null or non-UTF-8 text.
    pub fn string(&mut self, what: &'static str) -> Result<String> {
        self.nullable_string(what)?
            .ok_or(Error::InvalidString { field: what })
    }

    /// Reads a nullable `string`.
    ///
    /// # Errors
    /// `Truncated`; [`Error::InvalidString`] for non-UTF-8 text.
    pub fn nullable_string(&mut self, what: &'static str) -> Result<Option<String>> {
        let len = self.u16(what)?;
        if len == NULL_STRING_LEN {
            return Ok(None);
        }
        let len = usize::from(len);
        self.need(what, len)?;
        let raw = self.buf.split_to(len);
        String::from_utf8(raw.to_vec())
            .map(Some)
            .map_err(|_| Error::InvalidString { field: what })
    }

    /// Reads a `bytes` field as a slice of the body (no copy).
    ///
    /// # Errors
    /// `Truncated`; [`Error::InvalidField`] for the null length.
    pub fn bytes(&mut self, what: &'static str) -> Result<Bytes> {
        self.nullable_bytes(what)?.ok_or(Error::InvalidField {
            field: what,
            value: -1,
        })
    }

    /// Reads a nullable `bytes` field as a slice of the body (no copy).
    ///
    /// # Errors
    /// `Truncated` if the length points past the body.
    pub fn nullable_bytes(&mut self, what: &'static str) -> Result<Option<Bytes>> {
        let len = self.u32(what)?;
        if len == NULL_BYTES_LEN {
            return Ok(None);
        }
        let len = len as usize;
        self.need(what, len)?;
        Ok(Some(self.buf.split_to(len)))
    }

    /// Reads an array count, refusing one whose elements (each at least
    /// `min_element_bytes`) could not fit in the rest of the body.
    ///
    /// # Errors
    /// `Truncated`; [`Error::LengthOutOfBounds`] for an impossible count.
    pub fn array_len(&mut self, what: &'static str, min_element_bytes: usize) -> Result<usize> {
        let count = self.u32(what)? as usize;
        if count.saturating_mul(min_element_bytes.max(1)) > self.buf.len() {
            return Err(Error::LengthOutOfBounds {
                field: what,
                value: count as i64,
                available: self.buf.len(),
            });
        }
        Ok(count)
    }

    /// Reads an array whose elements are each at least `min_element_bytes`
    /// long (see [`array_len`](Self::array_len)) with `read_element`.
    ///
    /// # Errors
    /// As [`array_len`](Self::array_len), and whatever `read_element` returns.
    pub fn array<T>(
        &mut self,
        what: &'static str,
        min_element_bytes: usize,
        mut read_element: impl FnMut(&mut WireReader) -> Result<T>,
    ) -> Result<Vec<T>> {
        let n = self.array_len(what, min_element_bytes)?;
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(read_element(self)?);
        }
        Ok(items)
    }

    /// Ends decoding: the body must be used up exactly.
    ///
    /// # Errors
    /// [`Error::TrailingBytes`] if bytes are left over.
    pub fn finish(self, what: &'static str) -> Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(Error::TrailingBytes {
                what,
                extra: self.buf.len(),
            })
        }
    }
}

/// Writes a `string`. Strings longer than `u16::MAX - 1` bytes are a caller bug
/// (topic names are at most 242 bytes); they are cut at a char boundary.
pub fn put_string(dst: &mut BytesMut, s: &str) {
    let mut end = s.len().min(usize::from(NULL_STRING_LEN - 1));
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let s = s.get(..end).unwrap_or_default();
    dst.put_u16(s.len() as u16);
    dst.put_slice(s.as_bytes());
}

/// Writes a nullable `string`.
pub fn put_nullable_string(dst: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_string(dst, s),
        None => dst.put_u16(NULL_STRING_LEN),
    }
}

/// Writes a `bytes` field.
///
/// # Errors
/// [`Error::BatchTooLarge`] above `u32::MAX - 1` bytes.
pub fn put_bytes(dst: &mut BytesMut, b: &[u8]) -> Result<()> {
    let len = u32::try_from(b.len())
        .ok()
        .filter(|l| *l != NULL_BYTES_LEN)
        .ok_or(Error::BatchTooLarge { bytes: b.len() })?;
    dst.put_u32(len);
    dst.put_slice(b);
    Ok(())
}

/// Writes an array: its count, then each element with `put_element`.
///
/// # Errors
/// Whatever `put_element` returns.
pub fn put_array<T>(
    dst: &mut BytesMut,
    items: &[T],
    mut put_element: impl FnMut(&mut BytesMut, &T) -> Result<()>,
) -> Result<()> {
    put_array_len(dst, items.len());
    items.iter().try_for_each(|item| put_element(dst, item))
}

/// Writes an array count.
pub fn put_array_len(dst: &mut BytesMut, len: usize) {
    dst.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn fields_round_trip() {
        let mut b = BytesMut::new();
        put_string(&mut b, "héllo");
        put_nullable_string(&mut b, None);
        put_bytes(&mut b, b"xyz").unwrap();
        put_array_len(&mut b, 2);
        b.put_u16(7);
        b.put_u16(8);
        let mut r = WireReader::new(b.freeze());
        assert_eq!(r.string("s").unwrap(), "héllo");
        assert_eq!(r.nullable_string("n").unwrap(), None);
        assert_eq!(&r.bytes("b").unwrap()[..], b"xyz");
        assert_eq!(r.array_len("a", 2).unwrap(), 2);
        assert_eq!(r.u16("x").unwrap(), 7);
        assert!(r.finish("body").is_err());
    }

    #[test]
    fn an_absurd_array_count_is_refused_before_allocating() {
        let mut b = BytesMut::new();
        b.put_u32(u32::MAX - 1);
        b.put_u64(0);
        let mut r = WireReader::new(b.freeze());
        assert!(matches!(
            r.array_len("topics", 4),
            Err(Error::LengthOutOfBounds { .. })
        ));
    }

    #[test]
    fn non_utf8_strings_and_short_bodies_are_errors() {
        let mut r = WireReader::new(Bytes::from_static(&[0, 2, 0xff, 0xfe]));
        assert!(matches!(r.string("s"), Err(Error::InvalidString { .. })));
        let mut r = WireReader::new(Bytes::from_static(&[0, 9, b'a']));
        assert!(matches!(r.string("s"), Err(Error::Truncated { .. })));
        let mut r = WireReader::new(Bytes::from_static(&[0xff, 0xff]));
        assert!(matches!(r.string("s"), Err(Error::InvalidString { .. })));
    }
}
