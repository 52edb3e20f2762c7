//! DeleteTopic: removes the topic, its files and its bindings on a blocking
//! thread, then every group's committed offsets and share-group state on it
//! (a topic created later under the same name starts afresh).

use std::sync::Arc;

use warren_protocol::ErrorCode;
use warren_protocol::api::topics::{DeleteTopicRequest, EmptyResponse};

use super::Reply;
use crate::response::Response;
use crate::server::Shared;

pub fn handle(cid: u32, req: DeleteTopicRequest, shared: &Arc<Shared>) -> Reply {
    let shared = Arc::clone(shared);
    Reply::later(async move {
        let name = req.name.clone();
        // The topic's committed offsets go too, so a new topic of the same
        // name starts with none (deleted after the topic: a crash between the
        // two leaves offsets for a topic that is gone, which DescribeGroup
        // shows with lag -1 and a later delete of a new topic removes).
        match tokio::task::spawn_blocking(move || {
            shared.topics.delete(&shared.kv, &req.name)?;
            if let Some(end) = shared.groups.forget_topic(&req.name, &shared.kv)? {
                shared.kv.sync_to(end)?;
            }
            if let Err(e) = shared.share.remove_topic(&shared.kv, &req.name) {
                tracing::warn!(topic = %req.name, error = %e, "could not delete the topic's share-group state");
            }
            Ok::<_, warren_storage::Error>(())
        })
        .await
        {
            Ok(Ok(())) => {
                tracing::info!(topic = %name, "topic deleted");
                Response::ok(cid, &EmptyResponse)
            }
            Ok(Err(e)) => {
                Response::error(cid, super::storage_code(&e, "delete topic"), e.to_string())
            }
            Err(e) => Response::error(cid, ErrorCode::UNKNOWN_SERVER_ERROR, e.to_string()),
        }
    })
}
