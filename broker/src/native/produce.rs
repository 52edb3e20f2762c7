//! Produce: appends each entry's RecordBatch to its partition, in request
//! order, on the connection's reader task (one `pwritev` into the page cache
//! per batch, the batch bytes still the frame's). Each entry's batch is first
//! validated once, whatever number of partitions it goes to, as Kafka's
//! `LogValidator` does ([`record_batch::validate`]: framing, CRC, size, record
//! count and offset deltas, record lengths, attributes, timestamps at most
//! `message_timestamp_max_skew_ms` ahead); a refused batch is
//! `CORRUPT_MESSAGE` (or `MESSAGE_TOO_LARGE`) with the reason, and nothing
//! of it is written.
//!
//! Routing (`partition = -1`): `hash` topics use the partitioner (round-robin
//! without a key); `direct` and `topic` topics append the same batch bytes to
//! every partition the key is bound to, in partition order, reading the
//! topic's bindings under their read lock for one `route` call. No match (or
//! no key) sends the batch to the topic's alternate topic, routed by its own
//! mode with the same key and no further hop; failing that the entry is
//! `UNROUTABLE` with a message saying why. The response lists every copy.
//! The alternate hop needs write on the alternate topic too, checked with the
//! producer's grants of the moment (`TOPIC_AUTHORIZATION_FAILED` naming it).
//!
//! Durability: for `fsync` topics the high watermark moves only after an
//! fsync, so every append is followed by one, at most one running per
//! partition at a time ([`Partition::sync_in_background`]): acks=-1 awaits
//! it before answering (with the request's `timeout_ms`) without holding a
//! thread ([`Partition::wait_durable`]); acks 0 and 1 do not wait. Concurrent produces to a partition
//! share fsyncs (the log's group commit). A routed entry waits for the fsync
//! of every partition it was appended to. After a failed fsync the partition
//! refuses appends (`STORAGE_ERROR`) until the broker restarts.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use warren_protocol::api::bindings::RoutingMode;
use warren_protocol::api::produce::{
    ProduceCopy, ProducePartition, ProducePartitionResponse, ProduceRequest, ProduceResponse,
    ProduceTopicResponse, ROUTE_BY_KEY,
};
use warren_protocol::record_batch::{self, ValidatedBatch, ValidationLimits};
use warren_protocol::{ErrorCode, partition_for_key};
use warren_storage::Offset;

use super::Reply;
use crate::auth::Grants;
use crate::server::Shared;
use crate::topics::{Partition, Topic};
use crate::transport::response::Response;
use warren_protocol::api::auth::{Permission, ResourceType};

/// An fsync to wait for: the partition, the offset it must cover, and which
/// response entries depend on it (`(topic index, entry index)`).
struct PendingSync {
    partition: Arc<Partition>,
    target: Offset,
    entries: Vec<(usize, usize)>,
}

/// The fsyncs a request waits for, one per partition, keyed by the
/// partition's address (its identity while the entry holds its `Arc`): a map,
/// so a request with many entries costs one lookup each, not a scan.
type PendingSyncs = HashMap<usize, PendingSync>;

pub fn handle(cid: u32, req: ProduceRequest, shared: &Arc<Shared>, grants: &Grants) -> Reply {
    if !matches!(req.acks, -1..=1) {
        return Reply::Now(Response::error(
            cid,
            ErrorCode::INVALID_REQUIRED_ACKS,
            format!("acks must be 0, 1 or -1, got {}", req.acks),
        ));
    }
    if let Some(refused) = super::over_topic_limits(cid, &req.topics, |t| t.partitions.len()) {
        return refused;
    }
    let mut response = ProduceResponse {
        topics: Vec::with_capacity(req.topics.len()),
    };
    let request_bytes: usize = req
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| p.records.len())
        .sum();
    let mut work = RequestWork {
        targets: Vec::new(),
        syncs: PendingSyncs::new(),
        decompress_budget: decompression_budget(request_bytes),
    };
    for (ti, t) in req.topics.into_iter().enumerate() {
        let allowed = grants.allows(ResourceType::Topic, &t.topic, Permission::Write);
        let topic = shared.topics.get(&t.topic);
        let mut results = Vec::with_capacity(t.partitions.len());
        for (ei, entry) in t.partitions.iter().enumerate() {
            let result = match &topic {
                _ if !allowed => ProducePartitionResponse::new(
                    entry.partition,
                    ErrorCode::TOPIC_AUTHORIZATION_FAILED,
                    -1,
                ),
                None => {
                    ProducePartitionResponse::new(entry.partition, ErrorCode::UNKNOWN_TOPIC, -1)
                }
                Some(topic) => append_entry(shared, grants, topic, entry, &mut work, (ti, ei)),
            };
            results.push(result);
        }
        response.topics.push(ProduceTopicResponse {
            topic: t.topic,
            partitions: results,
        });
    }
    let syncs = work.syncs;
    if req.acks != -1 || syncs.is_empty() {
        for s in syncs.into_values() {
            // Syncs to the log end, which covers `s.target`. A failure is
            // logged by the log and fails the partition.
            s.partition.sync_in_background();
        }
        return if req.acks == 0 {
            Reply::None
        } else {
            Reply::Now(Response::ok(cid, &response).with_code(first_error(&response)))
        };
    }
    let timeout = Duration::from_millis(u64::from(req.timeout_ms.max(1)));
    Reply::later(async move {
        let waits = syncs.into_values().map(|s| async move {
            let (code, message) =
                match tokio::time::timeout(timeout, s.partition.wait_durable(s.target)).await {
                    Ok(Ok(())) => (ErrorCode::NONE, None),
                    Ok(Err(e)) => (super::storage_code(&e, "fsync"), Some(e.to_string())),
                    Err(_) => (ErrorCode::REQUEST_TIMED_OUT, None),
                };
            (code, message, s.entries)
        });
        for (code, message, entries) in futures_util::future::join_all(waits).await {
            if code == ErrorCode::NONE {
                continue;
            }
            for (ti, ei) in entries {
                if let Some(r) = response
                    .topics
                    .get_mut(ti)
                    .and_then(|t| t.partitions.get_mut(ei))
                {
                    r.error_code = code;
                    r.base_offset = -1;
                    r.more.clear();
                    r.error_message.clone_from(&message);
                }
            }
        }
        Response::ok(cid, &response).with_code(first_error(&response))
    })
}

/// The first partition-level error of the response (`NONE` if none): the
/// request's outcome in `warren_requests_total`.
fn first_error(response: &ProduceResponse) -> ErrorCode {
    response
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| p.error_code)
        .find(|&code| code != ErrorCode::NONE)
        .unwrap_or(ErrorCode::NONE)
}

/// Appends one entry's batch where it goes: the explicit partition, or the
/// partitions routing finds (see [`route`]). Registers the fsyncs to wait for
/// in `syncs`, tied to the entry `at` once every copy is appended.
fn append_entry(
    shared: &Shared,
    grants: &Grants,
    topic: &Arc<Topic>,
    entry: &ProducePartition,
    work: &mut RequestWork,
    at: (usize, usize),
) -> ProducePartitionResponse {
    let RequestWork {
        targets,
        syncs,
        decompress_budget,
    } = work;
    let alternate = if entry.partition == ROUTE_BY_KEY {
        match route(shared, grants, topic, entry.routing_key.as_deref(), targets) {
            Ok(alternate) => alternate,
            Err((code, message)) => {
                tracing::debug!(topic = %topic.config.name, %message, ?code, "batch not routed");
                return ProducePartitionResponse {
                    error_message: Some(message),
                    ..ProducePartitionResponse::new(-1, code, -1)
                };
            }
        }
    } else {
        targets.clear();
        targets.push(u32::try_from(entry.partition).unwrap_or(u32::MAX));
        None
    };
    let dest = alternate.as_ref().unwrap_or(topic);
    let mut result = ProducePartitionResponse {
        alternate_topic: alternate.as_ref().map(|t| t.config.name.clone()),
        ..ProducePartitionResponse::new(entry.partition, ErrorCode::NONE, -1)
    };
    // Once per entry, before any copy is written.
    let batch = match validate(shared, dest, &entry.records, *decompress_budget) {
        Ok(batch) => {
            *decompress_budget = decompress_budget.saturating_sub(batch.decompressed_bytes());
            batch
        }
        Err((code, message)) => {
            tracing::debug!(topic = %dest.config.name, %message, "produced batch refused");
            result.error_code = code;
            result.error_message = Some(message);
            return result;
        }
    };
    for (copy, &index) in targets.iter().enumerate() {
        // Bindings are checked against the partition count; only an explicit
        // partition can miss.
        let Some(partition) = dest.partitions.get(index as usize) else {
            result.error_code = ErrorCode::UNKNOWN_PARTITION;
            result.more.clear();
            return result;
        };
        match partition.log.append_validated(&batch) {
            Ok(info) => {
                partition.appended();
                partition.metrics.produced(
                    info.last_offset.0 - info.base_offset.0 + 1,
                    entry.records.len() as u64,
                );
                if partition.syncs_before_visible() {
                    note_sync(syncs, partition, info.log_end_offset, None);
                }
                let base_offset = info.base_offset.0 as i64;
                if copy == 0 {
                    result.partition = index as i32;
                    result.base_offset = base_offset;
                } else {
                    result.more.push(ProduceCopy {
                        partition: index,
                        base_offset,
                    });
                }
            }
            Err(e) => {
                let code = super::storage_code(&e, "append");
                if code == ErrorCode::DISK_FULL {
                    tracing::warn!(
                        partition = partition.log.name(),
                        "disk full: produce refused"
                    );
                }
                if copy > 0 {
                    let written = targets.get(..copy).unwrap_or_default();
                    result.error_message = Some(format!(
                        "appended to partitions {written:?} of {} before partition {index} failed: {}",
                        dest.config.name,
                        code.name()
                    ));
                } else if matches!(e, warren_storage::Error::Failed(_)) {
                    // Offline for writes: say why and what brings it back.
                    result.error_message = Some(format!(
                        "{e}: partition {index} of {} is offline for writes until the broker restarts",
                        dest.config.name
                    ));
                }
                result.partition = index as i32;
                result.error_code = code;
                result.base_offset = -1;
                result.more.clear();
                return result;
            }
        }
    }
    // Every copy is in: the entry's answer waits for each fsync (acks=-1).
    for &index in targets.iter() {
        if let Some(partition) = dest.partitions.get(index as usize)
            && partition.syncs_before_visible()
        {
            note_sync(syncs, partition, Offset(0), Some(at));
        }
    }
    result
}

/// Records that `partition` must be fsynced up to `target` (keeping the
/// highest target seen), and that entry `at`, if any, waits for it.
fn note_sync(
    syncs: &mut PendingSyncs,
    partition: &Arc<Partition>,
    target: Offset,
    at: Option<(usize, usize)>,
) {
    let sync = syncs
        .entry(Arc::as_ptr(partition) as usize)
        .or_insert_with(|| PendingSync {
            partition: Arc::clone(partition),
            target,
            entries: Vec::new(),
        });
    sync.target = sync.target.max(target);
    sync.entries.extend(at);
}

/// Finds where a batch produced with `partition = -1` goes: fills `targets`
/// with the partitions and returns the alternate topic when the batch goes
/// there instead of to `topic`.
///
/// # Errors
/// `UNROUTABLE` with its message: nothing matched in `topic`, and there is no
/// alternate topic, it does not exist, or nothing matched there either (its
/// own alternate is never followed, so there are no loops).
/// `TOPIC_AUTHORIZATION_FAILED` naming the alternate topic when `grants` do
/// not allow writing to it (checked before looking it up, so a refusal says
/// nothing about whether it exists).
fn route(
    shared: &Shared,
    grants: &Grants,
    topic: &Topic,
    key: Option<&str>,
    targets: &mut Vec<u32>,
) -> Result<Option<Arc<Topic>>, (ErrorCode, String)> {
    route_in(topic, key, targets);
    if !targets.is_empty() {
        return Ok(None);
    }
    let name = &topic.config.name;
    let unmatched = match key {
        Some(key) => format!("no binding of topic {name} matches routing key {key:?}"),
        None => format!(
            "the batch has no routing key and topic {name} routes by {} bindings",
            topic.routing()
        ),
    };
    let unroutable = |message: String| (ErrorCode::UNROUTABLE, message);
    let Some(alternate_name) = &topic.config.routing.alternate_topic else {
        return Err(unroutable(unmatched));
    };
    if !grants.allows(ResourceType::Topic, alternate_name, Permission::Write) {
        return Err((
            ErrorCode::TOPIC_AUTHORIZATION_FAILED,
            format!("{unmatched}; not authorized to write to its alternate topic {alternate_name}"),
        ));
    }
    let Some(alternate) = shared.topics.get(alternate_name) else {
        return Err(unroutable(format!(
            "{unmatched}, and its alternate topic {alternate_name} does not exist"
        )));
    };
    route_in(&alternate, key, targets);
    if targets.is_empty() {
        return Err(unroutable(format!(
            "{unmatched}, nor does any binding of its alternate topic {alternate_name}"
        )));
    }
    Ok(Some(alternate))
}

/// Fills `targets` with the partitions `topic`'s own mode gives `key`: one
/// for `hash` (the partitioner, or round-robin without a key), the bound ones
/// for `direct` and `topic` (none without a key).
fn route_in(topic: &Topic, key: Option<&str>, targets: &mut Vec<u32>) {
    match (topic.routing(), key) {
        (RoutingMode::Hash, key) => {
            targets.clear();
            targets.push(match key {
                Some(key) => partition_for_key(key.as_bytes(), topic.config.partitions),
                None => topic.round_robin(),
            });
        }
        (RoutingMode::Direct | RoutingMode::Topic, Some(key)) => topic.route(key, targets),
        (RoutingMode::Direct | RoutingMode::Topic, None) => targets.clear(),
    }
}

/// Validates an entry's batch for `dest` ([`record_batch::validate`]), with
/// at most `decompress_budget` bytes of decompression left for the request.
///
/// # Errors
/// The code and message of a refused batch: `MESSAGE_TOO_LARGE` for size
/// (the batch's own, or the request's decompression budget), otherwise
/// `CORRUPT_MESSAGE`.
fn validate<'a>(
    shared: &Shared,
    dest: &Topic,
    records: &'a [u8],
    decompress_budget: usize,
) -> Result<ValidatedBatch<'a>, (ErrorCode, String)> {
    let limit = dest.config.log.batch_limit() as usize;
    let per_batch = limit.min(record_batch::DEFAULT_MAX_DECOMPRESSED_BYTES);
    let limits = ValidationLimits {
        max_batch_bytes: limit,
        max_decompressed_bytes: per_batch.min(decompress_budget),
        now_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        max_timestamp_ahead_ms: shared.config.message_timestamp_max_skew_ms,
    };
    record_batch::validate(records, &limits).map_err(|e| match e {
        warren_protocol::Error::DecompressedTooLarge { .. } if decompress_budget < per_batch => (
            ErrorCode::MESSAGE_TOO_LARGE,
            format!(
                "batch refused, nothing written: the request's compressed batches decompress to \
                 more than its budget ({DECOMPRESSION_FLOOR_BYTES} bytes plus \
                 {DECOMPRESSION_RATIO} times the request's record bytes); send fewer compressed \
                 batches per request"
            ),
        ),
        warren_protocol::Error::BatchOverLimit { .. }
        | warren_protocol::Error::DecompressedTooLarge { .. } => (
            ErrorCode::MESSAGE_TOO_LARGE,
            format!("batch refused, nothing written: {e}"),
        ),
        _ => (
            ErrorCode::CORRUPT_MESSAGE,
            format!("batch refused, nothing written: {e}"),
        ),
    })
}

/// Decompression a Produce request may cause in all, at least: 64 MiB (64
/// batches at the default `max.message.bytes`, whatever their ratio). Not
/// configurable.
pub const DECOMPRESSION_FLOOR_BYTES: usize = 64 << 20;

/// Beyond [`DECOMPRESSION_FLOOR_BYTES`], the decompressed bytes a Produce
/// request may cause per byte of record batches it carries. A zstd bomb
/// (130 bytes that inflate to the 1 MiB limit) would otherwise let one 16 MiB
/// frame cost about 129 GB of decompression, minutes of a worker thread;
/// with the budget it costs at most 1 GiB. Real data compresses 3-20x; only
/// requests of more than 64 MiB decompressed at a ratio above 64 meet it.
/// Not configurable.
pub const DECOMPRESSION_RATIO: usize = 64;

/// The decompression budget of a request carrying `request_bytes` of batches.
fn decompression_budget(request_bytes: usize) -> usize {
    DECOMPRESSION_FLOOR_BYTES.saturating_add(request_bytes.saturating_mul(DECOMPRESSION_RATIO))
}

/// What one request's entries share: the routing buffer (the partitions of
/// the entry at hand, so routing allocates nothing per entry), the fsyncs to
/// wait for, and what is left of the decompression budget.
struct RequestWork {
    targets: Vec<u32>,
    syncs: PendingSyncs,
    decompress_budget: usize,
}
