//! CreateTopic: validates the partition count and configs, then creates the
//! partition directories on a blocking thread.

use std::sync::Arc;

use warren_protocol::ErrorCode;
use warren_protocol::api::topics::{CreateTopicRequest, EmptyResponse};
use warren_storage::ShareConfig;
use warren_storage::log_manager::MAX_PARTITIONS;

use super::Reply;
use crate::response::Response;
use crate::server::Shared;

pub fn handle(cid: u32, req: CreateTopicRequest, shared: &Arc<Shared>) -> Reply {
    if !(1..=MAX_PARTITIONS).contains(&req.partitions) {
        return Reply::Now(Response::error(
            cid,
            ErrorCode::INVALID_PARTITIONS,
            format!(
                "partitions must be in 1..={MAX_PARTITIONS}, got {}",
                req.partitions
            ),
        ));
    }
    let mut log = shared.config.log.clone();
    let mut share = ShareConfig::default();
    for (key, value) in &req.configs {
        let set = if ShareConfig::is_key(key) {
            share.set(key, value)
        } else {
            log.set(key, value)
        };
        if let Err(e) = set {
            return Reply::Now(Response::error(
                cid,
                ErrorCode::INVALID_CONFIG,
                e.to_string(),
            ));
        }
    }
    if let Err(e) = log.validate().and_then(|()| share.validate(&req.name)) {
        return Reply::Now(Response::error(
            cid,
            ErrorCode::INVALID_CONFIG,
            e.to_string(),
        ));
    }
    let shared = Arc::clone(shared);
    Reply::later(async move {
        let name = req.name.clone();
        let created = tokio::task::spawn_blocking(move || {
            shared.topics.create(&req.name, req.partitions, log, share)
        })
        .await;
        match created {
            Ok(Ok(())) => {
                tracing::info!(topic = %name, partitions = req.partitions, "topic created");
                Response::ok(cid, &EmptyResponse)
            }
            Ok(Err(e)) => {
                Response::error(cid, super::storage_code(&e, "create topic"), e.to_string())
            }
            Err(e) => Response::error(cid, ErrorCode::UNKNOWN_SERVER_ERROR, e.to_string()),
        }
    })
}
