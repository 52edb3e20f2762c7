//! Bind and Unbind: one module for both, as the two requests share their
//! layout, checks and path (they differ only in adding or removing).
//!
//! The cheap checks (topic, mode, partitions, key length) answer at once; the
//! change itself runs on a blocking thread ([`Topics::change_bindings`]:
//! metadata store, fsync, then the in-memory bindings), and the response is
//! sent only once it is durable. Produce requests that arrive after the
//! response see the change.
//!
//! [`check`] and [`apply`] are shared with the admin HTTP API
//! (`POST`/`DELETE /api/topics/NAME/bindings`).
//!
//! [`Topics::change_bindings`]: crate::topics::Topics::change_bindings

use std::sync::Arc;

use warren_protocol::ErrorCode;
use warren_protocol::api::topics::EmptyResponse;

use super::Reply;
use super::create_topic::Refusal;
use crate::routing::BindingError;
use crate::server::Shared;
use crate::topics::BindingChange;
use crate::transport::response::Response;

/// Answers a Bind (`change = Bind`) or Unbind request.
pub fn handle(
    cid: u32,
    topic: String,
    key: String,
    partitions: Vec<u32>,
    change: BindingChange,
    shared: &Arc<Shared>,
) -> Reply {
    if let Err((code, message)) = check(shared, &topic, &key, &partitions) {
        return Reply::Now(Response::error(cid, code, message));
    }
    let shared = Arc::clone(shared);
    Reply::later(async move {
        match apply(shared, topic, key, partitions, change).await {
            Ok(()) => Response::ok(cid, &EmptyResponse),
            Err((code, message)) => Response::error(cid, code, message),
        }
    })
}

/// The cheap checks of a Bind or Unbind (topic, mode, partitions, key
/// length), made before [`apply`] so a bad request costs no blocking thread
/// ([`apply`] checks again under the admin lock).
///
/// # Errors
/// `UNKNOWN_TOPIC` or `INVALID_BINDING` with a message naming topic and key.
pub(crate) fn check(
    shared: &Shared,
    topic: &str,
    key: &str,
    partitions: &[u32],
) -> Result<(), Refusal> {
    let checked = match shared.topics.get(topic) {
        Some(t) => t.check_binding(key, partitions),
        None => Err(BindingError::UnknownTopic(topic.to_owned())),
    };
    checked.map_err(|e| refusal(topic, key, &e))
}

/// Makes the change on a blocking thread; returns once it is durable.
///
/// # Errors
/// As [`check`], and the store's errors.
pub(crate) async fn apply(
    shared: Arc<Shared>,
    topic: String,
    key: String,
    partitions: Vec<u32>,
    change: BindingChange,
) -> Result<(), Refusal> {
    let (t, k, ps) = (topic.clone(), key.clone(), partitions.clone());
    let done = tokio::task::spawn_blocking(move || {
        shared
            .topics
            .change_bindings(&shared.kv, &t, &k, &ps, change)
    })
    .await;
    match done {
        Ok(Ok(())) => {
            tracing::info!(%topic, %key, ?partitions, ?change, "bindings changed");
            Ok(())
        }
        Ok(Err(e)) => {
            if let BindingError::Storage(source) = &e {
                super::storage_code(source, "storing a binding");
            }
            Err(refusal(&topic, &key, &e))
        }
        Err(e) => Err((ErrorCode::UNKNOWN_SERVER_ERROR, e.to_string())),
    }
}

/// The error for a refused or failed change, naming the topic and key.
fn refusal(topic: &str, key: &str, e: &BindingError) -> Refusal {
    let message = match e {
        BindingError::UnknownTopic(_) => e.to_string(),
        _ => format!("binding {key:?} on topic {topic:?}: {e}"),
    };
    (e.code(), message)
}
