//! `GET /api/topics/{name}/partitions/{partition}/messages?offset=O&limit=N`:
//! reads records of one partition for debugging (RabbitMQ's "get messages",
//! the seed's message tracing), without moving any group's offset.
//!
//! Reads go through the storage read path on a blocking thread, up to the
//! high watermark (what consumers may see), CRC-checking every batch and
//! decoding its records (zstd included) as a stream: a small zstd batch may
//! hold 64 MiB of values, so nothing is decompressed whole or copied whole.
//! Per request, at most [`MAX_PEEK_BYTES`] of stored batches are read (at
//! least one whole batch), at most [`MAX_PEEK_DECOMPRESSED_BYTES`] of
//! records decoded and [`MAX_PEEK_RESPONSE_BYTES`] of keys, values and
//! headers returned (each past the first record), so `limit` records may
//! come back fewer: `next_offset` says where to go on. A key, value or
//! header longer than [`MAX_PEEK_FIELD_BYTES`] is cut, and says so
//! (`truncated: true` and its full length in `bytes`); a record shows at
//! most [`MAX_PEEK_HEADERS`] headers (`headers_count` then gives them all).
//! Keys, values and header values are shown as UTF-8 text when they are
//! valid UTF-8 (a cut one when its shown part is), as base64 otherwise. A batch that fails its CRC or does not
//! decode is a 500 `CORRUPT_BATCH` naming the segment file and byte
//! position (records before it come back first; the error comes to the
//! peek that starts at it); nothing panics on what is on disk.

use std::ops::ControlFlow;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use warren_protocol::record_batch::DEFAULT_MAX_DECOMPRESSED_BYTES;
use warren_protocol::record_stream::{ClipLimits, Clipped, ClippedRecord};
use warren_storage::{Offset, PartitionLog};

use super::{ApiError, ApiResult, parse_query};
use crate::state::Shared;

/// Most batch bytes one peek reads (one batch larger than this is still
/// read whole). Not configurable.
pub const MAX_PEEK_BYTES: u32 = 4 << 20;

/// Most bytes of records (decompressed) one peek decodes; the peek stops
/// after the record that crosses it (the first record is always decoded,
/// up to the 64 MiB a batch may decompress to, streamed through a small
/// buffer). Not configurable.
pub const MAX_PEEK_DECOMPRESSED_BYTES: u64 = 16 << 20;

/// Most bytes of keys, values and headers (as shown: base64 counts encoded)
/// one peek returns, before JSON escaping; the peek stops after the record
/// that crosses it. Not configurable.
pub const MAX_PEEK_RESPONSE_BYTES: usize = 4 << 20;

/// Most bytes shown of one key, value, header key or header value; the rest
/// is dropped and the field says `truncated: true` with its full length.
/// Not configurable.
pub const MAX_PEEK_FIELD_BYTES: usize = 64 << 10;

/// Most headers shown per record. Not configurable.
pub const MAX_PEEK_HEADERS: usize = 64;

/// Bytes a record or header is counted for in [`MAX_PEEK_RESPONSE_BYTES`]
/// beyond its data: the JSON around it, roughly.
const SHOWN_OVERHEAD_BYTES: usize = 64;

/// How batches are read for a peek.
const CLIP: ClipLimits = ClipLimits {
    max_decompressed_bytes: DEFAULT_MAX_DECOMPRESSED_BYTES,
    max_field_bytes: MAX_PEEK_FIELD_BYTES,
    max_headers: MAX_PEEK_HEADERS,
};

/// Records returned when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 20;

/// Most records one peek returns; a larger `limit` is lowered to it.
pub const MAX_LIMIT: usize = 1000;

/// The query string.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeekQuery {
    /// First offset wanted; default the log start offset.
    offset: Option<u64>,
    /// Records wanted; default [`DEFAULT_LIMIT`], at most [`MAX_LIMIT`].
    limit: Option<usize>,
}

/// The answer.
#[derive(Debug, Serialize)]
pub struct Messages {
    pub topic: String,
    pub partition: u32,
    /// Where the next peek should start.
    pub next_offset: u64,
    pub log_start_offset: u64,
    pub high_watermark: u64,
    pub messages: Vec<Message>,
}

/// One record.
#[derive(Debug, Serialize)]
pub struct Message {
    pub offset: i64,
    pub timestamp_ms: i64,
    pub key: Option<Data>,
    pub value: Option<Data>,
    /// The first [`MAX_PEEK_HEADERS`] headers.
    pub headers: Vec<MessageHeader>,
    /// The record's number of headers; present only when more than
    /// [`MAX_PEEK_HEADERS`] (not all are shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers_count: Option<usize>,
}

/// Bytes as text when they are valid UTF-8, base64 otherwise; at most
/// [`MAX_PEEK_FIELD_BYTES`] of them.
#[derive(Debug, Serialize)]
pub struct Data {
    /// `utf8` or `base64`.
    pub encoding: &'static str,
    pub data: String,
    /// The full length in bytes; present only when `truncated`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<usize>,
    /// True when `data` shows only the first bytes; absent otherwise.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// One record header.
#[derive(Debug, Serialize)]
pub struct MessageHeader {
    /// The key, cut at a character boundary if longer than
    /// [`MAX_PEEK_FIELD_BYTES`].
    pub key: String,
    /// The key's full length in bytes; present only when it was cut.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_bytes: Option<usize>,
    pub value: Option<Data>,
}

impl Data {
    fn of(field: &Clipped) -> Data {
        let truncated = field.is_truncated();
        let bytes = field.bytes.as_ref();
        // A cut value may end inside a character: show it as text up to there.
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => Some(text),
            Err(e) if truncated && e.error_len().is_none() => bytes
                .get(..e.valid_up_to())
                .and_then(|b| std::str::from_utf8(b).ok()),
            Err(_) => None,
        };
        let (encoding, data) = match text {
            Some(text) => ("utf8", text.to_owned()),
            None => ("base64", BASE64.encode(bytes)),
        };
        Data {
            encoding,
            data,
            bytes: truncated.then_some(field.len),
            truncated,
        }
    }
}

impl Message {
    fn of(r: ClippedRecord) -> Message {
        let headers_count = (r.headers_count > r.headers.len()).then_some(r.headers_count);
        Message {
            offset: r.offset,
            timestamp_ms: r.timestamp,
            key: r.key.as_ref().map(Data::of),
            value: r.value.as_ref().map(Data::of),
            headers: r
                .headers
                .into_iter()
                .map(|h| MessageHeader {
                    key_bytes: (h.key.len() < h.key_len).then_some(h.key_len),
                    key: h.key,
                    value: h.value.as_ref().map(Data::of),
                })
                .collect(),
            headers_count,
        }
    }

    /// What the message counts for in [`MAX_PEEK_RESPONSE_BYTES`].
    fn shown_bytes(&self) -> usize {
        let data = |d: &Option<Data>| d.as_ref().map_or(0, |d| d.data.len());
        SHOWN_OVERHEAD_BYTES
            + data(&self.key)
            + data(&self.value)
            + self
                .headers
                .iter()
                .map(|h| SHOWN_OVERHEAD_BYTES + h.key.len() + data(&h.value))
                .sum::<usize>()
    }
}

/// The handler; see the module docs.
pub async fn peek(
    State(shared): State<Arc<Shared>>,
    Path((name, partition)): Path<(String, String)>,
    query: Result<Query<PeekQuery>, QueryRejection>,
) -> ApiResult<Json<Messages>> {
    let query = parse_query(query)?;
    let topic = super::topics::topic(&shared, &name)?;
    let index: u32 = partition
        .parse()
        .map_err(|_| ApiError::invalid(format!("partition {partition:?} is not a number")))?;
    let p = topic
        .partitions
        .get(index as usize)
        .cloned()
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "PARTITION_NOT_FOUND",
                format!(
                    "topic {name:?} has partitions 0..{}, not {index}",
                    topic.partitions.len()
                ),
            )
        })?;
    let limit = match query.limit {
        None => DEFAULT_LIMIT,
        Some(0) => return Err(ApiError::invalid("limit must be at least 1")),
        Some(n) => n.min(MAX_LIMIT),
    };
    let log_start = p.log.log_start_offset().0;
    let hw = p.high_watermark().0;
    let offset = query.offset.unwrap_or(log_start);
    if offset < log_start || offset > hw {
        return Err(out_of_range(offset, log_start, hw));
    }
    let (messages, next_offset) = if offset == hw {
        (Vec::new(), hw)
    } else {
        let log = p.log.clone();
        tokio::task::spawn_blocking(move || read(&log, offset, Offset(hw), limit))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))??
    };
    Ok(Json(Messages {
        topic: name,
        partition: index,
        next_offset,
        log_start_offset: log_start,
        high_watermark: hw,
        messages,
    }))
}

fn out_of_range(offset: u64, log_start: u64, hw: u64) -> ApiError {
    ApiError::new(
        StatusCode::RANGE_NOT_SATISFIABLE,
        "OFFSET_OUT_OF_RANGE",
        format!("offset {offset} is outside the readable range {log_start}..={hw}"),
    )
}

/// Up to `limit` records from `from`, below `hw`, reading at most
/// [`MAX_PEEK_BYTES`] (one batch more if the first is larger), decoding at
/// most [`MAX_PEEK_DECOMPRESSED_BYTES`] and showing at most
/// [`MAX_PEEK_RESPONSE_BYTES`] (one record more if the first is larger);
/// with the offset to read next. Blocking.
///
/// A damaged batch fails the whole read that holds it, so after one such
/// failure the batches are read one at a time: the records before the
/// damage come back, and the next peek (from `next_offset`) gets the error
/// naming the file and position.
fn read(log: &PartitionLog, from: u64, hw: Offset, limit: usize) -> ApiResult<(Vec<Message>, u64)> {
    let mut messages = Vec::new();
    let mut next = from;
    let mut budget = MAX_PEEK_BYTES;
    // Records bytes decoded and data bytes shown so far.
    let mut decoded = 0u64;
    let mut shown = 0usize;
    let mut one_batch_at_a_time = false;
    while messages.len() < limit && next < hw.0 && budget > 0 {
        // A read of 1 byte returns exactly one whole batch.
        let max_bytes = if one_batch_at_a_time { 1 } else { budget };
        let batches = match log.read_located_batches(Offset(next), max_bytes, hw) {
            Ok(batches) => batches,
            Err(warren_storage::Error::CorruptLog { .. }) if !one_batch_at_a_time => {
                one_batch_at_a_time = true;
                continue;
            }
            Err(e @ warren_storage::Error::CorruptLog { .. }) if messages.is_empty() => {
                return Err(ApiError::internal(e.to_string()).with_code("CORRUPT_BATCH"));
            }
            Err(warren_storage::Error::CorruptLog { .. }) => break,
            Err(warren_storage::Error::OffsetOutOfRange {
                requested,
                log_start,
                log_end,
            }) => return Err(out_of_range(requested, log_start, log_end)),
            Err(other) => {
                return Err(ApiError::from_code(
                    crate::error::storage_error_code(&other),
                    format!("reading {}: {other}", log.name()),
                ));
            }
        };
        if batches.is_empty() {
            break;
        }
        for located in batches {
            budget = budget
                .saturating_sub(u32::try_from(located.batch.as_bytes().len()).unwrap_or(u32::MAX));
            let mut full = false;
            let mut batch_read = 0u64;
            let visited = located.batch.visit_clipped(&CLIP, |record| {
                decoded += record.block_bytes_read.saturating_sub(batch_read);
                batch_read = record.block_bytes_read;
                if u64::try_from(record.offset).is_ok_and(|o| o < next) {
                    return ControlFlow::Continue(());
                }
                next = u64::try_from(record.offset).map_or(next, |o| o + 1);
                let message = Message::of(record);
                shown += message.shown_bytes();
                messages.push(message);
                full = messages.len() >= limit
                    || shown > MAX_PEEK_RESPONSE_BYTES
                    || decoded > MAX_PEEK_DECOMPRESSED_BYTES;
                if full {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            });
            match visited {
                Ok(()) => {}
                Err(_) if !messages.is_empty() => return Ok((messages, next)),
                Err(e) => {
                    return Err(ApiError::internal(format!(
                        "{}: batch at position {} of {} does not decode: {e}",
                        log.name(),
                        located.position,
                        located.path.display()
                    ))
                    .with_code("CORRUPT_BATCH"));
                }
            }
            if full {
                return Ok((messages, next));
            }
            let batch_end = u64::try_from(located.batch.header().next_offset()).unwrap_or(next);
            next = next.max(batch_end);
            // Skipped records (before `from`) count too: stop between batches.
            if decoded > MAX_PEEK_DECOMPRESSED_BYTES && !messages.is_empty() {
                return Ok((messages, next));
            }
        }
    }
    Ok((messages, next))
}
