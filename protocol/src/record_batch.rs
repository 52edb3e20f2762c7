//! The RecordBatch: Warren's unit of write, storage and transfer.
//!
//! Byte-for-byte Kafka's RecordBatch (magic 2), so segment files can later be served
//! unchanged to Kafka clients. All integers are big-endian.
//!
//! ```text
//! offset  size  field
//! 0       8     base_offset            i64  assigned by the broker on append
//! 8       4     batch_length           i32  bytes after this field
//! 12      4     partition_leader_epoch i32
//! 16      1     magic                  i8   = 2
//! 17      4     crc                    u32  CRC-32C (Castagnoli) of bytes 21..end
//! 21      2     attributes             i16  bits 0-2 codec (0 none, 4 zstd),
//!                                           bit 3 timestamp type, bit 4 transactional,
//!                                           bit 5 control
//! 23      4     last_offset_delta      i32
//! 27      8     base_timestamp         i64  ms since epoch
//! 35      8     max_timestamp          i64
//! 43      8     producer_id            i64  -1 when not idempotent
//! 51      2     producer_epoch         i16
//! 53      4     base_sequence          i32
//! 57      4     records_count          i32
//! 61      ...   records (see `record`), one zstd frame when codec = 4
//! ```
//!
//! The CRC does not cover base_offset, batch_length or the leader epoch, so the
//! broker assigns offsets ([`set_base_offset`]) without recomputing it.
//!
//! [`BatchHeader::parse`] reads and sanity-checks the fixed 61 bytes without looking
//! at the records; [`RecordBatch`] owns a whole batch and can check its CRC and
//! decode its records. [`validate`] is the produce-time check of a batch from a
//! producer (Kafka's `LogValidator`): a pure function of the bytes, a
//! [`ValidationLimits`] and the clock the caller passes in; what it accepts,
//! [`RecordBatch::records`] decodes.

use std::io::Read;

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{Error, Result};
use crate::record::{self, Header, Record};
use crate::varint::Reader;

/// The only batch format version Warren reads or writes.
pub const MAGIC: i8 = 2;
/// Size of the fixed batch header, records excluded.
pub const BATCH_HEADER_LEN: usize = 61;
/// base_offset + batch_length: the bytes before what batch_length counts.
pub const LOG_OVERHEAD: usize = 12;
/// Smallest valid batch_length: a header with no records.
pub const MIN_BATCH_LENGTH: i32 = (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32;
/// Position of the CRC field.
pub const CRC_OFFSET: usize = 17;
/// First byte covered by the CRC (the attributes field).
pub const CRC_START: usize = 21;
/// Position of the magic byte.
pub const MAGIC_OFFSET: usize = 16;
/// Largest decompressed records block [`RecordBatch::records`] accepts (64 MiB):
/// a guard against a tiny zstd frame that inflates without bound. Not configurable;
/// callers with other needs use [`RecordBatch::records_with_limit`].
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: usize = 64 << 20;

const CODEC_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;

/// Compression of a batch's records block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    None,
    Zstd,
}

impl Compression {
    /// The codec id stored in bits 0-2 of the attributes (Kafka's numbering).
    pub fn id(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Zstd => 4,
        }
    }

    /// Parses a codec id; gzip (1), snappy (2) and lz4 (3) are not supported.
    pub fn from_id(id: u8) -> Result<Self> {
        match id {
            0 => Ok(Compression::None),
            4 => Ok(Compression::Zstd),
            other => Err(Error::UnknownCodec(other)),
        }
    }
}

fn be_i64(buf: &[u8], at: usize) -> i64 {
    let mut b = [0u8; 8];
    if let Some(src) = buf.get(at..at + 8) {
        b.copy_from_slice(src);
    }
    i64::from_be_bytes(b)
}

fn be_i32(buf: &[u8], at: usize) -> i32 {
    let mut b = [0u8; 4];
    if let Some(src) = buf.get(at..at + 4) {
        b.copy_from_slice(src);
    }
    i32::from_be_bytes(b)
}

fn be_i16(buf: &[u8], at: usize) -> i16 {
    let mut b = [0u8; 2];
    if let Some(src) = buf.get(at..at + 2) {
        b.copy_from_slice(src);
    }
    i16::from_be_bytes(b)
}

/// Reads the total size (`LOG_OVERHEAD + batch_length`) of the batch that starts
/// `buf`, from its first 12 bytes.
///
/// Returns `Ok(None)` when fewer than 12 bytes are available ("need more bytes" is
/// not an error).
///
/// # Errors
/// `InvalidField` when batch_length is smaller than an empty batch's.
pub fn peek_batch_len(buf: &[u8]) -> Result<Option<usize>> {
    if buf.len() < LOG_OVERHEAD {
        return Ok(None);
    }
    let batch_length = be_i32(buf, 8);
    if batch_length < MIN_BATCH_LENGTH {
        return Err(Error::InvalidField {
            field: "batch_length",
            value: i64::from(batch_length),
        });
    }
    Ok(Some(LOG_OVERHEAD + batch_length as usize))
}

/// Overwrites the base_offset field of the batch at the start of `batch`.
///
/// # Errors
/// `Truncated` when `batch` is shorter than 8 bytes.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) -> Result<()> {
    let available = batch.len();
    let field = batch.get_mut(..8).ok_or(Error::Truncated {
        what: "base_offset",
        needed: 8,
        available,
    })?;
    field.copy_from_slice(&base_offset.to_be_bytes());
    Ok(())
}

/// CRC-32C of the bytes the batch CRC covers (attributes onward).
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(batch.get(CRC_START..).unwrap_or_default())
}

/// The fixed 61-byte header of a batch, parsed and sanity-checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Parses the header at the start of `buf` (which may hold more than the header).
    ///
    /// Checks what can be checked without the records: magic, batch_length at least
    /// an empty batch, non-negative last_offset_delta and records_count, and a
    /// supported codec. Does not check the CRC.
    ///
    /// # Errors
    /// `Truncated` if `buf` is shorter than [`BATCH_HEADER_LEN`]; `BadMagic`,
    /// `InvalidField` or `UnknownCodec` for a header no valid batch has.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader> {
        if buf.len() < BATCH_HEADER_LEN {
            return Err(Error::Truncated {
                what: "batch header",
                needed: BATCH_HEADER_LEN,
                available: buf.len(),
            });
        }
        let magic = buf.get(MAGIC_OFFSET).map_or(0, |b| *b as i8);
        if magic != MAGIC {
            return Err(Error::BadMagic(magic));
        }
        let header = BatchHeader {
            base_offset: be_i64(buf, 0),
            batch_length: be_i32(buf, 8),
            partition_leader_epoch: be_i32(buf, 12),
            magic,
            crc: be_i32(buf, CRC_OFFSET) as u32,
            attributes: be_i16(buf, 21),
            last_offset_delta: be_i32(buf, 23),
            base_timestamp: be_i64(buf, 27),
            max_timestamp: be_i64(buf, 35),
            producer_id: be_i64(buf, 43),
            producer_epoch: be_i16(buf, 51),
            base_sequence: be_i32(buf, 53),
            records_count: be_i32(buf, 57),
        };
        let invalid = |field, value: i64| Err(Error::InvalidField { field, value });
        if header.batch_length < MIN_BATCH_LENGTH {
            return invalid("batch_length", header.batch_length.into());
        }
        if header.last_offset_delta < 0 {
            return invalid("last_offset_delta", header.last_offset_delta.into());
        }
        if header.records_count < 0 {
            return invalid("records_count", header.records_count.into());
        }
        header.compression()?;
        Ok(header)
    }

    /// Bytes the whole batch takes: `LOG_OVERHEAD + batch_length`.
    pub fn total_len(&self) -> usize {
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }

    /// Offset of the batch's last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// Offset right after the batch: where the next batch starts.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }

    /// Number of offsets the batch spans (last_offset_delta + 1).
    pub fn offset_count(&self) -> u32 {
        self.last_offset_delta as u32 + 1
    }

    /// The codec named by the attributes.
    ///
    /// # Errors
    /// `UnknownCodec` for anything but none and zstd.
    pub fn compression(&self) -> Result<Compression> {
        Compression::from_id((self.attributes & CODEC_MASK) as u8)
    }

    /// True when the timestamps were set by the broker (LogAppendTime).
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_BIT != 0
    }

    /// True for a transactional batch.
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    /// True for a control batch (transaction markers).
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }
}

/// One whole batch, owned as [`Bytes`], with its parsed header.
#[derive(Debug, Clone)]
pub struct RecordBatch {
    header: BatchHeader,
    bytes: Bytes,
}

impl RecordBatch {
    /// Wraps `bytes`, which must hold exactly one batch.
    ///
    /// # Errors
    /// Everything [`BatchHeader::parse`] reports; `Truncated` when `bytes` is shorter
    /// than batch_length says; `LengthOutOfBounds` when it is longer.
    pub fn new(bytes: Bytes) -> Result<RecordBatch> {
        let header = BatchHeader::parse(&bytes)?;
        let total = header.total_len();
        if bytes.len() < total {
            return Err(Error::Truncated {
                what: "record batch",
                needed: total,
                available: bytes.len(),
            });
        }
        if bytes.len() > total {
            return Err(Error::LengthOutOfBounds {
                field: "batch_length",
                value: i64::from(header.batch_length),
                available: bytes.len() - LOG_OVERHEAD,
            });
        }
        Ok(RecordBatch { header, bytes })
    }

    /// The parsed header.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// The batch's bytes, exactly as stored.
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Consumes the batch, returning its bytes.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// Checks the stored CRC-32C against the bytes it covers.
    ///
    /// # Errors
    /// `ChecksumMismatch` with both values.
    pub fn verify_crc(&self) -> Result<()> {
        let got = compute_crc(&self.bytes);
        if got != self.header.crc {
            return Err(Error::ChecksumMismatch {
                expected: self.header.crc,
                got,
            });
        }
        Ok(())
    }

    /// Decodes every record, decompressing at most
    /// [`DEFAULT_MAX_DECOMPRESSED_BYTES`]. Does not check the CRC: call
    /// [`verify_crc`](Self::verify_crc) first for bytes you do not trust.
    ///
    /// # Errors
    /// Any malformed record, a count mismatch, or a zstd failure.
    pub fn records(&self) -> Result<Vec<Record>> {
        self.records_with_limit(DEFAULT_MAX_DECOMPRESSED_BYTES)
    }

    /// Like [`records`](Self::records), with a caller-chosen decompression limit.
    ///
    /// # Errors
    /// As [`records`](Self::records), plus `DecompressedTooLarge`.
    pub fn records_with_limit(&self, max_decompressed_bytes: usize) -> Result<Vec<Record>> {
        self.decode(max_decompressed_bytes, None)
    }

    /// Decodes the records whose offsets lie in `first..=last`, skipping the
    /// others after reading only their length and offset delta: a share-group
    /// consumer that acquired a few records of a large batch pays for those.
    /// The record count is still checked; a skipped record's key, value and
    /// headers are not. Does not check the CRC.
    ///
    /// # Errors
    /// As [`records`](Self::records).
    pub fn records_in(&self, first: i64, last: i64) -> Result<Vec<Record>> {
        self.decode(DEFAULT_MAX_DECOMPRESSED_BYTES, Some((first, last)))
    }

    fn decode(
        &self,
        max_decompressed_bytes: usize,
        range: Option<(i64, i64)>,
    ) -> Result<Vec<Record>> {
        let block = self.bytes.slice(BATCH_HEADER_LEN..);
        let block = match self.header.compression()? {
            Compression::None => block,
            Compression::Zstd => Bytes::from(decompress(&block, max_decompressed_bytes)?),
        };
        record::decode_range(
            &block,
            self.header.records_count,
            self.header.base_offset,
            self.header.base_timestamp,
            range,
        )
    }
}

/// Decompresses a zstd records block, refusing more than `limit` bytes out: a
/// frame that declares a larger content size is refused before anything is
/// allocated, and decompression stops one byte past the limit otherwise.
///
/// # Errors
/// `DecompressedTooLarge`, or `Compression` for a block that is not zstd.
pub(crate) fn decompress(block: &[u8], limit: usize) -> Result<Vec<u8>> {
    let declared = zstd::zstd_safe::get_frame_content_size(block)
        .ok()
        .flatten();
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Error::DecompressedTooLarge { limit });
    }
    let decoder = zstd::stream::read::Decoder::new(block).map_err(Error::Compression)?;
    // The declared size is a hint only (a block may hold several frames).
    let mut out = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    decoder
        .take((limit as u64).saturating_add(1))
        .read_to_end(&mut out)
        .map_err(Error::Compression)?;
    if out.len() > limit {
        return Err(Error::DecompressedTooLarge { limit });
    }
    Ok(out)
}

/// Decompressed bytes a thread keeps in its [`SCRATCH`] buffer between
/// batches; a larger block's buffer is freed after use, so a thread holds at
/// most this much. Not configurable.
const SCRATCH_KEEP_BYTES: usize = 8 << 20;

/// A zstd context and an output buffer that [`validate`] reuses, one per
/// thread (produce validation runs on the connections' tasks). Making both per
/// batch cost about 45% of the broker's CPU in a 4 GB zstd produce run (`perf`:
/// page faults on the fresh 1 MiB buffer, `ZSTD_createDCtx`), against 8% for
/// the decompression itself.
struct Scratch {
    dctx: Option<zstd::bulk::Decompressor<'static>>,
    out: Vec<u8>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = const {
        std::cell::RefCell::new(Scratch { dctx: None, out: Vec::new() })
    };
}

/// Runs `f` over the decompressed records block, at most `limit` bytes.
/// A frame that declares its size is decompressed in one call into this
/// thread's reused buffer; anything else (no declared size, several frames,
/// a re-entrant call) takes [`decompress`], which allocates.
///
/// # Errors
/// `DecompressedTooLarge`, `Compression`, or what `f` returns.
fn with_decompressed<T>(block: &[u8], limit: usize, f: impl Fn(&[u8]) -> Result<T>) -> Result<T> {
    let declared = zstd::zstd_safe::get_frame_content_size(block)
        .ok()
        .flatten();
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Error::DecompressedTooLarge { limit });
    }
    if let Some(declared) = declared {
        let fast = SCRATCH.try_with(|cell| {
            let mut scratch = cell.try_borrow_mut().ok()?;
            let Scratch { dctx, out } = &mut *scratch;
            if dctx.is_none() {
                *dctx = zstd::bulk::Decompressor::new().ok();
            }
            out.clear();
            // `declared <= limit`, checked above.
            out.reserve(declared as usize);
            dctx.as_mut()?.decompress_to_buffer(block, out).ok()?;
            let result = if out.len() > limit {
                Err(Error::DecompressedTooLarge { limit })
            } else {
                f(out)
            };
            if out.capacity() > SCRATCH_KEEP_BYTES {
                *out = Vec::new();
            }
            Some(result)
        });
        if let Ok(Some(result)) = fast {
            return result;
        }
    }
    let records = decompress(block, limit)?;
    f(&records)
}

/// Attribute bits a producer may set: the codec (bits 0-2). The timestamp
/// type, transactional and control bits, and the reserved bits 6-15, are the
/// broker's (Warren sets none of them today).
const PRODUCER_ATTRIBUTES: i16 = CODEC_MASK;

/// Kafka's "no timestamp" (-1): the floor of a builder's max_timestamp.
const NO_TIMESTAMP: i64 = -1;

/// What [`validate`] accepts. The broker fills it from the destination topic's
/// config and its own clock; no I/O happens inside `validate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidationLimits {
    /// Largest whole batch, bytes (the topic's `max.message.bytes`).
    pub max_batch_bytes: usize,
    /// Largest decompressed records block of a compressed batch, bytes.
    pub max_decompressed_bytes: usize,
    /// The broker's clock, ms since the Unix epoch.
    pub now_ms: i64,
    /// How far ahead of `now_ms` a record timestamp may be, ms. Behind is
    /// unbounded (as in Kafka); `u64::MAX` disables the check.
    pub max_timestamp_ahead_ms: u64,
}

/// A batch [`validate`] accepted: only `validate` makes one, so a function
/// taking it knows every check ran (the log's `append_validated` then skips
/// its own parse and CRC).
#[derive(Debug, Clone, Copy)]
pub struct ValidatedBatch<'a> {
    header: BatchHeader,
    bytes: &'a [u8],
    decompressed_bytes: usize,
}

impl<'a> ValidatedBatch<'a> {
    /// The parsed header.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// The batch's bytes, exactly as validated.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// How many bytes its records block decompressed to (0 when it is not
    /// compressed): what validating it cost, for a caller's budget.
    pub fn decompressed_bytes(&self) -> usize {
        self.decompressed_bytes
    }
}

/// Checks a batch from a producer as Kafka's `LogValidator` does, before
/// anything is written: everything a reader will later rely on holds.
///
/// - the header parses (magic 2, a known codec), `batch_length` covers
///   exactly `batch`, and the batch fits `max_batch_bytes`;
/// - only codec attribute bits are set (no transactional, control,
///   timestamp-type or reserved bits);
/// - `records_count >= 1` and `last_offset_delta == records_count - 1`;
/// - the CRC-32C matches;
/// - the records block (after decompression, at most
///   `max_decompressed_bytes`) holds exactly `records_count` records, each
///   parsing to exactly its declared length, with offset deltas `0, 1, 2, ...`
///   in order and UTF-8 header keys, and nothing after the last;
/// - each record timestamp (`base_timestamp + timestamp_delta`) fits an i64
///   and is at most `max_timestamp_ahead_ms` ahead of `now_ms`, and
///   `max_timestamp` is the largest of them (or -1 when all are below -1,
///   as Kafka's builder writes).
///
/// A batch that passes decodes with [`RecordBatch::records`] (given the same
/// decompression limit). Uncompressed batches are checked in place, varint
/// by varint, without allocating; a zstd block is decompressed once.
///
/// # Errors
/// The first failed check, as its own variant: `BatchOverLimit` and
/// `DecompressedTooLarge` for size, `ForbiddenAttributes`,
/// `OffsetDeltaMismatch`, `TimestampTooFarAhead`, `MaxTimestampMismatch`,
/// `RecordCountMismatch`, `ChecksumMismatch`, and the decoding errors.
pub fn validate<'a>(batch: &'a [u8], limits: &ValidationLimits) -> Result<ValidatedBatch<'a>> {
    let header = BatchHeader::parse(batch)?;
    if header.total_len() != batch.len() {
        return Err(Error::LengthOutOfBounds {
            field: "batch_length",
            value: i64::from(header.batch_length),
            available: batch.len().saturating_sub(LOG_OVERHEAD),
        });
    }
    if batch.len() > limits.max_batch_bytes {
        return Err(Error::BatchOverLimit {
            bytes: batch.len(),
            limit: limits.max_batch_bytes,
        });
    }
    if header.attributes & !PRODUCER_ATTRIBUTES != 0 {
        return Err(Error::ForbiddenAttributes {
            attributes: header.attributes,
        });
    }
    if header.records_count == 0 {
        return Err(Error::InvalidField {
            field: "records_count",
            value: 0,
        });
    }
    if header.last_offset_delta != header.records_count - 1 {
        return Err(Error::InvalidField {
            field: "last_offset_delta",
            value: i64::from(header.last_offset_delta),
        });
    }
    let got = compute_crc(batch);
    if got != header.crc {
        return Err(Error::ChecksumMismatch {
            expected: header.crc,
            got,
        });
    }
    let block = batch.get(BATCH_HEADER_LEN..).unwrap_or_default();
    let (found_max, decompressed_bytes) = match header.compression()? {
        Compression::None => (walk_records(block, &header, limits)?, 0),
        Compression::Zstd => with_decompressed(block, limits.max_decompressed_bytes, |records| {
            Ok((walk_records(records, &header, limits)?, records.len()))
        })?,
    };
    let max_ok = header.max_timestamp == found_max
        || (found_max < NO_TIMESTAMP && header.max_timestamp == NO_TIMESTAMP);
    if !max_ok {
        return Err(Error::MaxTimestampMismatch {
            declared: header.max_timestamp,
            found: found_max,
        });
    }
    Ok(ValidatedBatch {
        header,
        bytes: batch,
        decompressed_bytes,
    })
}

/// Reads a length or count that may not be negative.
fn read_len(r: &mut Reader<'_>, field: &'static str) -> Result<usize> {
    let v = r.read_varint()?;
    usize::try_from(v).map_err(|_| Error::InvalidField {
        field,
        value: i64::from(v),
    })
}

/// Skips a nullable length-prefixed field (-1 = null).
fn skip_nullable(r: &mut Reader<'_>, field: &'static str) -> Result<()> {
    let len = r.read_varint()?;
    if len == -1 {
        return Ok(());
    }
    let len = usize::try_from(len).map_err(|_| Error::InvalidField {
        field,
        value: i64::from(len),
    })?;
    r.read_slice(field, len)?;
    Ok(())
}

/// Walks the records of an uncompressed block for [`validate`]; returns the
/// largest record timestamp (`i64::MIN` for none). No allocation: each field
/// is a varint read or a slice bound.
fn walk_records(block: &[u8], header: &BatchHeader, limits: &ValidationLimits) -> Result<i64> {
    let expected = usize::try_from(header.records_count).unwrap_or(0);
    let ahead = i64::try_from(limits.max_timestamp_ahead_ms).unwrap_or(i64::MAX);
    let latest_allowed = limits.now_ms.saturating_add(ahead);
    let mut r = Reader::new(block);
    let mut index = 0usize;
    let mut max_timestamp = i64::MIN;
    while r.remaining() > 0 {
        if index == expected {
            return Err(Error::RecordCountMismatch {
                expected: header.records_count,
                found: index + 1,
            });
        }
        let len = read_len(&mut r, "record length")?;
        let mut inner = Reader::new(r.read_slice("record length", len)?);
        inner.read_i8()?;
        let timestamp_delta = inner.read_varlong()?;
        let offset_delta = inner.read_varint()?;
        if usize::try_from(offset_delta).ok() != Some(index) {
            return Err(Error::OffsetDeltaMismatch {
                index,
                offset_delta,
            });
        }
        skip_nullable(&mut inner, "key length")?;
        skip_nullable(&mut inner, "value length")?;
        // Each header takes at least two bytes, so a huge count fails on the
        // bytes, not on time.
        let headers = read_len(&mut inner, "headers count")?;
        for _ in 0..headers {
            let key_len = read_len(&mut inner, "header key length")?;
            let key = inner.read_slice("header key length", key_len)?;
            std::str::from_utf8(key).map_err(|_| Error::InvalidHeaderKey)?;
            skip_nullable(&mut inner, "header value length")?;
        }
        if inner.remaining() != 0 {
            return Err(Error::RecordLengthMismatch {
                declared: len,
                used: len - inner.remaining(),
            });
        }
        let timestamp =
            header
                .base_timestamp
                .checked_add(timestamp_delta)
                .ok_or(Error::InvalidField {
                    field: "timestamp_delta",
                    value: timestamp_delta,
                })?;
        if timestamp > latest_allowed {
            return Err(Error::TimestampTooFarAhead {
                timestamp,
                now_ms: limits.now_ms,
                max_ahead_ms: limits.max_timestamp_ahead_ms,
            });
        }
        max_timestamp = max_timestamp.max(timestamp);
        index += 1;
    }
    if index != expected {
        return Err(Error::RecordCountMismatch {
            expected: header.records_count,
            found: index,
        });
    }
    Ok(max_timestamp)
}

/// Builds a batch record by record.
///
/// ```
/// use warren_protocol::{Compression, Header, RecordBatchBuilder, RecordBatch};
/// let mut b = RecordBatchBuilder::new(Compression::None);
/// b.append(1_700_000_000_000, Some(b"key"), Some(b"value"), &[Header::new("h", "v")]);
/// let batch = RecordBatch::new(b.build()?)?;
/// batch.verify_crc()?;
/// assert_eq!(batch.records()?[0].value.as_deref(), Some(&b"value"[..]));
/// # Ok::<(), warren_protocol::Error>(())
/// ```
#[derive(Debug)]
pub struct RecordBatchBuilder {
    compression: Compression,
    /// `BATCH_HEADER_LEN` placeholder bytes, then the encoded records: an
    /// uncompressed batch is built in place, without copying the records.
    records: BytesMut,
    count: i32,
    base_timestamp: Option<i64>,
    max_timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
}

impl RecordBatchBuilder {
    /// An empty builder; offsets start at delta 0, the producer is not idempotent.
    pub fn new(compression: Compression) -> Self {
        let mut records = BytesMut::with_capacity(BATCH_HEADER_LEN);
        records.put_bytes(0, BATCH_HEADER_LEN);
        RecordBatchBuilder {
            compression,
            records,
            count: 0,
            base_timestamp: None,
            max_timestamp: -1,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
        }
    }

    /// Sets the idempotent-producer fields.
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Reserves room for `bytes` more bytes of encoded records.
    pub fn reserve(&mut self, bytes: usize) {
        self.records.reserve(bytes);
    }

    /// Appends one record; returns its offset delta.
    pub fn append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> i32 {
        let base = *self.base_timestamp.get_or_insert(timestamp);
        self.max_timestamp = self.max_timestamp.max(timestamp);
        let delta = self.count;
        record::encode(
            &mut self.records,
            timestamp.wrapping_sub(base),
            delta,
            key,
            value,
            headers,
        );
        self.count += 1;
        delta
    }

    /// Number of records appended.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// True when no record was appended.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Size of the batch if built now, before compression.
    pub fn estimated_bytes(&self) -> usize {
        self.records.len()
    }

    /// Encodes the batch with base_offset 0 and a correct CRC.
    ///
    /// # Errors
    /// `BatchTooLarge` beyond `i32::MAX` bytes; `Compression` if zstd fails.
    pub fn build(self) -> Result<Bytes> {
        let mut buf = match self.compression {
            Compression::None => self.records,
            Compression::Zstd => {
                let block = self.records.get(BATCH_HEADER_LEN..).unwrap_or_default();
                let compressed = zstd::bulk::compress(block, 3).map_err(Error::Compression)?;
                let mut buf = BytesMut::with_capacity(BATCH_HEADER_LEN + compressed.len());
                buf.put_bytes(0, BATCH_HEADER_LEN);
                buf.put_slice(&compressed);
                buf
            }
        };
        let total = buf.len();
        let batch_length = i32::try_from(total - LOG_OVERHEAD)
            .map_err(|_| Error::BatchTooLarge { bytes: total })?;
        let base_timestamp = self.base_timestamp.unwrap_or(-1);
        let mut header = [0u8; BATCH_HEADER_LEN];
        {
            let mut h = &mut header[..];
            h.put_i64(0);
            h.put_i32(batch_length);
            h.put_i32(-1); // partition_leader_epoch: no leader epochs until replication
            h.put_i8(MAGIC);
            h.put_u32(0); // crc, filled in below
            h.put_i16(i16::from(self.compression.id()));
            h.put_i32((self.count - 1).max(0));
            h.put_i64(base_timestamp);
            h.put_i64(self.max_timestamp);
            h.put_i64(self.producer_id);
            h.put_i16(self.producer_epoch);
            h.put_i32(self.base_sequence);
            h.put_i32(self.count);
        }
        if let Some(front) = buf.get_mut(..BATCH_HEADER_LEN) {
            front.copy_from_slice(&header);
        }
        let crc = compute_crc(&buf);
        if let Some(field) = buf.get_mut(CRC_OFFSET..CRC_START) {
            field.copy_from_slice(&crc.to_be_bytes());
        }
        Ok(buf.freeze())
    }
}
