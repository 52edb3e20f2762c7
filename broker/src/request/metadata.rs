//! Metadata: this broker (node 0, leader of every partition) and the topics,
//! with their routing modes.

use std::sync::Arc;

use warren_protocol::ErrorCode;
use warren_protocol::api::bindings::RoutingMode;
use warren_protocol::api::metadata::{
    BrokerMetadata, MetadataRequest, MetadataResponse, PartitionMetadata, TopicMetadata,
};

use super::Reply;
use crate::response::Response;
use crate::server::Shared;

pub fn handle(cid: u32, req: MetadataRequest, shared: &Arc<Shared>) -> Reply {
    let describe = |name: &str| match shared.topics.get(name) {
        Some(t) => TopicMetadata {
            error_code: ErrorCode::NONE,
            name: name.to_string(),
            routing: t.routing(),
            partitions: (0..t.config.partitions)
                .map(|p| PartitionMetadata {
                    partition: p,
                    leader: 0,
                })
                .collect(),
        },
        None => TopicMetadata {
            error_code: ErrorCode::UNKNOWN_TOPIC,
            name: name.to_string(),
            routing: RoutingMode::Hash,
            partitions: Vec::new(),
        },
    };
    let topics = if req.topics.is_empty() {
        shared
            .topics
            .list()
            .iter()
            .map(|t| describe(&t.config.name))
            .collect()
    } else {
        req.topics.iter().map(|n| describe(n)).collect()
    };
    let response = MetadataResponse {
        brokers: vec![BrokerMetadata {
            node_id: 0,
            host: shared.advertised.ip().to_string(),
            port: shared.advertised.port(),
        }],
        topics,
    };
    Reply::Now(Response::ok(cid, &response))
}
