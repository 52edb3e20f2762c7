//! Produce: appends each entry's RecordBatch to its partition, in request
//! order, on the connection's reader task (one `pwritev` into the page cache
//! per batch, the batch bytes still the frame's). The log validates the batch
//! (header, CRC, `max.message.bytes`) before writing anything.
//!
//! Durability: for `fsync` topics the high watermark moves only after an
//! fsync, so every append is followed by one: awaited before answering for
//! acks=-1 (with the request's `timeout_ms`), in the background for acks 0 and
//! 1. Concurrent produces to a partition share fsyncs (the log's group commit).

use std::sync::Arc;
use std::time::Duration;

use warren_protocol::api::produce::{
    ProducePartitionResponse, ProduceRequest, ProduceResponse, ProduceTopicResponse, ROUTE_BY_KEY,
};
use warren_protocol::{ErrorCode, partition_for_key};
use warren_storage::Offset;

use super::Reply;
use crate::response::Response;
use crate::server::Shared;
use crate::topics::Partition;

/// An fsync to wait for: the partition, the offset it must cover, and which
/// response entries depend on it (`(topic index, entry index)`).
struct PendingSync {
    partition: Arc<Partition>,
    target: Offset,
    entries: Vec<(usize, usize)>,
}

pub fn handle(cid: u32, req: ProduceRequest, shared: &Arc<Shared>) -> Reply {
    if !matches!(req.acks, -1..=1) {
        return Reply::Now(Response::error(
            cid,
            ErrorCode::INVALID_REQUIRED_ACKS,
            format!("acks must be 0, 1 or -1, got {}", req.acks),
        ));
    }
    let mut syncs: Vec<PendingSync> = Vec::new();
    let mut response = ProduceResponse {
        topics: Vec::with_capacity(req.topics.len()),
    };
    for (ti, t) in req.topics.into_iter().enumerate() {
        let topic = shared.topics.get(&t.topic);
        let mut results = Vec::with_capacity(t.partitions.len());
        for (ei, entry) in t.partitions.into_iter().enumerate() {
            let mut result = ProducePartitionResponse::new(entry.partition, ErrorCode::NONE, -1);
            let Some(topic) = &topic else {
                result.error_code = ErrorCode::UNKNOWN_TOPIC;
                results.push(result);
                continue;
            };
            let index = if entry.partition == ROUTE_BY_KEY {
                match &entry.routing_key {
                    Some(key) => partition_for_key(key.as_bytes(), topic.config.partitions),
                    None => topic.round_robin(),
                }
            } else {
                u32::try_from(entry.partition).unwrap_or(u32::MAX)
            };
            let Some(partition) = topic.partitions.get(index as usize) else {
                result.error_code = ErrorCode::UNKNOWN_PARTITION;
                results.push(result);
                continue;
            };
            result.partition = index as i32;
            match partition.log.append(&entry.records) {
                Ok(info) => {
                    result.base_offset = info.base_offset.0 as i64;
                    partition.appended();
                    if partition.syncs_before_visible() {
                        match syncs
                            .iter_mut()
                            .find(|s| Arc::ptr_eq(&s.partition, partition))
                        {
                            Some(s) => {
                                s.target = info.log_end_offset;
                                s.entries.push((ti, ei));
                            }
                            None => syncs.push(PendingSync {
                                partition: Arc::clone(partition),
                                target: info.log_end_offset,
                                entries: vec![(ti, ei)],
                            }),
                        }
                    }
                }
                Err(e) => {
                    result.error_code = super::storage_code(&e, "append");
                    if result.error_code == ErrorCode::DISK_FULL {
                        tracing::warn!(
                            partition = partition.log.name(),
                            "disk full: produce refused"
                        );
                    }
                }
            }
            results.push(result);
        }
        response.topics.push(ProduceTopicResponse {
            topic: t.topic,
            partitions: results,
        });
    }
    if req.acks != -1 || syncs.is_empty() {
        for s in syncs {
            tokio::spawn(async move {
                // A failure is logged by the log and fails the partition.
                let _ = s.partition.sync_to(s.target).await;
            });
        }
        return if req.acks == 0 {
            Reply::None
        } else {
            Reply::Now(Response::ok(cid, &response))
        };
    }
    let timeout = Duration::from_millis(u64::from(req.timeout_ms.max(1)));
    Reply::later(async move {
        let waits = syncs.into_iter().map(|s| async move {
            let code = match tokio::time::timeout(timeout, s.partition.sync_to(s.target)).await {
                Ok(Ok(())) => ErrorCode::NONE,
                Ok(Err(e)) => super::storage_code(&e, "fsync"),
                Err(_) => ErrorCode::REQUEST_TIMED_OUT,
            };
            (code, s.entries)
        });
        for (code, entries) in futures_util::future::join_all(waits).await {
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
                }
            }
        }
        Response::ok(cid, &response)
    })
}
