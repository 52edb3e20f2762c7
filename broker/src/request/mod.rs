//! Request dispatch: one module per api key, each with `handle`, which decodes
//! the body, applies it and builds the [`Reply`].
//!
//! Handlers run on the connection's reader task, in request order: appends
//! from one connection hit the log in the order they were sent. Anything that
//! waits (an fsync for acks=-1, a long-poll fetch, topic creation) becomes a
//! spawned task whose response the writer awaits in turn, so the reader goes
//! on with the next request meanwhile (pipelining).
//!
//! A body that does not decode gets `INVALID_REQUEST` with the decoder's
//! message; an unknown api key `UNKNOWN_API_KEY`; an unsupported version
//! `UNSUPPORTED_VERSION`. The connection stays open in all three cases.

use std::sync::Arc;

use bytes::Bytes;
use tokio::task::JoinHandle;
use warren_protocol::ErrorCode;
use warren_protocol::api::bindings::{BindRequest, UnbindRequest};
use warren_protocol::api::groups::ListGroupsRequest;
use warren_protocol::api::{ApiKey, Body, decode};
use warren_protocol::frame::RequestFrame;

use crate::response::Response;
use crate::server::Shared;
use crate::topics::BindingChange;

mod api_versions;
pub(crate) mod bind;
pub(crate) mod create_topic;
pub(crate) mod delete_topic;
mod describe_topic;
mod fetch;
mod groups;
mod list_offsets;
mod list_topics;
mod metadata;
mod produce;
mod share_ack;
mod share_fetch;

/// What a request produces.
pub enum Reply {
    /// The response is ready.
    Now(Response),
    /// The response comes from a task (it waits for something).
    Later(JoinHandle<Response>),
    /// No response at all (produce with acks=0).
    None,
}

impl Reply {
    /// A reply from a future, run as its own task.
    pub fn later(f: impl Future<Output = Response> + Send + 'static) -> Reply {
        Reply::Later(tokio::spawn(f))
    }
}

/// Decodes, applies and answers one request. Never panics on input.
pub fn handle(frame: RequestFrame, shared: &Arc<Shared>) -> Reply {
    let cid = frame.header.correlation_id;
    let key = match ApiKey::try_from(frame.header.api_key) {
        Ok(key) => key,
        Err(e) => {
            return Reply::Now(Response::error(
                cid,
                ErrorCode::UNKNOWN_API_KEY,
                e.to_string(),
            ));
        }
    };
    // ApiVersions answers any version, so negotiation cannot fail.
    if key != ApiKey::ApiVersions
        && let Err(e) = key.check_version(frame.header.api_version)
    {
        return Reply::Now(Response::error(
            cid,
            ErrorCode::UNSUPPORTED_VERSION,
            e.to_string(),
        ));
    }
    let body = frame.body;
    match key {
        ApiKey::ApiVersions => api_versions::handle(cid),
        ApiKey::Metadata => parse(cid, key, body, |r| metadata::handle(cid, r, shared)),
        ApiKey::CreateTopic => parse(cid, key, body, |r| create_topic::handle(cid, r, shared)),
        ApiKey::DeleteTopic => parse(cid, key, body, |r| delete_topic::handle(cid, r, shared)),
        ApiKey::DescribeTopic => parse(cid, key, body, |r| describe_topic::handle(cid, r, shared)),
        ApiKey::ListTopics => parse(cid, key, body, |r| list_topics::handle(cid, r, shared)),
        ApiKey::Produce => parse(cid, key, body, |r| produce::handle(cid, r, shared)),
        ApiKey::Fetch => parse(cid, key, body, |r| fetch::handle(cid, r, shared)),
        ApiKey::ListOffsets => parse(cid, key, body, |r| list_offsets::handle(cid, r, shared)),
        ApiKey::Bind => parse(cid, key, body, |r: BindRequest| {
            bind::handle(
                cid,
                r.topic,
                r.key,
                r.partitions,
                BindingChange::Bind,
                shared,
            )
        }),
        ApiKey::Unbind => parse(cid, key, body, |r: UnbindRequest| {
            bind::handle(
                cid,
                r.topic,
                r.key,
                r.partitions,
                BindingChange::Unbind,
                shared,
            )
        }),
        ApiKey::JoinGroup => parse(cid, key, body, |r| groups::join(cid, r, shared)),
        ApiKey::Heartbeat => parse(cid, key, body, |r| groups::heartbeat(cid, r, shared)),
        ApiKey::LeaveGroup => parse(cid, key, body, |r| groups::leave(cid, r, shared)),
        ApiKey::CommitOffsets => parse(cid, key, body, |r| groups::commit(cid, r, shared)),
        ApiKey::FetchOffsets => parse(cid, key, body, |r| groups::fetch_offsets(cid, r, shared)),
        ApiKey::ListGroups => parse(cid, key, body, |_: ListGroupsRequest| {
            groups::list(cid, shared)
        }),
        ApiKey::DescribeGroup => parse(cid, key, body, |r| groups::describe(cid, r, shared)),
        ApiKey::ShareFetch => parse(cid, key, body, |r| share_fetch::handle(cid, r, shared)),
        ApiKey::ShareAck => parse(cid, key, body, |r| share_ack::handle(cid, r, shared)),
    }
}

fn parse<T: Body>(cid: u32, key: ApiKey, body: Bytes, apply: impl FnOnce(T) -> Reply) -> Reply {
    match decode::<T>(body) {
        Ok(request) => apply(request),
        Err(e) => {
            tracing::debug!(api = key.name(), error = %e, "malformed request body");
            Reply::Now(Response::error(
                cid,
                ErrorCode::INVALID_REQUEST,
                format!("malformed {} request: {e}", key.name()),
            ))
        }
    }
}

/// Logs a storage error the client cannot explain (an I/O failure, corruption)
/// and returns its code.
pub(crate) fn storage_code(e: &warren_storage::Error, what: &str) -> ErrorCode {
    let code = crate::error::storage_error_code(e);
    if matches!(
        code,
        ErrorCode::UNKNOWN_SERVER_ERROR | ErrorCode::STORAGE_ERROR
    ) {
        tracing::error!(error = %e, "{what} failed");
    }
    code
}
