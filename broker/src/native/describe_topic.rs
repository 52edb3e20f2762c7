//! DescribeTopic: a topic's effective config (log and routing settings), each
//! partition's offsets and size on disk, and its bindings.

use std::sync::Arc;

use warren_protocol::ErrorCode;
use warren_protocol::api::topics::{
    BindingDescription, DescribeTopicRequest, DescribeTopicResponse, PartitionDescription,
};

use super::Reply;
use crate::server::Shared;
use crate::transport::response::Response;

pub fn handle(cid: u32, req: DescribeTopicRequest, shared: &Arc<Shared>) -> Reply {
    let Some(topic) = shared.topics.get(&req.name) else {
        return Reply::Now(Response::error(
            cid,
            ErrorCode::UNKNOWN_TOPIC,
            format!("no topic named {:?}", req.name),
        ));
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
    Reply::Now(Response::ok(
        cid,
        &DescribeTopicResponse {
            name: topic.config.name.clone(),
            configs,
            partitions,
            bindings,
        },
    ))
}
