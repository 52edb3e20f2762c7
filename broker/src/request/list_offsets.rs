//! ListOffsets: earliest (log start), latest (high watermark), or the first
//! offset whose batch has a timestamp at or after the one asked for.

use std::sync::Arc;

use warren_protocol::ErrorCode;
use warren_protocol::api::list_offsets::{
    EARLIEST, LATEST, ListOffsetsPartitionResponse, ListOffsetsRequest, ListOffsetsResponse,
    ListOffsetsTopicResponse,
};

use super::Reply;
use crate::auth::Grants;
use crate::response::Response;
use crate::server::Shared;
use warren_protocol::api::auth::{Permission, ResourceType};

pub fn handle(cid: u32, req: ListOffsetsRequest, shared: &Arc<Shared>, grants: &Grants) -> Reply {
    if let Some(refused) = super::over_topic_limits(cid, &req.topics, |t| t.partitions.len()) {
        return refused;
    }
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
                    let hw = p.log.high_watermark().0 as i64;
                    let found = |offset, timestamp| ListOffsetsPartitionResponse {
                        partition,
                        error_code: ErrorCode::NONE,
                        offset,
                        timestamp,
                    };
                    match timestamp {
                        LATEST => found(hw, -1),
                        EARLIEST => found(p.log.log_start_offset().0 as i64, -1),
                        ts => match p.log.offset_for_timestamp(ts) {
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
