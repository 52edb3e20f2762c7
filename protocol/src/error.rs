//! Errors from decoding Warren's byte formats.
//!
//! Each malformed-input case is its own variant so that callers (and tests) can
//! tell a torn write (`Truncated`) from corruption (`ChecksumMismatch`) from a
//! format we do not speak (`BadMagic`, `UnknownCodec`).

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while decoding or encoding Warren's formats.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input ends before the structure it claims to hold.
    #[error("truncated {what}: need {needed} bytes, have {available}")]
    Truncated {
        what: &'static str,
        needed: usize,
        available: usize,
    },
    /// The batch's magic byte is not 2.
    #[error("unsupported RecordBatch magic {0} (only magic 2 is supported)")]
    BadMagic(i8),
    /// The stored CRC-32C does not match the bytes it covers.
    #[error("CRC-32C mismatch: stored {expected:#010x}, computed {got:#010x}")]
    ChecksumMismatch { expected: u32, got: u32 },
    /// Compression codec bits name a codec Warren does not support.
    #[error("unsupported compression codec {0} (supported: 0 none, 4 zstd)")]
    UnknownCodec(u8),
    /// A length or count field holds a value no valid input has (negative, too small).
    #[error("invalid {field}: {value}")]
    InvalidField { field: &'static str, value: i64 },
    /// A length or count field points past the end of its enclosing structure.
    #[error("{field} = {value} points past the end of the input ({available} bytes left)")]
    LengthOutOfBounds {
        field: &'static str,
        value: i64,
        available: usize,
    },
    /// A varint runs past its maximum width or past the end of the input.
    #[error("malformed varint")]
    BadVarint,
    /// The batch header's record count disagrees with the records present.
    #[error("batch says {expected} records but holds {found}")]
    RecordCountMismatch { expected: i32, found: usize },
    /// A record's declared length disagrees with the fields inside it.
    #[error("record declares {declared} bytes but its fields take {used}")]
    RecordLengthMismatch { declared: usize, used: usize },
    /// A header key is not UTF-8 (Kafka header keys are strings).
    #[error("record header key is not valid UTF-8")]
    InvalidHeaderKey,
    /// zstd failed to compress or decompress the records block.
    #[error("zstd: {0}")]
    Compression(#[source] std::io::Error),
    /// The decompressed records block exceeds the caller's limit (a zip bomb guard).
    #[error("decompressed records exceed the {limit}-byte limit")]
    DecompressedTooLarge { limit: usize },
    /// A frame's length field exceeds the codec's `max_frame_bytes`; refused before
    /// any buffer is reserved. Fatal to the connection.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    FrameTooLarge { len: usize, max: usize },
    /// A frame's length field is smaller than its fixed header. Fatal to the
    /// connection.
    #[error("frame of {len} bytes is shorter than its {min}-byte header")]
    FrameTooShort { len: usize, min: usize },
    /// The connection's I/O failed (from the tokio-util codec machinery).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A batch under construction would not fit the format's 32-bit length fields.
    #[error("batch too large to encode: {bytes} bytes")]
    BatchTooLarge { bytes: usize },
    /// A string field is null where it may not be, or is not UTF-8.
    #[error("{field} is not a valid UTF-8 string")]
    InvalidString { field: &'static str },
    /// A body has bytes left over after its last field.
    #[error("{extra} unexpected bytes after the end of the {what}")]
    TrailingBytes { what: &'static str, extra: usize },
    /// The api key is not one this side knows.
    #[error("unknown api key {0}")]
    UnknownApiKey(u16),
    /// A produced batch is larger than the topic accepts (`max.message.bytes`).
    #[error("batch of {bytes} bytes is larger than the {limit}-byte limit (max.message.bytes)")]
    BatchOverLimit { bytes: usize, limit: usize },
    /// A produced batch sets attribute bits only the broker may set:
    /// transactional, control, the timestamp type or a reserved bit.
    #[error(
        "batch attributes {attributes:#06x} set bits a producer may not (transactional, control, \
         timestamp type or reserved); only the codec bits 0-2 may be set"
    )]
    ForbiddenAttributes { attributes: i16 },
    /// A record's offset delta is not its position in the batch.
    #[error("record {index} of the batch has offset delta {offset_delta}, expected {index}")]
    OffsetDeltaMismatch { index: usize, offset_delta: i32 },
    /// A record's timestamp (base_timestamp + timestamp_delta) is further ahead
    /// of the broker's clock than it allows, or does not fit an i64.
    #[error(
        "record timestamp {timestamp} is more than {max_ahead_ms} ms ahead of the broker's clock \
         ({now_ms}; message.timestamp.max.skew.ms)"
    )]
    TimestampTooFarAhead {
        timestamp: i64,
        now_ms: i64,
        max_ahead_ms: u64,
    },
    /// The batch's max_timestamp is not the largest record timestamp.
    #[error("batch max_timestamp {declared} is not the largest record timestamp ({found})")]
    MaxTimestampMismatch { declared: i64, found: i64 },
    /// The api key is known but not at this version.
    #[error("api key {api_key} does not support version {version}")]
    UnsupportedVersion { api_key: u16, version: u16 },
}
