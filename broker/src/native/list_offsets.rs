//! ListOffsets: earliest (log start), latest (high watermark), or the first
//! record whose timestamp is at or after the one asked for.
//!
//! By timestamp, the record is found in its batch by streaming the records
//! (a zstd batch is decompressed through its window, never whole). One
//! request decompresses at most [`MAX_DECOMPRESSED_BYTES_PER_REQUEST`]
//! across its partitions; past it, a partition whose batch is compressed is
//! answered at batch granularity (the batch's base offset and
//! `max_timestamp`: at or before the exact record), so a request naming many
//! partitions of huge compressed batches cannot hold a worker for long.

use std::sync::Arc;

use warren_protocol::ErrorCode;
use warren_protocol::api::list_offsets::{
    EARLIEST, LATEST, ListOffsetsPartitionResponse, ListOffsetsRequest, ListOffsetsResponse,
    ListOffsetsTopicResponse,
};

use super::Reply;
use crate::auth::Grants;
use crate::server::Shared;
use crate::transport::response::Response;
use warren_protocol::api::auth::{Permission, ResourceType};

/// Most bytes of zstd records one ListOffsets request decompresses to find
/// records by timestamp (one batch at the largest a produce accepts). Not
/// configurable.
pub const MAX_DECOMPRESSED_BYTES_PER_REQUEST: u64 = 64 << 20;

pub fn handle(cid: u32, req: ListOffsetsRequest, shared: &Arc<Shared>, grants: &Grants) -> Reply {
    if let Some(refused) = super::over_topic_limits(cid, &req.topics, |t| t.partitions.len()) {
        return refused;
    }
    let mut budget = MAX_DECOMPRESSED_BYTES_PER_REQUEST;
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let allowed = grants.allows(ResourceType::Topic, &t.topic, Permission::Read);
            let topic = shared.topics.get(&t.topic);
            let partitions = t
                .partitions
                .iter()
                .map(|&(partition, timestamp)| {
                    let failed = |error_code| ListOffsetsPartitionResponse {
                        partition,
                        error_code,
                        offset: -1,
                        timestamp: -1,
                    };
                    if !allowed {
                        return failed(ErrorCode::TOPIC_AUTHORIZATION_FAILED);
                    }
                    let Some(topic) = &topic else {
                        return failed(ErrorCode::UNKNOWN_TOPIC);
                    };
                    let Some(p) = topic.partitions.get(partition as usize) else {
                        return failed(ErrorCode::UNKNOWN_PARTITION);
                    };
                    let hw = p.high_watermark().0 as i64;
                    let found = |offset, timestamp| ListOffsetsPartitionResponse {
                        partition,
                        error_code: ErrorCode::NONE,
                        offset,
                        timestamp,
                    };
                    match timestamp {
                        LATEST => found(hw, -1),
                        EARLIEST => found(p.log.log_start_offset().0 as i64, -1),
                        ts => match p.log.offset_for_timestamp_within(ts, &mut budget) {
                            Ok(Some((o, t))) if (o.0 as i64) < hw => found(o.0 as i64, t),
                            Ok(_) => found(-1, -1),
                            Err(e) => failed(super::storage_code(&e, "offset for timestamp")),
                        },
                    }
                })
                .collect();
            ListOffsetsTopicResponse {
                topic: t.topic,
                partitions,
            }
        })
        .collect();
    Reply::Now(Response::ok(cid, &ListOffsetsResponse { topics }))
}
