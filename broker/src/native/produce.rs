//! Produce: decodes, hands the entries to the produce service
//! ([`crate::services::produce`], which validates, routes, appends and waits
//! for durability), and encodes its results. acks=-1 on an `fsync` topic
//! answers from a task once the fsyncs are done, so the reader goes on with
//! the next request meanwhile; acks=0 answers nothing.

use std::sync::Arc;
use std::time::Duration;

use warren_protocol::ErrorCode;
use warren_protocol::api::produce::{
    ProduceCopy, ProducePartitionResponse, ProduceRequest, ProduceResponse, ProduceTopicResponse,
    ROUTE_BY_KEY,
};

use super::Reply;
use super::error::code_of;
use super::response;
use crate::auth::Grants;
use crate::services::produce::{Acks, EntryResult, ProduceEntry, ProduceResults, Produced};
use crate::state::Shared;
use crate::transport::response::Response;

pub fn handle(cid: u32, req: ProduceRequest, shared: &Arc<Shared>, grants: &Grants) -> Reply {
    let acks = match req.acks {
        0 => Acks::None,
        1 => Acks::Leader,
        -1 => Acks::All,
        other => {
            return Reply::Now(response::error(
                cid,
                ErrorCode::INVALID_REQUIRED_ACKS,
                format!("acks must be 0, 1 or -1, got {other}"),
            ));
        }
    };
    if let Some(refused) = super::over_topic_limits(cid, &req.topics, |t| t.partitions.len()) {
        return refused;
    }
    let mut produce = shared.services.produce.start(grants, req.record_bytes());
    for t in &req.topics {
        produce.topic(
            &t.topic,
            t.partitions.iter().map(|p| ProduceEntry {
                partition: (p.partition != ROUTE_BY_KEY)
                    .then(|| u32::try_from(p.partition).unwrap_or(u32::MAX)),
                routing_key: p.routing_key.as_deref(),
                records: &p.records,
            }),
        );
    }
    let produced = produce.finish(acks);
    let timeout = Duration::from_millis(u64::from(req.timeout_ms.max(1)));
    // What the response echoes, so the request's record bytes (slices of
    // its frame) are not held while an fsync is awaited.
    let asked: Vec<(String, Vec<i32>)> = req
        .topics
        .into_iter()
        .map(|t| (t.topic, t.partitions.iter().map(|p| p.partition).collect()))
        .collect();
    match produced {
        Produced::Done(_) if acks == Acks::None => Reply::None,
        Produced::Done(results) => Reply::Now(respond(cid, asked, results)),
        Produced::Waiting(wait) => Reply::later(async move {
            let results = wait.wait(timeout).await;
            respond(cid, asked, results)
        }),
    }
}

/// The response for the `asked` topics and partitions' `results`, with the
/// first partition-level error as the request's outcome in
/// `warren_requests_total`.
fn respond(cid: u32, asked: Vec<(String, Vec<i32>)>, results: ProduceResults) -> Response {
    let mut first_error = ErrorCode::NONE;
    let topics = asked
        .into_iter()
        .zip(results)
        .map(|((topic, partitions), results)| ProduceTopicResponse {
            topic,
            partitions: partitions
                .into_iter()
                .zip(results)
                .map(|(partition, r)| {
                    let entry = entry_response(partition, r);
                    if first_error == ErrorCode::NONE {
                        first_error = entry.error_code;
                    }
                    entry
                })
                .collect(),
        })
        .collect();
    response::ok(cid, &ProduceResponse { topics }).with_outcome(first_error.0)
}

/// One entry's answer: the partition appended to (the one asked for until
/// one is chosen), its base offset or -1, the further copies, the alternate
/// topic, and the error.
fn entry_response(asked: i32, r: EntryResult) -> ProducePartitionResponse {
    let code = code_of(r.error.as_ref());
    ProducePartitionResponse {
        alternate_topic: r.alternate_topic,
        error_message: r.error.and_then(|e| e.message),
        more: r
            .more
            .into_iter()
            .map(|(partition, base_offset)| ProduceCopy {
                partition,
                base_offset: base_offset as i64,
            })
            .collect(),
        ..ProducePartitionResponse::new(
            r.partition.map_or(asked, |p| p as i32),
            code,
            r.base_offset.map_or(-1, |o| o as i64),
        )
    }
}
