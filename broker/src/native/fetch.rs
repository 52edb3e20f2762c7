//! Fetch: a long poll over many partitions, answered with file ranges that the
//! connection sends with `sendfile(2)`.
//!
//! The first read happens on the reader task; if it already has `min_bytes`
//! (or `max_wait_ms` is 0) the reply is ready at once. Otherwise a task waits:
//! it registers with every requested partition's `hw_moved` notifier *before*
//! reading again (so no wake-up between read and wait is lost), and answers as
//! soon as a read reaches `min_bytes`, the deadline passes, or the broker shuts
//! down. No polling loop: each extra read follows a high-watermark move.
//!
//! Size: the record bytes of a response are at most the request's
//! `max_bytes`, itself capped by the broker's `fetch_max_bytes` (the first
//! batch always goes whole, as in Kafka), and never so many that the frame's
//! u32 length would wrap ([`record_byte_cap`]).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use futures_util::future::select_all;
use tokio::sync::futures::Notified;
use warren_protocol::ErrorCode;
use warren_protocol::api::fetch::{FetchRequest, put_partition_head, put_topic_head};
use warren_protocol::wire::put_array_len;
use warren_storage::Offset;

use super::Reply;
use crate::auth::Grants;
use crate::server::Shared;
use crate::topics::Partition;
use crate::transport::response::{Chunk, Response};
use warren_protocol::api::auth::{Permission, ResourceType};

/// One requested partition, resolved.
struct Target {
    partition: u32,
    log: Result<Arc<Partition>, ErrorCode>,
    fetch_offset: u64,
    max_bytes: u32,
    /// Bytes and offsets the last [`Plan::read`] put in the response for this
    /// partition; added to its metrics only for the read that is sent.
    /// Atomics (relaxed, this request's own) only to keep `Plan` `Sync`.
    read_bytes: AtomicU64,
    read_records: AtomicU64,
}

struct Plan {
    cid: u32,
    min_bytes: u64,
    /// The request's `max_bytes`, at most the broker's `fetch_max_bytes`.
    max_bytes: u32,
    /// Most record bytes the response can carry beside its fixed fields and
    /// still fit a frame ([`record_byte_cap`]); a batch beyond it is left
    /// out even where `max_bytes` would let the first batch through.
    record_cap: u64,
    topics: Vec<(String, Vec<Target>)>,
}

/// Bytes of a partition's fixed fields in the response: partition,
/// error_code, high_watermark, log_start_offset, records_len.
const PARTITION_HEAD_BYTES: u64 = 4 + 2 + 8 + 8 + 4;

/// Bytes of a response's fixed fields (everything but the record bytes)
/// for `topics`: the array lengths, each topic's name, each partition's head.
fn response_head_bytes(topics: &[(String, Vec<Target>)]) -> u64 {
    4 + topics
        .iter()
        .map(|(name, targets)| {
            // put_string writes at most 65 534 bytes of the name.
            2 + name.len().min(usize::from(u16::MAX - 1)) as u64
                + 4
                + targets.len() as u64 * PARTITION_HEAD_BYTES
        })
        .sum::<u64>()
}

/// Most record bytes a response whose fixed fields take `head_bytes` may
/// carry so that its frame length fits a u32 (see
/// [`crate::transport::response::MAX_RESPONSE_BODY_BYTES`]).
fn record_byte_cap(head_bytes: u64) -> u64 {
    crate::transport::response::MAX_RESPONSE_BODY_BYTES.saturating_sub(head_bytes)
}

/// Whether a partition's `bytes` may join the `total` record bytes already
/// in a response capped at `cap`.
fn fits(total: u64, bytes: u64, cap: u64) -> bool {
    total.checked_add(bytes).is_some_and(|sum| sum <= cap)
}

pub fn handle(cid: u32, req: FetchRequest, shared: &Arc<Shared>, grants: &Grants) -> Reply {
    if let Some(refused) = super::over_topic_limits(cid, &req.topics, |t| t.partitions.len()) {
        return refused;
    }
    let topics: Vec<(String, Vec<Target>)> = req
        .topics
        .into_iter()
        .map(|t| {
            let allowed = grants.allows(ResourceType::Topic, &t.topic, Permission::Read);
            let topic = shared.topics.get(&t.topic);
            let targets = t
                .partitions
                .iter()
                .map(|p| Target {
                    partition: p.partition,
                    log: match &topic {
                        _ if !allowed => Err(ErrorCode::TOPIC_AUTHORIZATION_FAILED),
                        None => Err(ErrorCode::UNKNOWN_TOPIC),
                        Some(topic) => topic
                            .partitions
                            .get(p.partition as usize)
                            .cloned()
                            .ok_or(ErrorCode::UNKNOWN_PARTITION),
                    },
                    fetch_offset: p.fetch_offset,
                    max_bytes: p.partition_max_bytes,
                    read_bytes: AtomicU64::new(0),
                    read_records: AtomicU64::new(0),
                })
                .collect();
            (t.topic, targets)
        })
        .collect();
    let head_bytes = response_head_bytes(&topics);
    let plan = Plan {
        cid,
        min_bytes: u64::from(req.min_bytes),
        max_bytes: req.max_bytes.min(shared.config.fetch_max_bytes),
        record_cap: record_byte_cap(head_bytes),
        topics,
    };
    let (response, bytes) = plan.read();
    if bytes >= plan.min_bytes || req.max_wait_ms == 0 || plan.partitions().next().is_none() {
        return Reply::Now(plan.sent(response));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_millis(u64::from(req.max_wait_ms));
    let shared = Arc::clone(shared);
    Reply::later(async move {
        let partitions: Vec<Arc<Partition>> = plan.partitions().cloned().collect();
        loop {
            let mut woken: Vec<Pin<Box<Notified<'_>>>> = partitions
                .iter()
                .map(|p| Box::pin(p.hw_moved.notified()))
                .collect();
            for n in &mut woken {
                n.as_mut().enable();
            }
            let (response, bytes) = plan.read();
            if bytes >= plan.min_bytes {
                return plan.sent(response);
            }
            tokio::select! {
                _ = select_all(woken) => {}
                () = tokio::time::sleep_until(deadline) => return plan.sent(plan.read().0),
                () = shared.shutdown.cancelled() => return plan.sent(plan.read().0),
            }
        }
    })
}

impl Plan {
    fn partitions(&self) -> impl Iterator<Item = &Arc<Partition>> {
        self.topics
            .iter()
            .flat_map(|(_, targets)| targets)
            .filter_map(|t| t.log.as_ref().ok())
    }

    /// The response of the last [`read`](Self::read), which is being sent:
    /// adds what it carries to each partition's fetched counters.
    fn sent(&self, response: Response) -> Response {
        for (_, targets) in &self.topics {
            for t in targets {
                if let Ok(p) = &t.log {
                    let bytes = t.read_bytes.load(Ordering::Relaxed);
                    if bytes > 0 {
                        p.metrics
                            .fetched(t.read_records.load(Ordering::Relaxed), bytes);
                    }
                }
            }
        }
        response
    }

    /// Reads every partition within the byte limits and builds the response;
    /// returns it with the number of record bytes in it.
    fn read(&self) -> (Response, u64) {
        let mut chunks = Vec::new();
        let mut head = BytesMut::with_capacity(256);
        let mut remaining = self.max_bytes;
        let mut total: u64 = 0;
        let mut first_error = ErrorCode::NONE;
        put_array_len(&mut head, self.topics.len());
        for (topic, targets) in &self.topics {
            put_topic_head(&mut head, topic, targets.len());
            for t in targets {
                let (code, hw, log_start, mut slices) = read_partition(t, remaining, total > 0);
                if first_error == ErrorCode::NONE {
                    first_error = code;
                }
                let mut bytes: u64 = slices.iter().map(|s| u64::from(s.len)).sum();
                if !fits(total, bytes, self.record_cap) {
                    // Only a batch of gigabytes gets here: it would wrap the
                    // frame length. Left out, as a budget that ran out.
                    slices.clear();
                    bytes = 0;
                }
                // Offsets the whole batches span: the records a consumer
                // gets, without decoding them.
                let records = match (slices.first(), slices.last()) {
                    (Some(first), Some(last)) => {
                        last.next_offset.0.saturating_sub(first.first_offset.0)
                    }
                    _ => 0,
                };
                t.read_bytes.store(bytes, Ordering::Relaxed);
                t.read_records.store(records, Ordering::Relaxed);
                remaining = remaining.saturating_sub(u32::try_from(bytes).unwrap_or(u32::MAX));
                total += bytes;
                put_partition_head(
                    &mut head,
                    t.partition,
                    code,
                    hw,
                    log_start,
                    u32::try_from(bytes).unwrap_or(u32::MAX),
                );
                for slice in slices {
                    chunks.push(Chunk::Bytes(head.split().freeze()));
                    chunks.push(Chunk::File(slice));
                }
            }
        }
        chunks.push(Chunk::Bytes(head.freeze()));
        (
            Response::from_body_chunks(self.cid, chunks, first_error),
            total,
        )
    }
}

/// One partition's read: error code, high watermark, log start, file ranges.
/// Only the first partition with data may exceed `remaining` (one whole batch).
fn read_partition(
    t: &Target,
    remaining: u32,
    have_data: bool,
) -> (ErrorCode, u64, u64, Vec<warren_storage::FileSlice>) {
    let p = match &t.log {
        Ok(p) => p,
        Err(code) => return (*code, 0, 0, Vec::new()),
    };
    let hw = p.log.high_watermark();
    let log_start = p.log.log_start_offset();
    let offset = Offset(t.fetch_offset);
    if offset < log_start || offset > hw {
        return (
            ErrorCode::OFFSET_OUT_OF_RANGE,
            hw.0,
            log_start.0,
            Vec::new(),
        );
    }
    let budget = t.max_bytes.min(remaining);
    if offset == hw || (have_data && budget == 0) {
        return (ErrorCode::NONE, hw.0, log_start.0, Vec::new());
    }
    match p.log.read_to(offset, budget.max(1), hw) {
        Ok(info) => {
            let bytes: u64 = info.slices.iter().map(|s| u64::from(s.len)).sum();
            if have_data && bytes > u64::from(budget) {
                return (ErrorCode::NONE, hw.0, log_start.0, Vec::new());
            }
            (ErrorCode::NONE, hw.0, info.log_start_offset.0, info.slices)
        }
        Err(e) => (
            super::storage_code(&e, "fetch read"),
            hw.0,
            log_start.0,
            Vec::new(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::response::MAX_RESPONSE_BODY_BYTES;

    #[test]
    fn record_bytes_are_capped_so_the_frame_never_wraps() {
        // 100 000 partitions of one topic with a 249-byte name.
        let heads = 4 + 2 + 249 + 4 + 100_000 * PARTITION_HEAD_BYTES;
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
        assert!(crate::transport::response::frame_len(heads + cap).is_some());
    }
}
