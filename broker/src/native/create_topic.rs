//! CreateTopic: validates the partition count and configs (the log settings
//! and the routing ones, `routing` and `alternate.topic`), then creates the
//! partition directories on a blocking thread. The topic starts with no
//! bindings.
//!
//! [`settings`], [`authorize`] and [`create`] are the whole path, shared
//! with the admin HTTP API (`POST /api/topics`), so both check and create
//! topics alike.
//!
//! A topic that names an `alternate.topic` or a `dead.letter.topic` sends
//! records there on its users' behalf, so creating one needs write on those
//! topics as well as admin on the new one ([`authorize`]); produce and
//! dead-lettering check write again when they append, as grants change.

use std::sync::Arc;

use warren_protocol::ErrorCode;
use warren_protocol::api::auth::{Permission, ResourceType};
use warren_protocol::api::topics::{CreateTopicRequest, EmptyResponse};
use warren_storage::LogConfig;
use warren_storage::log_manager::MAX_PARTITIONS;

use super::Reply;
use crate::auth::Grants;
use crate::metadata::{ShareConfig, TopicRouting};
use crate::server::Shared;
use crate::transport::response::Response;

/// A refused or failed admin operation: its code and message.
pub(crate) type Refusal = (ErrorCode, String);

/// A new topic's checked settings.
pub(crate) struct TopicSettings {
    pub partitions: u32,
    pub log: LogConfig,
    pub routing: TopicRouting,
    pub share: ShareConfig,
}

/// Checks a partition count and a list of topic configs (the broker's log
/// defaults apply to keys left out) for a topic named `name`.
///
/// # Errors
/// `INVALID_PARTITIONS` or `INVALID_CONFIG` with the reason.
pub(crate) fn settings(
    shared: &Shared,
    name: &str,
    partitions: u32,
    configs: &[(String, String)],
) -> Result<TopicSettings, Refusal> {
    if !(1..=MAX_PARTITIONS).contains(&partitions) {
        return Err((
            ErrorCode::INVALID_PARTITIONS,
            format!("partitions must be in 1..={MAX_PARTITIONS}, got {partitions}"),
        ));
    }
    let mut log = shared.config.log.clone();
    let mut routing = TopicRouting::default();
    let mut share = ShareConfig::default();
    for (key, value) in configs {
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
        set.map_err(|message| (ErrorCode::INVALID_CONFIG, message))?;
    }
    log.validate()
        .and_then(|()| routing.validate(name))
        .and_then(|()| share.validate(name))
        .map_err(|e| (ErrorCode::INVALID_CONFIG, e.to_string()))?;
    Ok(TopicSettings {
        partitions,
        log,
        routing,
        share,
    })
}

/// Checks that the caller may send records where topic `name`'s `settings`
/// route them: write on its `alternate.topic` and its `dead.letter.topic`,
/// if set (whether or not they exist yet). Admin on `name` itself is checked
/// before, by each front-end.
///
/// # Errors
/// `TOPIC_AUTHORIZATION_FAILED` naming the setting and the topic.
pub(crate) fn authorize(
    grants: &Grants,
    name: &str,
    settings: &TopicSettings,
) -> Result<(), Refusal> {
    let targets = [
        (
            "alternate.topic",
            settings.routing.alternate_topic.as_deref(),
        ),
        (
            "dead.letter.topic",
            settings.share.dead_letter_topic.as_deref(),
        ),
    ];
    for (key, target) in targets {
        if let Some(target) = target
            && !grants.allows(ResourceType::Topic, target, Permission::Write)
        {
            return Err((
                ErrorCode::TOPIC_AUTHORIZATION_FAILED,
                format!(
                    "not authorized: topic {name:?} with {key} {target:?} needs write on topic {target:?}"
                ),
            ));
        }
    }
    Ok(())
}

/// Creates topic `name` with checked `settings` on a blocking thread (files
/// and fsyncs), and logs it.
///
/// # Errors
/// The storage error's code (`TOPIC_ALREADY_EXISTS`, `INVALID_TOPIC_NAME`,
/// `DISK_FULL`, ...) and message.
pub(crate) async fn create(
    shared: Arc<Shared>,
    name: String,
    settings: TopicSettings,
) -> Result<(), Refusal> {
    let TopicSettings {
        partitions,
        log,
        routing,
        share,
    } = settings;
    let mode = routing.mode;
    let topic = name.clone();
    let created = tokio::task::spawn_blocking(move || {
        shared
            .topics
            .create(&shared.kv, &topic, partitions, log, routing, share)
    })
    .await;
    match created {
        Ok(Ok(())) => {
            tracing::info!(topic = %name, partitions, routing = %mode, "topic created");
            Ok(())
        }
        Ok(Err(e)) => Err((super::storage_code(&e, "create topic"), e.to_string())),
        Err(e) => Err((ErrorCode::UNKNOWN_SERVER_ERROR, e.to_string())),
    }
}

pub fn handle(cid: u32, req: CreateTopicRequest, shared: &Arc<Shared>, grants: &Grants) -> Reply {
    let settings = match settings(shared, &req.name, req.partitions, &req.configs)
        .and_then(|s| authorize(grants, &req.name, &s).map(|()| s))
    {
        Ok(s) => s,
        Err((code, message)) => return Reply::Now(Response::error(cid, code, message)),
    };
    let shared = Arc::clone(shared);
    Reply::later(async move {
        match create(shared, req.name, settings).await {
            Ok(()) => Response::ok(cid, &EmptyResponse),
            Err((code, message)) => Response::error(cid, code, message),
        }
    })
}
