//! Bind and Unbind: one module for both, as the two requests share their
//! layout, checks and path (they differ only in adding or removing).
//!
//! The cheap checks (topic, mode, partitions, key length) answer at once; the
//! change itself runs on a blocking thread ([`Topics::change_bindings`]:
//! metadata store, fsync, then the in-memory bindings), and the response is
//! sent only once it is durable. Produce requests that arrive after the
//! response see the change.
//!
//! [`Topics::change_bindings`]: crate::topics::Topics::change_bindings

use std::sync::Arc;

use warren_protocol::ErrorCode;
use warren_protocol::api::topics::EmptyResponse;

use super::Reply;
use crate::response::Response;
use crate::routing::BindingError;
use crate::server::Shared;
use crate::topics::BindingChange;

/// Answers a Bind (`change = Bind`) or Unbind request.
pub fn handle(
    cid: u32,
    topic: String,
    key: String,
    partitions: Vec<u32>,
    change: BindingChange,
    shared: &Arc<Shared>,
) -> Reply {
    // Checked here too (and again under the admin lock) so a bad request
    // costs no blocking thread.
    let checked = match shared.topics.get(&topic) {
        Some(t) => t.check_binding(&key, &partitions),
        None => Err(BindingError::UnknownTopic(topic.clone())),
    };
    if let Err(e) = checked {
        return Reply::Now(refusal(cid, &topic, &key, &e));
    }
    let shared = Arc::clone(shared);
    Reply::later(async move {
        let (t, k, ps) = (topic.clone(), key.clone(), partitions.clone());
        let blocking = Arc::clone(&shared);
        let done = tokio::task::spawn_blocking(move || {
            blocking
                .topics
                .change_bindings(&blocking.kv, &t, &k, &ps, change)
        })
        .await;
        match done {
            Ok(Ok(())) => {
                tracing::info!(%topic, %key, ?partitions, ?change, "bindings changed");
                Response::ok(cid, &EmptyResponse)
            }
            Ok(Err(e)) => {
                if let BindingError::Storage(source) = &e {
                    super::storage_code(source, "storing a binding");
                }
                refusal(cid, &topic, &key, &e)
            }
            Err(e) => Response::error(cid, ErrorCode::UNKNOWN_SERVER_ERROR, e.to_string()),
        }
    })
}

/// The error response for a refused or failed change, naming the topic and key.
fn refusal(cid: u32, topic: &str, key: &str, e: &BindingError) -> Response {
    let message = match e {
        BindingError::UnknownTopic(_) => e.to_string(),
        _ => format!("binding {key:?} on topic {topic:?}: {e}"),
    };
    Response::error(cid, e.code(), message)
}
