//! ShareAck: applies a member's accept / release / reject of acquired
//! records, writes each changed share-partition's state to the metadata store,
//! dead-letters rejected records (and released ones out of attempts), and
//! answers once all of it is durable.
//!
//! The state changes (and the metadata-store appends, page cache only) happen
//! on the reader task, so a ShareFetch pipelined behind the ack already sees
//! the acknowledged records done; the fsync and the dead-letter writes happen
//! in the reply task. Its response comes after the ack's, in request order.
//! Dead-letter writes that fail are retried in the background; the reject
//! itself is durable once answered, so they do not fail the response.
//!
//! A partition named twice is answered once, with the ranges of both applied
//! in request order. The work is linear in the window plus `n log n` in the
//! ranges however they overlap ([`ShareState::acknowledge_batches`]), and
//! the request is bounded ([`super::MAX_SHARE_PARTITIONS`],
//! [`super::MAX_SHARE_ACK_BATCHES`]).
//!
//! [`ShareState::acknowledge_batches`]: crate::share::ShareState::acknowledge_batches
//!
//! Dead-letter writes need write on the dead-letter topic under the acking
//! session's grants (see `crate::share::dead_letter`); its user is also
//! remembered as the one the timer task's dead-letter writes run as.

use std::collections::HashMap;
use std::sync::Arc;

use warren_protocol::ErrorCode;
use warren_protocol::api::share::{AckBatch, ShareAckRequest, ShareAckResponse};
use warren_storage::Offset;

use super::Reply;
use crate::auth::Grants;
use crate::share::state::DeadLetter;
use crate::share::{ShareKey, SharePartition, sync_kv, validate_group_id, validate_member_id};
use crate::state::Shared;
use crate::transport::response::Response;

pub fn handle(cid: u32, req: ShareAckRequest, shared: &Arc<Shared>, grants: &Grants) -> Reply {
    if let Err((code, message)) =
        validate_group_id(&req.group).and_then(|()| validate_member_id(&req.member_id))
    {
        return Reply::Now(Response::error(cid, code, message));
    }
    let Some(topic) = shared.topics.get(&req.topic) else {
        return Reply::Now(Response::error(
            cid,
            ErrorCode::UNKNOWN_TOPIC,
            format!("no topic named {:?}", req.topic),
        ));
    };
    let batches: usize = req.partitions.iter().map(|p| p.batches.len()).sum();
    if let Some(refused) = super::over_limit(
        cid,
        "partitions",
        req.partitions.len(),
        super::MAX_SHARE_PARTITIONS,
    )
    .or_else(|| super::over_limit(cid, "ranges", batches, super::MAX_SHARE_ACK_BATCHES))
    {
        return refused;
    }
    let max_attempts = topic.config.share.max_delivery_attempts;
    let user = match grants {
        Grants::User { name, .. } => Some(name.as_str()),
        _ => None,
    };
    // A partition named twice is one entry with the ranges of both, in
    // request order: one state change and one store write per partition.
    let mut by_partition: Vec<(u32, Vec<&AckBatch>)> = Vec::new();
    let mut index: HashMap<u32, usize> = HashMap::with_capacity(req.partitions.len());
    for p in &req.partitions {
        let i = *index.entry(p.partition).or_insert_with(|| {
            by_partition.push((p.partition, Vec::new()));
            by_partition.len() - 1
        });
        if let Some((_, list)) = by_partition.get_mut(i) {
            list.extend(&p.batches);
        }
    }
    let mut codes: Vec<(u32, ErrorCode)> = Vec::with_capacity(by_partition.len());
    let mut last: Option<Offset> = None;
    let mut jobs: Vec<(Arc<SharePartition>, Vec<DeadLetter>)> = Vec::new();
    for (partition, batches) in by_partition {
        if topic.partitions.get(partition as usize).is_none() {
            codes.push((partition, ErrorCode::UNKNOWN_PARTITION));
            continue;
        }
        let key = ShareKey {
            group: req.group.clone(),
            topic: req.topic.clone(),
            partition,
        };
        let Some(sp) = shared.share.get(&key) else {
            // The group never fetched from this partition: nothing is acquired.
            let code = if batches.is_empty() {
                ErrorCode::NONE
            } else {
                ErrorCode::INVALID_RECORD_STATE
            };
            codes.push((partition, code));
            continue;
        };
        sp.touch();
        let (out, claims, written) = {
            let mut g = sp.lock();
            if g.dead_letter_user.as_deref() != user {
                g.dead_letter_user = user.map(str::to_owned);
            }
            let out = g.state.acknowledge_batches(
                &req.member_id,
                batches
                    .iter()
                    .map(|b| (b.first_offset, b.last_offset, b.kind)),
                max_attempts,
            );
            let claims = if out.dead_letters {
                g.state.claim_dead_letters()
            } else {
                Vec::new()
            };
            (out, claims, sp.persist(&shared.kv, &mut g))
        };
        if out.freed {
            sp.changed.notify_waiters();
        }
        let code = match written {
            Ok(offset) => {
                last = last.max(offset);
                if out.invalid {
                    ErrorCode::INVALID_RECORD_STATE
                } else {
                    ErrorCode::NONE
                }
            }
            Err(e) => super::storage_code(&e, "writing share-group state"),
        };
        codes.push((partition, code));
        if !claims.is_empty() {
            jobs.push((sp, claims));
        }
    }
    if last.is_none() && jobs.is_empty() {
        return Reply::Now(Response::ok(cid, &ShareAckResponse { partitions: codes }));
    }
    let shared = Arc::clone(shared);
    let grants = grants.clone();
    Reply::later(async move {
        for (sp, claims) in jobs {
            // A failure is logged and retried by the timer task.
            if let Ok(Some(offset)) = crate::share::dead_letter::write(
                &shared.services.share,
                &sp,
                &topic,
                claims,
                &grants,
            )
            .await
            {
                last = last.max(Some(offset));
            }
        }
        if let Some(offset) = last
            && let Err(e) = sync_kv(&shared.kv, offset).await
        {
            let code = super::storage_code(&e, "syncing share-group state");
            for (_, c) in codes.iter_mut().filter(|(_, c)| *c == ErrorCode::NONE) {
                *c = code;
            }
        }
        Response::ok(cid, &ShareAckResponse { partitions: codes })
    })
}
