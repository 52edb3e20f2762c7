//! The consumer-group apis: JoinGroup, Heartbeat, LeaveGroup, CommitOffsets,
//! FetchOffsets, ListGroups, DescribeGroup, served by the
//! [`Coordinator`](crate::groups::Coordinator). Everything is answered at once
//! except a commit, which is answered once the store has synced it.

use std::sync::Arc;

use warren_protocol::ErrorCode;
use warren_protocol::api::auth::{Permission, ResourceType};
use warren_protocol::api::groups::{
    CommitOffsetsRequest, CommitOffsetsResponse, CommittedOffset, CommittedTopic,
    DescribeGroupRequest, FetchOffsetsRequest, HeartbeatRequest, JoinGroupRequest,
    LeaveGroupRequest, PartitionErrors,
};
use warren_protocol::api::topics::EmptyResponse;

use super::Reply;
use super::response;
use crate::auth::Grants;
use crate::groups::coordinator::Refusal;
use crate::state::Shared;

fn refused(cid: u32, (code, message): Refusal) -> Reply {
    Reply::Now(response::error(cid, code, message))
}

pub fn join(cid: u32, req: JoinGroupRequest, shared: &Arc<Shared>) -> Reply {
    match shared.groups.join(&req, &shared.topics) {
        Ok(r) => Reply::Now(response::ok(cid, &r)),
        Err(e) => refused(cid, e),
    }
}

pub fn heartbeat(cid: u32, req: HeartbeatRequest, shared: &Arc<Shared>) -> Reply {
    match shared.groups.heartbeat(&req, &shared.topics) {
        Ok(r) => Reply::Now(response::ok(cid, &r)),
        Err(e) => refused(cid, e),
    }
}

pub fn leave(cid: u32, req: LeaveGroupRequest, shared: &Arc<Shared>) -> Reply {
    match shared
        .groups
        .leave(&req.group, &req.member_id, &shared.topics)
    {
        Ok(()) => Reply::Now(response::ok(cid, &EmptyResponse)),
        Err(e) => refused(cid, e),
    }
}

/// Takes the topics `grants` may not read out of a request's topic list.
fn take_unreadable<T>(topics: &mut Vec<T>, name: impl Fn(&T) -> &str, grants: &Grants) -> Vec<T> {
    let (allowed, denied) = std::mem::take(topics)
        .into_iter()
        .partition(|t| grants.allows(ResourceType::Topic, name(t), Permission::Read));
    *topics = allowed;
    denied
}

pub fn commit(
    cid: u32,
    mut req: CommitOffsetsRequest,
    shared: &Arc<Shared>,
    grants: &Grants,
) -> Reply {
    let denied = take_unreadable(&mut req.topics, |t| &t.topic, grants);
    let deny = |mut response: CommitOffsetsResponse| {
        response.topics.extend(denied.into_iter().map(|t| {
            PartitionErrors {
                topic: t.topic,
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| (p.partition, ErrorCode::TOPIC_AUTHORIZATION_FAILED))
                    .collect(),
            }
        }));
        response
    };
    match shared.groups.commit(&req, &shared.topics, &shared.kv) {
        Ok((response, None)) => Reply::Now(response::ok(cid, &deny(response))),
        Ok((response, Some(end))) => {
            let response = deny(response);
            let kv = shared.kv.clone();
            Reply::later(async move {
                match tokio::task::spawn_blocking(move || kv.sync_to(end)).await {
                    Ok(Ok(())) => response::ok(cid, &response),
                    Ok(Err(e)) => response::error(
                        cid,
                        super::storage_code(&e, "sync committed offsets"),
                        format!("syncing offsets: {e}"),
                    ),
                    Err(e) => response::error(cid, ErrorCode::UNKNOWN_SERVER_ERROR, e.to_string()),
                }
            })
        }
        Err(e) => refused(cid, e),
    }
}

pub fn fetch_offsets(
    cid: u32,
    mut req: FetchOffsetsRequest,
    shared: &Arc<Shared>,
    grants: &Grants,
) -> Reply {
    let denied = take_unreadable(&mut req.topics, |t| &t.topic, grants);
    match shared.groups.fetch_offsets(&req, &shared.kv) {
        Ok(mut r) => {
            // An empty list answers every committed topic: only the
            // readable ones (the others are not even named).
            r.topics
                .retain(|t| grants.allows(ResourceType::Topic, &t.topic, Permission::Read));
            r.topics.extend(denied.into_iter().map(|t| {
                CommittedTopic {
                    topic: t.topic,
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| CommittedOffset {
                            partition: *p,
                            error_code: ErrorCode::TOPIC_AUTHORIZATION_FAILED,
                            offset: -1,
                            metadata: None,
                        })
                        .collect(),
                }
            }));
            Reply::Now(response::ok(cid, &r))
        }
        Err(e) => refused(cid, e),
    }
}

pub fn list(cid: u32, shared: &Arc<Shared>, grants: &Grants) -> Reply {
    let mut r = shared.groups.list(&shared.kv);
    r.groups
        .retain(|g| grants.allows(ResourceType::Group, &g.group, Permission::Read));
    Reply::Now(response::ok(cid, &r))
}

pub fn describe(
    cid: u32,
    req: DescribeGroupRequest,
    shared: &Arc<Shared>,
    grants: &Grants,
) -> Reply {
    match shared
        .groups
        .describe(&req.group, &shared.topics, &shared.kv)
    {
        Ok(mut r) => {
            crate::groups::keep_readable_offsets(&mut r, grants);
            Reply::Now(response::ok(cid, &r))
        }
        Err(e) => refused(cid, e),
    }
}
