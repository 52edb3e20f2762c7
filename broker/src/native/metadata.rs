//! Metadata: the brokers and the topics with their routing modes and
//! partition leaders, from the catalog service
//! ([`crate::services::catalog`]). A topic named twice is answered once.

use std::sync::Arc;

use warren_protocol::ErrorCode;
use warren_protocol::api::bindings::RoutingMode;
use warren_protocol::api::metadata::{
    BrokerMetadata, MetadataRequest, MetadataResponse, PartitionMetadata, TopicMetadata,
};

use super::Reply;
use super::error::code;
use super::response;
use crate::auth::Grants;
use crate::services::catalog::TopicPlacement;
use crate::state::Shared;

pub fn handle(cid: u32, req: MetadataRequest, shared: &Arc<Shared>, grants: &Grants) -> Reply {
    if let Some(refused) =
        super::over_limit(cid, "topics", req.topics.len(), super::MAX_REQUEST_TOPICS)
    {
        return refused;
    }
    let catalog = &shared.services.catalog;
    let found = |name: String, placement: TopicPlacement| TopicMetadata {
        error_code: ErrorCode::NONE,
        name,
        routing: placement.routing,
        partitions: placement
            .partitions
            .into_iter()
            .map(|(partition, leader)| PartitionMetadata { partition, leader })
            .collect(),
    };
    let topics = if req.topics.is_empty() {
        catalog
            .metadata_all(grants)
            .into_iter()
            .map(|(name, placement)| found(name, placement))
            .collect()
    } else {
        catalog
            .metadata(grants, &req.topics)
            .into_iter()
            .map(|(name, result)| match result {
                Ok(placement) => found(name.to_string(), placement),
                Err(kind) => TopicMetadata {
                    error_code: code(kind),
                    name: name.to_string(),
                    routing: RoutingMode::Hash,
                    partitions: Vec::new(),
                },
            })
            .collect()
    };
    let brokers = catalog
        .brokers()
        .into_iter()
        .map(|b| BrokerMetadata {
            node_id: b.node_id,
            host: b.addr.ip().to_string(),
            port: b.addr.port(),
        })
        .collect();
    Reply::Now(response::ok(cid, &MetadataResponse { brokers, topics }))
}
