//! Fetch: decodes, hands the request to the fetch service
//! ([`crate::services::fetch`]: permissions, reads up to the high watermark,
//! the long poll), and encodes the result as file ranges the connection
//! sends with `sendfile(2)`. A fetch that must wait answers from a task, so
//! the reader goes on with the next request meanwhile.
//!
//! Size: besides the service's byte limits, the record bytes are never so
//! many that the frame's u32 length would wrap ([`record_byte_cap`]).

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use warren_protocol::ErrorCode;
use warren_protocol::api::fetch::{FetchRequest, put_partition_head, put_topic_head};
use warren_protocol::wire::put_array_len;

use super::Reply;
use super::error::code;
use super::response;
use crate::auth::Grants;
use crate::services::fetch::{FetchLimits, FetchPartition, FetchResult, Fetched};
use crate::state::Shared;
use crate::transport::response::{Chunk, Response};

/// Bytes of a partition's fixed fields in the response: partition,
/// error_code, high_watermark, log_start_offset, records_len.
const PARTITION_HEAD_BYTES: u64 = 4 + 2 + 8 + 8 + 4;

/// Bytes of a response's fixed fields (everything but the record bytes)
/// for `topics` (name, partition count): the array lengths, each topic's
/// name, each partition's head.
fn response_head_bytes<'a>(topics: impl Iterator<Item = (&'a str, usize)>) -> u64 {
    4 + topics
        .map(|(name, partitions)| {
            // put_string writes at most 65 534 bytes of the name.
            2 + name.len().min(usize::from(u16::MAX - 1)) as u64
                + 4
                + partitions as u64 * PARTITION_HEAD_BYTES
        })
        .sum::<u64>()
}

/// Most record bytes a response whose fixed fields take `head_bytes` may
/// carry so that its frame length fits a u32 (see
/// [`super::response::MAX_RESPONSE_BODY_BYTES`]).
fn record_byte_cap(head_bytes: u64) -> u64 {
    super::response::MAX_RESPONSE_BODY_BYTES.saturating_sub(head_bytes)
}

pub fn handle(cid: u32, req: FetchRequest, shared: &Arc<Shared>, grants: &Grants) -> Reply {
    if let Some(refused) = super::over_topic_limits(cid, &req.topics, |t| t.partitions.len()) {
        return refused;
    }
    let limits = FetchLimits {
        min_bytes: u64::from(req.min_bytes),
        max_bytes: req.max_bytes,
        max_wait: Duration::from_millis(u64::from(req.max_wait_ms)),
        record_cap: record_byte_cap(response_head_bytes(
            req.topics
                .iter()
                .map(|t| (t.topic.as_str(), t.partitions.len())),
        )),
    };
    let topics = req.topics.into_iter().map(|t| {
        let partitions = t.partitions.into_iter().map(|p| FetchPartition {
            partition: p.partition,
            fetch_offset: p.fetch_offset,
            max_bytes: p.partition_max_bytes,
        });
        (t.topic, partitions)
    });
    match shared.services.fetch.fetch(grants, topics, limits) {
        Fetched::Ready(result) => Reply::Now(respond(cid, result)),
        Fetched::Waiting(poll) => Reply::later(async move { respond(cid, poll.wait().await) }),
    }
}

/// The response frame: each partition's head, then its file ranges.
fn respond(cid: u32, result: FetchResult) -> Response {
    let mut chunks = Vec::new();
    let mut head = BytesMut::with_capacity(256);
    let mut first_error = ErrorCode::NONE;
    put_array_len(&mut head, result.topics.len());
    for topic in result.topics {
        put_topic_head(&mut head, &topic.name, topic.partitions.len());
        for t in topic.partitions {
            let read = t.read;
            let code = read.error.map_or(ErrorCode::NONE, code);
            if first_error == ErrorCode::NONE {
                first_error = code;
            }
            put_partition_head(
                &mut head,
                t.partition,
                code,
                read.high_watermark,
                read.log_start_offset,
                u32::try_from(read.bytes).unwrap_or(u32::MAX),
            );
            for slice in read.slices {
                chunks.push(Chunk::Bytes(head.split().freeze()));
                chunks.push(Chunk::File(slice));
            }
        }
    }
    chunks.push(Chunk::Bytes(head.freeze()));
    response::from_body_chunks(cid, chunks, first_error)
}

#[cfg(test)]
mod tests {
    use super::response::MAX_RESPONSE_BODY_BYTES;
    use super::*;
    use crate::services::fetch::fits;

    #[test]
    fn record_bytes_are_capped_so_the_frame_never_wraps() {
        // 100 000 partitions of one topic with a 249-byte name.
        let name = "n".repeat(249);
        let heads = response_head_bytes(std::iter::once((name.as_str(), 100_000)));
        assert_eq!(heads, 4 + 2 + 249 + 4 + 100_000 * PARTITION_HEAD_BYTES);
        let cap = record_byte_cap(heads);
        assert_eq!(cap + heads, MAX_RESPONSE_BODY_BYTES);
        assert!(fits(0, cap, cap));
        assert!(!fits(0, cap + 1, cap));
        // Partitions each asking for u32::MAX: the second full one no longer fits.
        let four_gib = u64::from(u32::MAX);
        assert!(fits(0, four_gib - heads - 6, cap));
        assert!(!fits(1, four_gib, cap));
        assert!(!fits(u64::MAX, 1, cap), "no overflow");
        assert_eq!(record_byte_cap(u64::MAX), 0);
        assert!(super::response::frame_len(heads + cap).is_some());
    }
}
