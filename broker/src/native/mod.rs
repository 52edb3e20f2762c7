//! The native-protocol front-end: dispatch, and one module per api key, each
//! with `handle`, which decodes the body, calls the service that does the
//! work and encodes the [`Reply`]. Produce, Fetch, Metadata, ListTopics,
//! DescribeTopic, ListOffsets, CreateTopic, DeleteTopic, Bind, Unbind, the
//! user/ACL apis, ShareFetch and ShareAck are thin over [`crate::services`], which check their own
//! permissions and return [`crate::services::ServiceError`]s, mapped to
//! codes by [`error`]. The consumer-group apis still hold their logic here
//! (over [`crate::groups`]) and are checked in [`handle`] until they become
//! a service too; Authenticate drives the session's SASL exchange.
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
//!
//! Size bounds: a request naming more topics or partitions than
//! [`MAX_REQUEST_TOPICS`] / [`MAX_REQUEST_PARTITIONS`] (ShareFetch and
//! ShareAck: [`MAX_SHARE_PARTITIONS`](crate::services::queues::MAX_SHARE_PARTITIONS);
//! ShareAck ranges: [`MAX_SHARE_ACK_BATCHES`](crate::services::queues::MAX_SHARE_ACK_BATCHES),
//! checked by the queue service after the permissions) gets `INVALID_REQUEST` naming the limit, before
//! any work is done; below them every handler's work is linear (or n log n)
//! in the request's size: repeated names are folded with sets, never with
//! `Vec::contains`.

use std::sync::Arc;

use bytes::Bytes;
use warren_protocol::ErrorCode;
use warren_protocol::api::auth::{ListUsersRequest, Permission, ResourceType};
use warren_protocol::api::bindings::{BindRequest, UnbindRequest};
use warren_protocol::api::groups::{
    CommitOffsetsRequest, DescribeGroupRequest, FetchOffsetsRequest, HeartbeatRequest,
    JoinGroupRequest, LeaveGroupRequest, ListGroupsRequest,
};
use warren_protocol::api::share::{ShareAckRequest, ShareFetchRequest};
use warren_protocol::api::topics::{CreateTopicRequest, DeleteTopicRequest, DescribeTopicRequest};
use warren_protocol::api::{ApiKey, Body, decode};
use warren_protocol::frame::RequestFrame;

use crate::auth::{Grants, Session};
use crate::state::Shared;
use crate::topics::BindingChange;
pub use crate::transport::Reply;

mod api_versions;
mod auth;
mod bind;
mod create_topic;
mod delete_topic;
mod describe_topic;
pub(crate) mod error;
mod fetch;
mod front_end;
pub(crate) mod groups;
mod list_offsets;
mod list_topics;
mod metadata;
mod produce;
pub(crate) mod response;
mod share_ack;
mod share_fetch;

pub(crate) use front_end::NativeFrontEnd;

/// Most topics one request may name: Metadata's and JoinGroup's topic
/// lists, and the topic entries of Fetch, ListOffsets, CommitOffsets,
/// FetchOffsets and Heartbeat. Not configurable.
pub const MAX_REQUEST_TOPICS: usize = 10_000;

/// Most partitions one request may name over all its topics (Fetch,
/// ListOffsets, CommitOffsets, FetchOffsets, Heartbeat's owned set): ten
/// topics of the largest size a topic may have. Not configurable.
pub const MAX_REQUEST_PARTITIONS: usize = 100_000;

/// The `INVALID_REQUEST` reply for a request over one of the size bounds
/// above, or `None` when `count <= max`.
pub(crate) fn over_limit(cid: u32, what: &str, count: usize, max: usize) -> Option<Reply> {
    (count > max).then(|| {
        Reply::Now(response::error(
            cid,
            ErrorCode::INVALID_REQUEST,
            format!("the request names {count} {what}; at most {max} are allowed per request"),
        ))
    })
}

/// [`over_limit`] for a request's topic entries and their partitions.
pub(crate) fn over_topic_limits<T>(
    cid: u32,
    topics: &[T],
    partitions: impl Fn(&T) -> usize,
) -> Option<Reply> {
    let count: usize = topics.iter().map(partitions).sum();
    over_limit(cid, "topics", topics.len(), MAX_REQUEST_TOPICS)
        .or_else(|| over_limit(cid, "partitions", count, MAX_REQUEST_PARTITIONS))
}

/// Decodes, checks, applies and answers one request. Never panics on input.
///
/// Permission checks come before anything is applied: when the broker has
/// users, an unauthenticated connection gets `AUTHENTICATION_REQUIRED` for
/// every api but ApiVersions and Authenticate; then each api checks its
/// resources (docs/PROTOCOL.md, "Users and permissions"): the services
/// check theirs, with the connection's `grants` passed down; the
/// consumer-group apis are checked here (header error).
pub fn handle(frame: RequestFrame, shared: &Arc<Shared>, session: &mut Session) -> Reply {
    let cid = frame.header.correlation_id;
    let key = match ApiKey::try_from(frame.header.api_key) {
        Ok(key) => key,
        Err(e) => {
            return Reply::Now(response::error(
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
        return Reply::Now(response::error(
            cid,
            ErrorCode::UNSUPPORTED_VERSION,
            e.to_string(),
        ));
    }
    // One atomic load unless users or ACLs changed since the last request.
    let grants = session.grants(&shared.auth);
    let g = &*grants;
    if !g.is_authenticated() && !matches!(key, ApiKey::ApiVersions | ApiKey::Authenticate) {
        return Reply::Now(response::error(
            cid,
            ErrorCode::AUTHENTICATION_REQUIRED,
            format!(
                "{} needs an authenticated connection: this broker has users \
                 (authenticate with SCRAM-SHA-256 first)",
                key.name()
            ),
        ));
    }
    let body = frame.body;
    let topic = ResourceType::Topic;
    let group = ResourceType::Group;
    match key {
        ApiKey::ApiVersions => api_versions::handle(cid),
        ApiKey::Metadata => parse(cid, key, body, |r| metadata::handle(cid, r, shared, g)),
        ApiKey::CreateTopic => parse(cid, key, body, |r: CreateTopicRequest| {
            create_topic::handle(cid, r, shared, g)
        }),
        ApiKey::DeleteTopic => parse(cid, key, body, |r: DeleteTopicRequest| {
            delete_topic::handle(cid, r, shared, g)
        }),
        ApiKey::DescribeTopic => parse(cid, key, body, |r: DescribeTopicRequest| {
            describe_topic::handle(cid, r, shared, g)
        }),
        ApiKey::ListTopics => parse(cid, key, body, |r| list_topics::handle(cid, r, shared, g)),
        ApiKey::Produce => parse(cid, key, body, |r| produce::handle(cid, r, shared, g)),
        ApiKey::Fetch => parse(cid, key, body, |r| fetch::handle(cid, r, shared, g)),
        ApiKey::ListOffsets => parse(cid, key, body, |r| list_offsets::handle(cid, r, shared, g)),
        ApiKey::Bind => parse(cid, key, body, |r: BindRequest| {
            let binding = (r.topic, r.key, r.partitions);
            bind::handle(cid, binding, BindingChange::Bind, shared, g)
        }),
        ApiKey::Unbind => parse(cid, key, body, |r: UnbindRequest| {
            let binding = (r.topic, r.key, r.partitions);
            bind::handle(cid, binding, BindingChange::Unbind, shared, g)
        }),
        ApiKey::JoinGroup => parse(cid, key, body, |r: JoinGroupRequest| {
            let check = bounded(over_limit(
                cid,
                "topics",
                r.topics.len(),
                MAX_REQUEST_TOPICS,
            ))
            .and_then(|()| require(cid, g, group, &r.group, Permission::Read))
            .and_then(|()| {
                r.topics
                    .iter()
                    .try_for_each(|t| require(cid, g, topic, t, Permission::Read))
            });
            guard(check, || groups::join(cid, r, shared))
        }),
        ApiKey::Heartbeat => parse(cid, key, body, |r: HeartbeatRequest| {
            let check = bounded(over_topic_limits(cid, &r.owned, |t| t.partitions.len()))
                .and_then(|()| require(cid, g, group, &r.group, Permission::Read))
                .and_then(|()| {
                    r.owned
                        .iter()
                        .try_for_each(|t| require(cid, g, topic, &t.topic, Permission::Read))
                });
            guard(check, || groups::heartbeat(cid, r, shared))
        }),
        ApiKey::LeaveGroup => parse(cid, key, body, |r: LeaveGroupRequest| {
            guard(require(cid, g, group, &r.group, Permission::Read), || {
                groups::leave(cid, r, shared)
            })
        }),
        ApiKey::CommitOffsets => parse(cid, key, body, |r: CommitOffsetsRequest| {
            let check = bounded(over_topic_limits(cid, &r.topics, |t| t.partitions.len()))
                .and_then(|()| require(cid, g, group, &r.group, Permission::Read));
            guard(check, || groups::commit(cid, r, shared, g))
        }),
        ApiKey::FetchOffsets => parse(cid, key, body, |r: FetchOffsetsRequest| {
            let check = bounded(over_topic_limits(cid, &r.topics, |t| t.partitions.len()))
                .and_then(|()| require(cid, g, group, &r.group, Permission::Read));
            guard(check, || groups::fetch_offsets(cid, r, shared, g))
        }),
        ApiKey::ListGroups => parse(cid, key, body, |_: ListGroupsRequest| {
            groups::list(cid, shared, g)
        }),
        ApiKey::DescribeGroup => parse(cid, key, body, |r: DescribeGroupRequest| {
            guard(require(cid, g, group, &r.group, Permission::Read), || {
                groups::describe(cid, r, shared, g)
            })
        }),
        ApiKey::ShareFetch => parse(cid, key, body, |r: ShareFetchRequest| {
            share_fetch::handle(cid, r, shared, g)
        }),
        ApiKey::ShareAck => parse(cid, key, body, |r: ShareAckRequest| {
            share_ack::handle(cid, r, shared, g)
        }),
        ApiKey::Authenticate => parse(cid, key, body, |r| {
            auth::authenticate(cid, r, shared, session)
        }),
        ApiKey::CreateUser => parse(cid, key, body, |r| {
            auth::create_user(cid, r, shared, g, session.info.peer)
        }),
        ApiKey::DeleteUser => parse(cid, key, body, |r| auth::delete_user(cid, r, shared, g)),
        ApiKey::ListUsers => parse(cid, key, body, |_: ListUsersRequest| {
            auth::list_users(cid, shared, g)
        }),
        ApiKey::CreateAcl => parse(cid, key, body, |r| auth::create_acl(cid, r, shared, g)),
        ApiKey::DeleteAcl => parse(cid, key, body, |r| auth::delete_acl(cid, r, shared, g)),
        ApiKey::ListAcls => parse(cid, key, body, |r| auth::list_acls(cid, r, shared, g)),
    }
}

/// Checks one permission; a denial is the error reply to send.
fn require(
    cid: u32,
    grants: &Grants,
    resource_type: ResourceType,
    name: &str,
    needed: Permission,
) -> Result<(), Reply> {
    grants.check(resource_type, name, needed).map_err(|denied| {
        let what = match resource_type {
            ResourceType::Cluster => "the cluster".to_string(),
            t => format!("{} {name:?}", t.name()),
        };
        Reply::Now(response::error(
            cid,
            Grants::denied_code(denied, resource_type),
            format!("not authorized: {needed} on {what} is needed"),
        ))
    })
}

/// A size bound's refusal ([`over_limit`]) as a check for [`guard`].
fn bounded(refusal: Option<Reply>) -> Result<(), Reply> {
    refusal.map_or(Ok(()), Err)
}

/// Runs `then` if `check` passed, else answers with its denial.
fn guard(check: Result<(), Reply>, then: impl FnOnce() -> Reply) -> Reply {
    match check {
        Ok(()) => then(),
        Err(denied) => denied,
    }
}

fn parse<T: Body>(cid: u32, key: ApiKey, body: Bytes, apply: impl FnOnce(T) -> Reply) -> Reply {
    match decode::<T>(body) {
        Ok(request) => apply(request),
        Err(e) => {
            tracing::debug!(api = key.name(), error = %e, "malformed request body");
            Reply::Now(response::error(
                cid,
                ErrorCode::INVALID_REQUEST,
                format!("malformed {} request: {e}", key.name()),
            ))
        }
    }
}

/// The native code of a storage error, logged as the services log one the
/// client cannot explain ([`ServiceError::storage`](crate::services::ServiceError::storage)).
pub(crate) fn storage_code(e: &warren_storage::Error, what: &str) -> ErrorCode {
    crate::error::storage_code(e, what)
}
