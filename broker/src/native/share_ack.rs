//! ShareAck: decodes, hands the acknowledgements to the queue service
//! ([`crate::services::queues`]: permissions, state changes, dead letters,
//! durability) and encodes each partition's outcome. The state changes
//! happen on the reader task, so a ShareFetch pipelined behind the ack
//! already sees the acknowledged records done; the fsync and the dead-letter
//! writes happen in the reply task, whose response comes after the ack's, in
//! request order.

use std::sync::Arc;

use warren_protocol::ErrorCode;
use warren_protocol::api::share::{ShareAckRequest, ShareAckResponse};

use super::Reply;
use super::error::{code, response};
use super::response;
use crate::auth::Grants;
use crate::error::ErrorKind;
use crate::services::queues::AckRange;
use crate::state::Shared;
use crate::transport::response::Response;

pub fn handle(cid: u32, req: ShareAckRequest, shared: &Arc<Shared>, grants: &Grants) -> Reply {
    let partitions: Vec<(u32, Vec<AckRange>)> = req
        .partitions
        .iter()
        .map(|p| {
            let ranges = p
                .batches
                .iter()
                .map(|b| AckRange {
                    first_offset: b.first_offset,
                    last_offset: b.last_offset,
                    kind: b.kind,
                })
                .collect();
            (p.partition, ranges)
        })
        .collect();
    let queues = &shared.services.queues;
    let done = match queues.ack(grants, &req.group, &req.member_id, &req.topic, &partitions) {
        Ok(done) => done,
        Err(e) => return Reply::Now(response(cid, &e)),
    };
    if !done.waits() {
        return Reply::Now(respond(cid, done.partitions));
    }
    Reply::later(async move { respond(cid, done.finish().await) })
}

fn respond(cid: u32, outcomes: Vec<(u32, Option<ErrorKind>)>) -> Response {
    let partitions = outcomes
        .into_iter()
        .map(|(p, e)| (p, e.map_or(ErrorCode::NONE, code)))
        .collect();
    response::ok(cid, &ShareAckResponse { partitions })
}
