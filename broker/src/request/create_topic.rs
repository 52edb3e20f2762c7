//! CreateTopic: validates the partition count and configs (the log settings
//! and the routing ones, `routing` and `alternate.topic`), then creates the
//! partition directories on a blocking thread. The topic starts with no
//! bindings.

use std::sync::Arc;

use warren_protocol::ErrorCode;
use warren_protocol::api::topics::{CreateTopicRequest, EmptyResponse};
use warren_storage::ShareConfig;
use warren_storage::log_manager::MAX_PARTITIONS;
use warren_storage::{LogConfig, TopicRouting};

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
    let mut routing = TopicRouting::default();
    let mut share = ShareConfig::default();
    for (key, value) in &req.configs {
        let set = if TopicRouting::KEYS.contains(&key.as_str()) {
            routing.set(key, value).map_err(|e| e.to_string())
        } else if ShareConfig::is_key(key) {
            share.set(key, value).map_err(|e| e.to_string())
        } else if LogConfig::KEYS.contains(&key.as_str()) {
            log.set(key, value).map_err(|e| e.to_string())
        } else {
            Err(format!(
                "unknown topic config {key:?} (known: {}, {}, dead.letter.topic, max.delivery.attempts, share.lock.timeout.ms)",
                LogConfig::KEYS.join(", "),
                TopicRouting::KEYS.join(", ")
            ))
        };
        if let Err(message) = set {
            return Reply::Now(Response::error(cid, ErrorCode::INVALID_CONFIG, message));
        }
    }
    if let Err(e) = log
        .validate()
        .and_then(|()| routing.validate(&req.name))
        .and_then(|()| share.validate(&req.name))
    {
        return Reply::Now(Response::error(
            cid,
            ErrorCode::INVALID_CONFIG,
            e.to_string(),
        ));
    }
    let shared = Arc::clone(shared);
    Reply::later(async move {
        let name = req.name.clone();
        let mode = routing.mode;
        let created = tokio::task::spawn_blocking(move || {
            shared
                .topics
                .create(&shared.kv, &req.name, req.partitions, log, routing, share)
        })
        .await;
        match created {
            Ok(Ok(())) => {
                tracing::info!(topic = %name, partitions = req.partitions, routing = %mode, "topic created");
                Response::ok(cid, &EmptyResponse)
            }
            Ok(Err(e)) => {
                Response::error(cid, super::storage_code(&e, "create topic"), e.to_string())
            }
            Err(e) => Response::error(cid, ErrorCode::UNKNOWN_SERVER_ERROR, e.to_string()),
        }
    })
}
