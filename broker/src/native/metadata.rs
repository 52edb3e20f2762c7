//! Metadata: this broker (node 0, leader of every partition) and the topics,
//! with their routing modes. A topic named twice is answered once.

use std::collections::HashSet;
use std::sync::Arc;

use warren_protocol::ErrorCode;
use warren_protocol::api::bindings::RoutingMode;
use warren_protocol::api::metadata::{
    BrokerMetadata, MetadataRequest, MetadataResponse, PartitionMetadata, TopicMetadata,
};

use super::Reply;
use crate::auth::Grants;
use crate::server::Shared;
use crate::transport::response::Response;
use warren_protocol::api::auth::ResourceType;

pub fn handle(cid: u32, req: MetadataRequest, shared: &Arc<Shared>, grants: &Grants) -> Reply {
    if let Some(refused) =
        super::over_limit(cid, "topics", req.topics.len(), super::MAX_REQUEST_TOPICS)
    {
        return refused;
    }
    let readable = |name: &str| grants.allows_describe(ResourceType::Topic, name);
    let describe = |name: &str| match shared.topics.get(name).filter(|_| readable(name)) {
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
            // A topic the user may not read is reported as such whether or
            // not it exists (Kafka does the same).
            error_code: if readable(name) {
                ErrorCode::UNKNOWN_TOPIC
            } else {
                ErrorCode::TOPIC_AUTHORIZATION_FAILED
            },
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
            .filter(|t| readable(&t.config.name))
            .map(|t| describe(&t.config.name))
            .collect()
    } else {
        // A name asked for twice is answered once: each answer lists every
        // partition, so repeats would multiply the response.
        let mut seen = HashSet::with_capacity(req.topics.len());
        req.topics
            .iter()
            .filter(|n| seen.insert(n.as_str()))
            .map(|n| describe(n))
            .collect()
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
