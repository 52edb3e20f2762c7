//! One record inside a RecordBatch, and its encoding.
//!
//! ```text
//! length            varint   bytes after this field
//! attributes        i8       unused, 0
//! timestamp_delta   varlong  record timestamp - batch base_timestamp
//! offset_delta      varint   record offset - batch base_offset
//! key_length        varint   -1 = null key
//! key               bytes
//! value_length      varint   -1 = null value (a tombstone)
//! value             bytes
//! headers_count     varint
//! headers           { key_length varint (>= 0), key UTF-8,
//!                     value_length varint (-1 = null), value }*
//! ```
//!
//! Decoded keys, values and header values are [`Bytes`] slices of the batch buffer
//! (or of the decompressed block): decoding copies no payload.

use bytes::{BufMut, Bytes};

use crate::error::{Error, Result};
use crate::varint::{Reader, put_varint, put_varlong, varint_len, varlong_len};

/// The smallest possible encoded record: one byte for each of length, attributes,
/// timestamp delta, offset delta, key length, value length and header count.
pub const MIN_RECORD_BYTES: usize = 7;

/// A record header: a UTF-8 key and an optional value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    pub key: String,
    pub value: Option<Bytes>,
}

impl Header {
    /// A header with a value.
    pub fn new(key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        Header {
            key: key.into(),
            value: Some(value.into()),
        }
    }
}

/// A decoded record, with its absolute offset and timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Absolute offset: the batch's base offset plus this record's offset delta.
    pub offset: i64,
    /// Milliseconds since the Unix epoch: base timestamp plus the timestamp delta.
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<Header>,
}

fn nullable_len(field: Option<&[u8]>) -> usize {
    match field {
        None => varint_len(-1),
        Some(b) => varint_len(b.len() as i32) + b.len(),
    }
}

fn put_nullable(buf: &mut impl BufMut, field: Option<&[u8]>) {
    match field {
        None => put_varint(buf, -1),
        Some(b) => {
            put_varint(buf, b.len() as i32);
            buf.put_slice(b);
        }
    }
}

/// Encodes one record (length prefix included) into `buf`; returns the bytes written.
///
/// The caller guarantees each field is shorter than `i32::MAX` bytes (the builder
/// checks the batch total).
pub(crate) fn encode(
    buf: &mut impl BufMut,
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[Header],
) -> usize {
    let mut body = 1 // attributes
        + varlong_len(timestamp_delta)
        + varint_len(offset_delta)
        + nullable_len(key)
        + nullable_len(value)
        + varint_len(headers.len() as i32);
    for h in headers {
        body += nullable_len(Some(h.key.as_bytes())) + nullable_len(h.value.as_deref());
    }
    put_varint(buf, body as i32);
    buf.put_i8(0);
    put_varlong(buf, timestamp_delta);
    put_varint(buf, offset_delta);
    put_nullable(buf, key);
    put_nullable(buf, value);
    put_varint(buf, headers.len() as i32);
    for h in headers {
        put_nullable(buf, Some(h.key.as_bytes()));
        put_nullable(buf, h.value.as_deref());
    }
    varint_len(body as i32) + body
}

/// Reads a nullable length-prefixed field, returning a zero-copy slice of `block`.
fn read_nullable(r: &mut Reader<'_>, block: &Bytes, field: &'static str) -> Result<Option<Bytes>> {
    let len = r.read_varint()?;
    if len == -1 {
        return Ok(None);
    }
    let len = usize::try_from(len).map_err(|_| Error::InvalidField {
        field,
        value: i64::from(len),
    })?;
    let start = r.position();
    r.read_slice(field, len)?;
    Ok(Some(block.slice(start..start + len)))
}

/// Decodes the records in `block` (the uncompressed records section of a
/// batch): all of them with `range = None`; with `Some((first, last))` only
/// those whose offset lies in `first..=last`, the others measured (their
/// length, and the fields up to their offset delta) and skipped, which costs a
/// few varint reads instead of a record.
///
/// `expected` is the header's records_count; a mismatch is an error (skipped
/// records count). Never preallocates more entries than the block could hold.
pub(crate) fn decode_range(
    block: &Bytes,
    expected: i32,
    base_offset: i64,
    base_timestamp: i64,
    range: Option<(i64, i64)>,
) -> Result<Vec<Record>> {
    let capacity = usize::try_from(expected)
        .unwrap_or(0)
        .min(block.len() / MIN_RECORD_BYTES);
    let capacity = match range {
        Some((first, last)) => {
            capacity.min(usize::try_from(last.saturating_sub(first).saturating_add(1)).unwrap_or(0))
        }
        None => capacity,
    };
    let mut records = Vec::with_capacity(capacity);
    let mut skipped = 0usize;
    let mut r = Reader::new(block);
    while r.remaining() > 0 {
        let len = r.read_varint()?;
        let len = usize::try_from(len).map_err(|_| Error::InvalidField {
            field: "record length",
            value: i64::from(len),
        })?;
        let start = r.position();
        // Check the declared length fits before parsing inside it.
        r.clone().read_slice("record length", len)?;
        let mut inner = Reader::new(block.get(..start + len).unwrap_or_default());
        inner.read_slice("record", start)?;
        let _attributes = inner.read_i8()?;
        let timestamp_delta = inner.read_varlong()?;
        let offset_delta = inner.read_varint()?;
        let offset = base_offset.wrapping_add(i64::from(offset_delta));
        if let Some((first, last)) = range
            && !(first..=last).contains(&offset)
        {
            r.read_slice("record", len)?;
            skipped += 1;
            continue;
        }
        let key = read_nullable(&mut inner, block, "key length")?;
        let value = read_nullable(&mut inner, block, "value length")?;
        let count = inner.read_varint()?;
        let count = usize::try_from(count).map_err(|_| Error::InvalidField {
            field: "headers count",
            value: i64::from(count),
        })?;
        if count > inner.remaining() / 2 {
            return Err(Error::LengthOutOfBounds {
                field: "headers count",
                value: count as i64,
                available: inner.remaining(),
            });
        }
        let mut headers = Vec::with_capacity(count);
        for _ in 0..count {
            let key = read_nullable(&mut inner, block, "header key length")?.ok_or(
                Error::InvalidField {
                    field: "header key length",
                    value: -1,
                },
            )?;
            let key = String::from_utf8(key.to_vec()).map_err(|_| Error::InvalidHeaderKey)?;
            let value = read_nullable(&mut inner, block, "header value length")?;
            headers.push(Header { key, value });
        }
        let used = inner.position() - start;
        if used != len {
            return Err(Error::RecordLengthMismatch {
                declared: len,
                used,
            });
        }
        r.read_slice("record", len)?;
        records.push(Record {
            offset,
            timestamp: base_timestamp.wrapping_add(timestamp_delta),
            key,
            value,
            headers,
        });
    }
    if records.len() + skipped != usize::try_from(expected).unwrap_or(usize::MAX) {
        return Err(Error::RecordCountMismatch {
            expected,
            found: records.len() + skipped,
        });
    }
    Ok(records)
}
