//! ShareFetch: acquires records for a share-group member and answers with the
//! acquired offset ranges and the file ranges of the batches holding them
//! (sent with `sendfile(2)`, as Fetch does).
//!
//! Partitions are visited from a rotating start, so with `max_records` smaller
//! than what is available every partition gets its turn. The first attempt
//! runs on the reader task; if it acquires nothing and `max_wait_ms > 0`, a
//! task waits, registered with every partition's high-watermark notifier and
//! every share-partition's `changed` notifier *before* it tries again (no lost
//! wake-up), until something is acquired, the deadline passes, or the broker
//! shuts down. No polling loop.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use futures_util::future::select_all;
use tokio::sync::futures::Notified;
use tokio::time::Instant;
use warren_protocol::ErrorCode;
use warren_protocol::api::share::{ShareFetchRequest, put_share_partition_head};
use warren_protocol::wire::put_array_len;

use super::Reply;
use crate::auth::Grants;
use crate::partition::Partition;
use crate::share::{Acquisition, ShareKey, SharePartition, validate_group_id, validate_member_id};
use crate::state::Shared;
use crate::transport::response::{Chunk, Response};

/// Most record bytes in one ShareFetch response (the first batch always goes
/// whole). Not configurable: a client's default frame limit is 16 MiB.
pub const MAX_SHARE_FETCH_BYTES: u32 = 8 << 20;

/// One requested partition, resolved.
struct Target {
    partition: u32,
    resolved: Result<(Arc<Partition>, Arc<SharePartition>), ErrorCode>,
}

struct Plan {
    cid: u32,
    topic: String,
    member: Arc<str>,
    /// The user fetching (`None` while no user exists): it becomes the one
    /// the timer's dead-letter writes run as, see `crate::share::dead_letter`.
    user: Option<Arc<str>>,
    max_records: u64,
    lock_timeout: Duration,
    targets: Vec<Target>,
}

pub fn handle(cid: u32, req: ShareFetchRequest, shared: &Arc<Shared>, grants: &Grants) -> Reply {
    if let Err((code, message)) =
        validate_group_id(&req.group).and_then(|()| validate_member_id(&req.member_id))
    {
        return Reply::Now(Response::error(cid, code, message));
    }
    if let Some(refused) = super::over_limit(
        cid,
        "partitions",
        req.partitions.len(),
        super::MAX_SHARE_PARTITIONS,
    ) {
        return refused;
    }
    if req.max_records == 0 {
        return Reply::Now(Response::error(
            cid,
            ErrorCode::INVALID_REQUEST,
            "max_records must be at least 1",
        ));
    }
    let Some(topic) = shared.topics.get(&req.topic) else {
        return Reply::Now(Response::error(
            cid,
            ErrorCode::UNKNOWN_TOPIC,
            format!("no topic named {:?}", req.topic),
        ));
    };
    let count = topic.partitions.len();
    let mut wanted: Vec<u32> = if req.partitions.is_empty() {
        let start = shared.share.rotate(count);
        (0..count).map(|i| ((start + i) % count) as u32).collect()
    } else {
        req.partitions.clone()
    };
    // A partition named twice is served once (a set: linear in the request).
    let mut seen = HashSet::with_capacity(wanted.len());
    wanted.retain(|p| seen.insert(*p));
    let mut targets = Vec::with_capacity(wanted.len());
    for p in wanted {
        let resolved = match topic.partitions.get(p as usize) {
            None => Err(ErrorCode::UNKNOWN_PARTITION),
            Some(partition) => {
                let key = ShareKey {
                    group: req.group.clone(),
                    topic: req.topic.clone(),
                    partition: p,
                };
                match shared
                    .share
                    .get_or_create(key, partition.log.log_start_offset().0)
                {
                    Ok(sp) => Ok((Arc::clone(partition), sp)),
                    // A new share group over the cap: the whole request.
                    Err((code, message)) => {
                        return Reply::Now(Response::error(cid, code, message));
                    }
                }
            }
        };
        targets.push(Target {
            partition: p,
            resolved,
        });
    }
    let plan = Plan {
        cid,
        topic: req.topic,
        member: Arc::from(req.member_id.as_str()),
        user: match grants {
            Grants::User { name, .. } => Some(Arc::from(name.as_str())),
            _ => None,
        },
        max_records: u64::from(req.max_records),
        lock_timeout: Duration::from_millis(topic.config.share.lock_timeout_ms),
        targets,
    };
    let (response, done) = plan.acquire(shared);
    if done || req.max_wait_ms == 0 {
        return Reply::Now(response);
    }
    let deadline = Instant::now() + Duration::from_millis(u64::from(req.max_wait_ms));
    let shared = Arc::clone(shared);
    Reply::later(async move {
        loop {
            let mut woken: Vec<Pin<Box<Notified<'_>>>> = plan
                .targets
                .iter()
                .filter_map(|t| t.resolved.as_ref().ok())
                .flat_map(|(p, sp)| [Box::pin(p.hw_moved()), Box::pin(sp.changed.notified())])
                .collect();
            for n in &mut woken {
                n.as_mut().enable();
            }
            if shared.topics.get(&plan.topic).is_none() {
                return Response::error(
                    plan.cid,
                    ErrorCode::UNKNOWN_TOPIC,
                    format!("topic {:?} was deleted", plan.topic),
                );
            }
            let (response, done) = plan.acquire(&shared);
            if done {
                return response;
            }
            tokio::select! {
                _ = select_all(woken) => {}
                () = tokio::time::sleep_until(deadline) => return plan.acquire(&shared).0,
                () = shared.shutdown.cancelled() => return response,
            }
        }
    })
}

impl Plan {
    /// Acquires what it can over the partitions and builds the response.
    /// Returns it with whether the request is answered (something acquired,
    /// or a partition failed).
    fn acquire(&self, shared: &Shared) -> (Response, bool) {
        let deadline = Instant::now() + self.lock_timeout;
        let mut left = self.max_records;
        let mut budget = MAX_SHARE_FETCH_BYTES;
        let mut entries: Vec<(u32, ErrorCode, Acquisition)> = Vec::new();
        let mut failed = false;
        for t in &self.targets {
            let (partition, sp) = match &t.resolved {
                Ok(r) => r,
                Err(code) => {
                    failed = true;
                    entries.push((t.partition, *code, Acquisition::default()));
                    continue;
                }
            };
            sp.touch();
            if left == 0 || budget == 0 {
                continue;
            }
            match sp.acquire(partition, &self.member, left, budget, deadline) {
                Ok(a) if a.records > 0 => {
                    sp.note_dead_letter_user(self.user.as_deref());
                    // Acquired records are always sent (an acquisition is
                    // never discarded), so they count as fetched now.
                    partition.metrics.fetched(a.records, a.bytes);
                    left -= a.records;
                    budget = budget.saturating_sub(u32::try_from(a.bytes).unwrap_or(u32::MAX));
                    shared.share.schedule(sp, deadline);
                    entries.push((t.partition, ErrorCode::NONE, a));
                }
                Ok(_) => {}
                Err(e) => {
                    failed = true;
                    let code = super::storage_code(&e, "share fetch read");
                    entries.push((t.partition, code, Acquisition::default()));
                }
            }
        }
        let done = failed || left < self.max_records;
        (self.response(entries), done)
    }

    fn response(&self, entries: Vec<(u32, ErrorCode, Acquisition)>) -> Response {
        let mut chunks = Vec::new();
        let mut head = BytesMut::with_capacity(256);
        let mut first_error = ErrorCode::NONE;
        head.put_u32(u32::try_from(self.lock_timeout.as_millis()).unwrap_or(u32::MAX));
        put_array_len(&mut head, entries.len());
        for (partition, code, a) in entries {
            if first_error == ErrorCode::NONE {
                first_error = code;
            }
            put_share_partition_head(
                &mut head,
                partition,
                code,
                &a.acquired,
                u32::try_from(a.bytes).unwrap_or(u32::MAX),
            );
            for slice in a.slices {
                chunks.push(Chunk::Bytes(head.split().freeze()));
                chunks.push(Chunk::File(slice));
            }
        }
        chunks.push(Chunk::Bytes(head.freeze()));
        Response::from_body_chunks(self.cid, chunks, first_error)
    }
}
