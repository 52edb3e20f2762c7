//! Bounded, streaming reads of a batch's records, for readers that show or
//! search records without needing them whole: the admin API's message peek,
//! ListOffsets by timestamp, the dead-letter copy.
//!
//! [`RecordBatch::records`] decompresses the whole records block and keeps
//! every key and value; a small zstd batch whose values are 64 MiB of zeros
//! then costs 64 MiB per batch before anything is shown. Here the block is
//! read through a small buffer (zstd decompresses into its window, at most a
//! few MiB, never the whole block), each key, value and header value keeps at
//! most [`ClipLimits::max_field_bytes`] (the rest is read and dropped, its
//! full length kept), each record at most [`ClipLimits::max_headers`]
//! headers, and a zstd block is cut off after
//! [`ClipLimits::max_decompressed_bytes`].
//! The caller's visitor can stop early (a byte budget, a found timestamp).
//!
//! The checks are those of [`RecordBatch::records`]: a record's fields must
//! fill exactly its declared length, header keys may not be null, and a
//! batch read to its end must hold `records_count` records.
//!
//! Pure functions: no I/O but the in-memory decompression. Thread-safe (no
//! shared state).

use std::io::{BufRead, BufReader, Read};
use std::ops::ControlFlow;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::record_batch::{BATCH_HEADER_LEN, Compression, RecordBatch};

/// Bytes of decompressed records read at a time from a zstd block.
const STREAM_BUFFER_BYTES: usize = 64 << 10;

/// How much of a batch [`RecordBatch::visit_clipped`] reads and keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClipLimits {
    /// Most bytes a zstd records block may decompress to; beyond it the
    /// visit fails with `DecompressedTooLarge`. (An uncompressed block is
    /// already in memory and is not capped.)
    pub max_decompressed_bytes: usize,
    /// Most bytes kept of each key, value, header key and header value.
    pub max_field_bytes: usize,
    /// Most headers kept per record (the others are read and dropped).
    pub max_headers: usize,
}

/// A key, value or header value: its first bytes and its full length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clipped {
    /// At most `max_field_bytes` first bytes.
    pub bytes: Bytes,
    /// The field's full length in the record.
    pub len: usize,
}

impl Clipped {
    /// True when `bytes` is shorter than the field.
    pub fn is_truncated(&self) -> bool {
        self.bytes.len() < self.len
    }
}

/// One record header, clipped. A clipped key is cut at a character boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClippedHeader {
    pub key: String,
    /// The key's full length in bytes.
    pub key_len: usize,
    pub value: Option<Clipped>,
}

/// One record as [`RecordBatch::visit_clipped`] hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClippedRecord {
    /// Absolute offset (base offset + offset delta).
    pub offset: i64,
    /// Base timestamp + timestamp delta, ms since the Unix epoch.
    pub timestamp: i64,
    pub key: Option<Clipped>,
    pub value: Option<Clipped>,
    /// The first `max_headers` headers.
    pub headers: Vec<ClippedHeader>,
    /// How many headers the record has.
    pub headers_count: usize,
    /// Bytes of the records block read so far, this record included (a
    /// caller's budget across records and batches).
    pub block_bytes_read: u64,
}

/// A cursor over a `BufRead` that counts what it consumed.
struct Stream<R> {
    r: R,
    read: u64,
}

impl<R: BufRead> Stream<R> {
    fn byte(&mut self) -> Result<Option<u8>> {
        let buf = self.r.fill_buf().map_err(Error::Compression)?;
        let Some(&b) = buf.first() else {
            return Ok(None);
        };
        self.r.consume(1);
        self.read += 1;
        Ok(Some(b))
    }

    fn unsigned(&mut self, max_bytes: usize) -> Result<u64> {
        let mut value = 0u64;
        for i in 0..max_bytes {
            let byte = self.byte()?.ok_or(Error::BadVarint)?;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Error::BadVarint)
    }

    fn varint(&mut self) -> Result<i32> {
        let raw = u32::try_from(self.unsigned(5)?).map_err(|_| Error::BadVarint)?;
        Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    fn varlong(&mut self) -> Result<i64> {
        let raw = self.unsigned(10)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// Reads `len` bytes, keeping the first `keep`.
    fn take(&mut self, field: &'static str, len: usize, keep: usize) -> Result<Vec<u8>> {
        let keep = keep.min(len);
        let mut kept = Vec::with_capacity(keep);
        let mut left = len;
        while left > 0 {
            let buf = self.r.fill_buf().map_err(Error::Compression)?;
            if buf.is_empty() {
                return Err(Error::LengthOutOfBounds {
                    field,
                    value: len as i64,
                    available: len - left,
                });
            }
            let n = buf.len().min(left);
            let room = keep.saturating_sub(kept.len()).min(n);
            kept.extend_from_slice(buf.get(..room).unwrap_or_default());
            self.r.consume(n);
            self.read += n as u64;
            left -= n;
        }
        Ok(kept)
    }
}

/// A `Read` that fails once more than `left` bytes came through: the
/// decompression cap, told apart from a short block.
struct Capped<R> {
    inner: R,
    left: u64,
    exceeded: bool,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        match self.left.checked_sub(n as u64) {
            Some(left) => {
                self.left = left;
                Ok(n)
            }
            None => {
                self.exceeded = true;
                Err(std::io::Error::other("decompression limit reached"))
            }
        }
    }
}

impl RecordBatch {
    /// Reads the batch's records one at a time, clipped to `limits`, handing
    /// each to `visit` until it returns `Break` or the records end. Memory is
    /// the kept bytes plus, for zstd, the decoder's window and a 64 KiB
    /// buffer, whatever the records' sizes. Does not check the CRC.
    ///
    /// # Errors
    /// As [`records`](Self::records): a malformed record, a count mismatch
    /// (only when read to the end), a zstd failure, `DecompressedTooLarge`.
    pub fn visit_clipped(
        &self,
        limits: &ClipLimits,
        mut visit: impl FnMut(ClippedRecord) -> ControlFlow<()>,
    ) -> Result<()> {
        let block = self.as_bytes().get(BATCH_HEADER_LEN..).unwrap_or_default();
        match self.header().compression()? {
            // Already in memory: nothing to decompress, nothing to cap.
            Compression::None => self.visit_stream(block, limits, &mut visit),
            Compression::Zstd => {
                let decoder =
                    zstd::stream::read::Decoder::new(block).map_err(Error::Compression)?;
                let capped = Capped {
                    inner: decoder,
                    left: limits.max_decompressed_bytes as u64,
                    exceeded: false,
                };
                let mut reader = BufReader::with_capacity(STREAM_BUFFER_BYTES, capped);
                let result = self.visit_stream(&mut reader, limits, &mut visit);
                if reader.get_ref().exceeded {
                    return Err(Error::DecompressedTooLarge {
                        limit: limits.max_decompressed_bytes,
                    });
                }
                result
            }
        }
    }

    fn visit_stream<R: BufRead>(
        &self,
        r: R,
        limits: &ClipLimits,
        visit: &mut impl FnMut(ClippedRecord) -> ControlFlow<()>,
    ) -> Result<()> {
        let header = self.header();
        let mut s = Stream { r, read: 0 };
        let mut count = 0usize;
        while let Some(first) = s.byte()? {
            // The length varint's first byte is already read: finish it.
            let len = if first & 0x80 == 0 {
                let raw = u32::from(first);
                ((raw >> 1) as i32) ^ -((raw & 1) as i32)
            } else {
                let rest = s.unsigned(4)?;
                let raw = u32::try_from(u64::from(first & 0x7f) | (rest << 7))
                    .map_err(|_| Error::BadVarint)?;
                ((raw >> 1) as i32) ^ -((raw & 1) as i32)
            };
            let len = usize::try_from(len).map_err(|_| Error::InvalidField {
                field: "record length",
                value: i64::from(len),
            })?;
            let body_start = s.read;
            let record = read_record(&mut s, limits, len)?;
            let used = (s.read - body_start) as usize;
            if used != len {
                return Err(Error::RecordLengthMismatch {
                    declared: len,
                    used,
                });
            }
            count += 1;
            let record = ClippedRecord {
                offset: header
                    .base_offset
                    .wrapping_add(i64::from(record.offset_delta)),
                timestamp: header.base_timestamp.wrapping_add(record.timestamp_delta),
                key: record.key,
                value: record.value,
                headers: record.headers,
                headers_count: record.headers_count,
                block_bytes_read: s.read,
            };
            if visit(record).is_break() {
                return Ok(());
            }
        }
        if count != usize::try_from(header.records_count).unwrap_or(usize::MAX) {
            return Err(Error::RecordCountMismatch {
                expected: header.records_count,
                found: count,
            });
        }
        Ok(())
    }
}

/// A record's fields before its offset and timestamp are made absolute.
struct Fields {
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<Clipped>,
    value: Option<Clipped>,
    headers: Vec<ClippedHeader>,
    headers_count: usize,
}

/// Reads one record body of `len` bytes; no field may run past it.
fn read_record<R: BufRead>(s: &mut Stream<R>, limits: &ClipLimits, len: usize) -> Result<Fields> {
    let end = s.read.saturating_add(len as u64);
    let left = |s: &Stream<R>| end.saturating_sub(s.read) as usize;
    s.byte()?.ok_or(Error::Truncated {
        what: "record attributes",
        needed: 1,
        available: 0,
    })?;
    let timestamp_delta = s.varlong()?;
    let offset_delta = s.varint()?;
    let key = nullable(s, limits, "key length", left(s))?;
    let value = nullable(s, limits, "value length", left(s))?;
    let count = s.varint()?;
    let headers_count = usize::try_from(count).map_err(|_| Error::InvalidField {
        field: "headers count",
        value: i64::from(count),
    })?;
    if headers_count > left(s) / 2 {
        return Err(Error::LengthOutOfBounds {
            field: "headers count",
            value: headers_count as i64,
            available: left(s),
        });
    }
    let mut headers = Vec::with_capacity(headers_count.min(limits.max_headers));
    for i in 0..headers_count {
        let key_len = s.varint()?;
        let key_len = usize::try_from(key_len).map_err(|_| Error::InvalidField {
            field: "header key length",
            value: i64::from(key_len),
        })?;
        if key_len > left(s) {
            return Err(Error::LengthOutOfBounds {
                field: "header key length",
                value: key_len as i64,
                available: left(s),
            });
        }
        let keep = if i < limits.max_headers {
            limits.max_field_bytes
        } else {
            0
        };
        let key = s.take("header key length", key_len, keep)?;
        let value = nullable(s, limits, "header value length", left(s))?;
        if i < limits.max_headers {
            headers.push(ClippedHeader {
                key: utf8_prefix(key, key_len)?,
                key_len,
                value,
            });
        }
    }
    Ok(Fields {
        timestamp_delta,
        offset_delta,
        key,
        value,
        headers,
        headers_count,
    })
}

/// A nullable length-prefixed field of at most `left` bytes, clipped.
fn nullable<R: BufRead>(
    s: &mut Stream<R>,
    limits: &ClipLimits,
    field: &'static str,
    left: usize,
) -> Result<Option<Clipped>> {
    let len = s.varint()?;
    if len == -1 {
        return Ok(None);
    }
    let len = usize::try_from(len).map_err(|_| Error::InvalidField {
        field,
        value: i64::from(len),
    })?;
    if len > left {
        return Err(Error::LengthOutOfBounds {
            field,
            value: len as i64,
            available: left,
        });
    }
    let bytes = s.take(field, len, limits.max_field_bytes)?;
    Ok(Some(Clipped {
        bytes: Bytes::from(bytes),
        len,
    }))
}

/// A header key as text: a whole key must be UTF-8; a clipped one is cut
/// back to its last whole character.
fn utf8_prefix(mut key: Vec<u8>, full_len: usize) -> Result<String> {
    if key.len() == full_len {
        return String::from_utf8(key).map_err(|_| Error::InvalidHeaderKey);
    }
    match std::str::from_utf8(&key) {
        Ok(_) => {}
        Err(e) if e.error_len().is_none() => key.truncate(e.valid_up_to()),
        Err(_) => return Err(Error::InvalidHeaderKey),
    }
    String::from_utf8(key).map_err(|_| Error::InvalidHeaderKey)
}

#[cfg(test)]
#[expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
mod tests {
    use super::*;
    use crate::{Header, RecordBatchBuilder};

    fn batch(compression: Compression, values: &[&[u8]]) -> RecordBatch {
        let mut b = RecordBatchBuilder::new(compression);
        for (i, v) in values.iter().enumerate() {
            b.append(
                1_700_000_000_000 + i as i64,
                Some(b"key"),
                Some(v),
                &[Header::new("h1", "v1"), Header::new("h2", "v2")],
            );
        }
        RecordBatch::new(b.build().unwrap()).unwrap()
    }

    fn visit_all(b: &RecordBatch, limits: &ClipLimits) -> Result<Vec<ClippedRecord>> {
        let mut out = Vec::new();
        b.visit_clipped(limits, |r| {
            out.push(r);
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }

    const WIDE: ClipLimits = ClipLimits {
        max_decompressed_bytes: 1 << 20,
        max_field_bytes: 1 << 20,
        max_headers: 100,
    };

    #[test]
    fn unclipped_visit_matches_records_for_both_codecs() {
        for c in [Compression::None, Compression::Zstd] {
            let b = batch(c, &[b"a", b"bb", b""]);
            let full = b.records().unwrap();
            let seen = visit_all(&b, &WIDE).unwrap();
            assert_eq!(seen.len(), full.len());
            for (s, f) in seen.iter().zip(&full) {
                assert_eq!(s.offset, f.offset);
                assert_eq!(s.timestamp, f.timestamp);
                assert_eq!(s.value.as_ref().map(|v| v.bytes.clone()), f.value);
                assert_eq!(s.headers.len(), 2);
                assert_eq!(s.headers_count, 2);
                assert!(!s.value.as_ref().unwrap().is_truncated());
            }
        }
    }

    #[test]
    fn long_values_are_clipped_with_their_full_length() {
        let big = vec![b'x'; 100_000];
        for c in [Compression::None, Compression::Zstd] {
            let b = batch(c, &[&big, b"small"]);
            let limits = ClipLimits {
                max_field_bytes: 10,
                max_headers: 1,
                ..WIDE
            };
            let seen = visit_all(&b, &limits).unwrap();
            let v = seen[0].value.as_ref().unwrap();
            assert_eq!(v.bytes.len(), 10);
            assert_eq!(v.len, 100_000);
            assert!(v.is_truncated());
            assert_eq!(seen[0].headers.len(), 1);
            assert_eq!(seen[0].headers_count, 2);
            assert_eq!(seen[1].value.as_ref().unwrap().bytes, &b"small"[..]);
        }
    }

    #[test]
    fn a_zstd_bomb_stops_at_the_decompression_limit() {
        let big = vec![0u8; 4 << 20];
        let b = batch(Compression::Zstd, &[&big]);
        assert!(b.as_bytes().len() < 4096, "{}", b.as_bytes().len());
        let limits = ClipLimits {
            max_decompressed_bytes: 1 << 20,
            ..WIDE
        };
        assert!(matches!(
            visit_all(&b, &limits),
            Err(Error::DecompressedTooLarge { .. })
        ));
    }

    #[test]
    fn an_uncompressed_block_is_not_held_to_the_decompression_limit() {
        let big = vec![b'y'; 2 << 20];
        let b = batch(Compression::None, &[&big]);
        let limits = ClipLimits {
            max_decompressed_bytes: 1 << 20,
            max_field_bytes: 16,
            ..WIDE
        };
        let seen = visit_all(&b, &limits).unwrap();
        assert_eq!(seen[0].value.as_ref().unwrap().len, 2 << 20);
    }

    #[test]
    fn a_visitor_may_stop_early_and_the_count_is_then_not_checked() {
        let b = batch(Compression::Zstd, &[b"a", b"b", b"c"]);
        let mut seen = 0;
        b.visit_clipped(&WIDE, |_| {
            seen += 1;
            ControlFlow::Break(())
        })
        .unwrap();
        assert_eq!(seen, 1);
    }

    #[test]
    fn a_clipped_header_key_is_cut_at_a_character_boundary() {
        assert_eq!(utf8_prefix("é".as_bytes()[..1].to_vec(), 2).unwrap(), "");
        assert_eq!(utf8_prefix(b"ab".to_vec(), 3).unwrap(), "ab");
        assert!(utf8_prefix(vec![0xff], 1).is_err());
    }
}
