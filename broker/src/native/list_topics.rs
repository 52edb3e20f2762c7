//! ListTopics: every topic's name and partition count, sorted by name.

use std::sync::Arc;

use warren_protocol::api::topics::{ListTopicsRequest, ListTopicsResponse, TopicListing};

use super::Reply;
use crate::auth::Grants;
use crate::server::Shared;
use crate::transport::response::Response;
use warren_protocol::api::auth::ResourceType;

pub fn handle(cid: u32, _req: ListTopicsRequest, shared: &Arc<Shared>, grants: &Grants) -> Reply {
    let topics = shared
        .topics
        .list()
        .iter()
        .filter(|t| grants.allows_describe(ResourceType::Topic, &t.config.name))
        .map(|t| TopicListing {
            name: t.config.name.clone(),
            partitions: t.config.partitions,
        })
        .collect();
    Reply::Now(Response::ok(cid, &ListTopicsResponse { topics }))
}
