//! ListOffsets: earliest (log start), latest (high watermark), or the first
//! record whose timestamp is at or after the one asked for, from the catalog
//! service ([`crate::services::catalog`], which bounds the decompression one
//! request may cause). Not found is offset -1 with no error.

use std::sync::Arc;

use warren_protocol::ErrorCode;
use warren_protocol::api::list_offsets::{
    EARLIEST, LATEST, ListOffsetsPartitionResponse, ListOffsetsRequest, ListOffsetsResponse,
    ListOffsetsTopicResponse,
};

use super::Reply;
use super::error::code;
use super::response;
use crate::auth::Grants;
use crate::services::catalog::OffsetSpec;
use crate::state::Shared;

pub fn handle(cid: u32, req: ListOffsetsRequest, shared: &Arc<Shared>, grants: &Grants) -> Reply {
    if let Some(refused) = super::over_topic_limits(cid, &req.topics, |t| t.partitions.len()) {
        return refused;
    }
    let mut lookup = shared.services.catalog.offsets(grants);
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let specs = t.partitions.iter().map(|&(partition, timestamp)| {
                let spec = match timestamp {
                    LATEST => OffsetSpec::Latest,
                    EARLIEST => OffsetSpec::Earliest,
                    ts => OffsetSpec::Timestamp(ts),
                };
                (partition, spec)
            });
            let partitions = lookup
                .topic(&t.topic, specs)
                .into_iter()
                .map(|(partition, found)| {
                    let (error_code, offset, timestamp) = match found {
                        Ok(Some((offset, timestamp))) => {
                            (ErrorCode::NONE, offset as i64, timestamp.unwrap_or(-1))
                        }
                        Ok(None) => (ErrorCode::NONE, -1, -1),
                        Err(kind) => (code(kind), -1, -1),
                    };
                    ListOffsetsPartitionResponse {
                        partition,
                        error_code,
                        offset,
                        timestamp,
                    }
                })
                .collect();
            ListOffsetsTopicResponse {
                topic: t.topic,
                partitions,
            }
        })
        .collect();
    Reply::Now(response::ok(cid, &ListOffsetsResponse { topics }))
}
