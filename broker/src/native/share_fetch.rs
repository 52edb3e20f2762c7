//! ShareFetch: decodes, hands the request to the queue service
//! ([`crate::services::queues`]: permissions, acquisition, the long poll)
//! and encodes the acquired offset ranges with the file ranges of the
//! batches holding them (sent with `sendfile(2)`, as Fetch does). A fetch
//! that must wait answers from a task.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use warren_protocol::ErrorCode;
use warren_protocol::api::share::{ShareFetchRequest, put_share_partition_head};
use warren_protocol::wire::put_array_len;

use super::Reply;
use super::error::{code, response};
use super::response;
use crate::auth::Grants;
use crate::services::queues::{ShareFetch, ShareFetchResult, ShareFetched};
use crate::state::Shared;
use crate::transport::response::{Chunk, Response};

pub fn handle(cid: u32, req: ShareFetchRequest, shared: &Arc<Shared>, grants: &Grants) -> Reply {
    let fetch = ShareFetch {
        group: &req.group,
        member: &req.member_id,
        topic: &req.topic,
        partitions: &req.partitions,
        max_records: req.max_records,
        max_wait: Duration::from_millis(u64::from(req.max_wait_ms)),
    };
    match shared.services.queues.fetch(grants, &fetch) {
        Err(e) => Reply::Now(response(cid, &e)),
        Ok(ShareFetched::Ready(result)) => Reply::Now(respond(cid, result)),
        Ok(ShareFetched::Waiting(poll)) => Reply::later(async move {
            match poll.wait().await {
                Ok(result) => respond(cid, result),
                Err(e) => response(cid, &e),
            }
        }),
    }
}

/// The response frame: the lock timeout, then each partition's head and
/// the file ranges of its acquired batches.
fn respond(cid: u32, result: ShareFetchResult) -> Response {
    let mut chunks = Vec::new();
    let mut head = BytesMut::with_capacity(256);
    let mut first_error = ErrorCode::NONE;
    head.put_u32(u32::try_from(result.lock_timeout.as_millis()).unwrap_or(u32::MAX));
    put_array_len(&mut head, result.entries.len());
    for entry in result.entries {
        let entry_code = entry.error.map_or(ErrorCode::NONE, code);
        if first_error == ErrorCode::NONE {
            first_error = entry_code;
        }
        let a = entry.acquisition;
        put_share_partition_head(
            &mut head,
            entry.partition,
            entry_code,
            &a.acquired,
            u32::try_from(a.bytes).unwrap_or(u32::MAX),
        );
        for slice in a.slices {
            chunks.push(Chunk::Bytes(head.split().freeze()));
            chunks.push(Chunk::File(slice));
        }
    }
    chunks.push(Chunk::Bytes(head.freeze()));
    response::from_body_chunks(cid, chunks, first_error)
}
