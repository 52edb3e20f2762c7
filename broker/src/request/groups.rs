//! The consumer-group apis: JoinGroup, Heartbeat, LeaveGroup, CommitOffsets,
//! FetchOffsets, ListGroups, DescribeGroup, served by the
//! [`Coordinator`](crate::groups::Coordinator). Everything is answered at once
//! except a commit, which is answered once the store has synced it.

use std::sync::Arc;

use warren_protocol::ErrorCode;
use warren_protocol::api::groups::{
    CommitOffsetsRequest, DescribeGroupRequest, FetchOffsetsRequest, HeartbeatRequest,
    JoinGroupRequest, LeaveGroupRequest,
};
use warren_protocol::api::topics::EmptyResponse;

use super::Reply;
use crate::groups::coordinator::Refusal;
use crate::response::Response;
use crate::server::Shared;

fn refused(cid: u32, (code, message): Refusal) -> Reply {
    Reply::Now(Response::error(cid, code, message))
}

pub fn join(cid: u32, req: JoinGroupRequest, shared: &Arc<Shared>) -> Reply {
    match shared.groups.join(&req, &shared.topics) {
        Ok(r) => Reply::Now(Response::ok(cid, &r)),
        Err(e) => refused(cid, e),
    }
}

pub fn heartbeat(cid: u32, req: HeartbeatRequest, shared: &Arc<Shared>) -> Reply {
    match shared.groups.heartbeat(&req, &shared.topics) {
        Ok(r) => Reply::Now(Response::ok(cid, &r)),
        Err(e) => refused(cid, e),
    }
}

pub fn leave(cid: u32, req: LeaveGroupRequest, shared: &Arc<Shared>) -> Reply {
    match shared
        .groups
        .leave(&req.group, &req.member_id, &shared.topics)
    {
        Ok(()) => Reply::Now(Response::ok(cid, &EmptyResponse)),
        Err(e) => refused(cid, e),
    }
}

pub fn commit(cid: u32, req: CommitOffsetsRequest, shared: &Arc<Shared>) -> Reply {
    match shared.groups.commit(&req, &shared.topics, &shared.kv) {
        Ok((response, None)) => Reply::Now(Response::ok(cid, &response)),
        Ok((response, Some(end))) => {
            let kv = shared.kv.clone();
            Reply::later(async move {
                match tokio::task::spawn_blocking(move || kv.sync_to(end)).await {
                    Ok(Ok(())) => Response::ok(cid, &response),
                    Ok(Err(e)) => Response::error(
                        cid,
                        super::storage_code(&e, "sync committed offsets"),
                        format!("syncing offsets: {e}"),
                    ),
                    Err(e) => Response::error(cid, ErrorCode::UNKNOWN_SERVER_ERROR, e.to_string()),
                }
            })
        }
        Err(e) => refused(cid, e),
    }
}

pub fn fetch_offsets(cid: u32, req: FetchOffsetsRequest, shared: &Arc<Shared>) -> Reply {
    match shared.groups.fetch_offsets(&req, &shared.kv) {
        Ok(r) => Reply::Now(Response::ok(cid, &r)),
        Err(e) => refused(cid, e),
    }
}

pub fn list(cid: u32, shared: &Arc<Shared>) -> Reply {
    Reply::Now(Response::ok(cid, &shared.groups.list(&shared.kv)))
}

pub fn describe(cid: u32, req: DescribeGroupRequest, shared: &Arc<Shared>) -> Reply {
    match shared
        .groups
        .describe(&req.group, &shared.topics, &shared.kv)
    {
        Ok(r) => Reply::Now(Response::ok(cid, &r)),
        Err(e) => refused(cid, e),
    }
}
