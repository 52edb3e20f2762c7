//! DeleteTopic: removes the topic, its files and its bindings on a blocking
//! thread, then every group's committed offsets and share-group state on it
//! (a topic created later under the same name starts afresh).
//!
//! [`delete`] is the whole path, shared with the admin HTTP API
//! (`DELETE /api/topics/NAME`).

use std::sync::Arc;

use warren_protocol::ErrorCode;
use warren_protocol::api::topics::{DeleteTopicRequest, EmptyResponse};

use super::Reply;
use super::create_topic::Refusal;
use crate::server::Shared;
use crate::transport::response::Response;

/// Deletes topic `name` with its bindings, committed offsets and share-group
/// state, on a blocking thread, and logs it.
///
/// # Errors
/// The storage error's code (`UNKNOWN_TOPIC`, ...) and message.
pub(crate) async fn delete(shared: Arc<Shared>, name: String) -> Result<(), Refusal> {
    let topic = name.clone();
    // The topic's committed offsets go too, so a new topic of the same
    // name starts with none (deleted after the topic: a crash between the
    // two leaves offsets for a topic that is gone, which DescribeGroup
    // shows with lag -1 and a later delete of a new topic removes).
    match tokio::task::spawn_blocking(move || {
        shared.topics.delete(&shared.kv, &topic)?;
        if let Some(end) = shared.groups.forget_topic(&topic, &shared.kv)? {
            shared.kv.sync_to(end)?;
        }
        if let Err(e) = shared.share.remove_topic(&shared.kv, &topic) {
            tracing::warn!(%topic, error = %e, "could not delete the topic's share-group state");
        }
        Ok::<_, warren_storage::Error>(())
    })
    .await
    {
        Ok(Ok(())) => {
            tracing::info!(topic = %name, "topic deleted");
            Ok(())
        }
        Ok(Err(e)) => Err((super::storage_code(&e, "delete topic"), e.to_string())),
        Err(e) => Err((ErrorCode::UNKNOWN_SERVER_ERROR, e.to_string())),
    }
}

pub fn handle(cid: u32, req: DeleteTopicRequest, shared: &Arc<Shared>) -> Reply {
    let shared = Arc::clone(shared);
    Reply::later(async move {
        match delete(shared, req.name).await {
            Ok(()) => Response::ok(cid, &EmptyResponse),
            Err((code, message)) => Response::error(cid, code, message),
        }
    })
}
