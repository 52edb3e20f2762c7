//! DescribeTopic: a topic's effective config (log and routing settings), each
//! partition's offsets and size on disk, and its bindings. The catalog
//! service checks describe (read or write) on it.

use std::sync::Arc;

use warren_protocol::api::topics::{
    BindingDescription, DescribeTopicRequest, DescribeTopicResponse, PartitionDescription,
};

use super::Reply;
use super::response;
use crate::auth::Grants;
use crate::state::Shared;

pub fn handle(cid: u32, req: DescribeTopicRequest, shared: &Arc<Shared>, grants: &Grants) -> Reply {
    let topic = match shared.services.catalog.describe(grants, &req.name) {
        Ok(topic) => topic,
        Err(e) => return Reply::Now(super::error::response(cid, &e)),
    };
    let partitions = topic
        .partitions
        .iter()
        .map(|p| PartitionDescription {
            partition: p.index,
            log_start_offset: p.log.log_start_offset().0,
            log_end_offset: p.log.log_end_offset().0,
            high_watermark: p.high_watermark().0,
            size_bytes: p.log.size_bytes(),
            segments: p.log.segments().len() as u32,
        })
        .collect();
    let mut configs = topic.config.log.entries();
    configs.extend(topic.config.routing.entries());
    configs.extend(topic.config.share.entries());
    let bindings = topic
        .bindings()
        .into_iter()
        .map(|(key, partitions)| BindingDescription { key, partitions })
        .collect();
    Reply::Now(response::ok(
        cid,
        &DescribeTopicResponse {
            name: topic.config.name.clone(),
            configs,
            partitions,
            bindings,
        },
    ))
}
