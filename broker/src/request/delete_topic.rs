//! DeleteTopic: removes the topic and its files on a blocking thread, then
//! its share groups' state (a topic created later under the same name starts
//! afresh).

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
        let deleted = tokio::task::spawn_blocking(move || {
            shared.topics.delete(&req.name)?;
            if let Err(e) = shared.share.remove_topic(&shared.kv, &req.name) {
                tracing::warn!(topic = %req.name, error = %e, "could not delete the topic's share-group state");
            }
            Ok(())
        });
        match deleted.await {
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
