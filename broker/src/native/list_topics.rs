//! ListTopics: every topic's name and partition count, sorted by name (those
//! the caller may describe), from the catalog service.

use std::sync::Arc;

use warren_protocol::api::topics::{ListTopicsRequest, ListTopicsResponse, TopicListing};

use super::Reply;
use super::response;
use crate::auth::Grants;
use crate::state::Shared;

pub fn handle(cid: u32, _req: ListTopicsRequest, shared: &Arc<Shared>, grants: &Grants) -> Reply {
    let topics = shared
        .services
        .catalog
        .list(grants)
        .into_iter()
        .map(|t| TopicListing {
            name: t.name,
            partitions: t.partitions,
        })
        .collect();
    Reply::Now(response::ok(cid, &ListTopicsResponse { topics }))
}
