//! Queues: share groups' fetch and acknowledgement (queue semantics over a
//! log, [`crate::share`]).
//!
//! **Fetch** acquires records for a member and returns the acquired offset
//! ranges with the file ranges of the batches holding them (front-ends send
//! them with `sendfile(2)`, as Fetch does). Partitions are visited from a
//! rotating start, so with `max_records` smaller than what is available
//! every partition gets its turn. The first attempt runs on the caller's
//! task; if it acquires nothing and `max_wait` is not zero,
//! [`SharePoll::wait`] waits, registered with every partition's
//! high-watermark notifier and every share-partition's `changed` notifier
//! *before* it tries again (no lost wake-up), until something is acquired,
//! the deadline passes, or the broker shuts down. No polling loop.
//!
//! **Ack** applies a member's accept / release / reject of acquired records,
//! writes each changed share-partition's state to the metadata store,
//! dead-letters rejected records (and released ones out of attempts), and
//! is answered once all of it is durable ([`AckDone::finish`]). The state
//! changes (and the metadata-store appends, page cache only) happen at once,
//! so a fetch that follows already sees the acknowledged records done. A
//! partition named twice is answered once, with the ranges of both applied
//! in request order; the work is linear in the window plus `n log n` in the
//! ranges ([`ShareState::acknowledge_batches`](crate::share::ShareState::acknowledge_batches)).
//! Dead-letter writes that fail are retried in the background; the reject
//! itself is durable once answered, so they do not fail the answer.
//!
//! Permissions: read on the group and on the topic. Dead-letter writes need
//! write on the dead-letter topic under the acking caller's grants (see
//! `crate::share::dead_letter`); the fetching or acking user is remembered
//! as the one the timer task's dead-letter writes run as.

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::select_all;
use tokio::sync::futures::Notified;
use tokio::time::Instant;
use warren_protocol::api::auth::{Permission, ResourceType};
use warren_protocol::api::share::AckKind;
use warren_storage::Offset;

use super::{ErrorKind, ServiceError, ServiceResult, require};
use crate::auth::Grants;
use crate::partition::Partition;
use crate::share::state::DeadLetter;
use crate::share::{
    Acquisition, ShareContext, ShareKey, SharePartition, sync_kv, validate_group_id,
    validate_member_id,
};
use crate::topics::Topic;

/// Most record bytes one share fetch returns (the first batch always goes
/// whole). Not configurable: a client's default frame limit is 16 MiB.
pub const MAX_SHARE_FETCH_BYTES: u32 = 8 << 20;

/// Most partitions one share fetch or ack may name (they name one topic,
/// which has at most this many partitions). Not configurable.
pub const MAX_SHARE_PARTITIONS: usize = warren_storage::log_manager::MAX_PARTITIONS as usize;

/// Most acknowledgement ranges in one ack, over all its partitions (a member
/// holds at most [`crate::share::MAX_IN_FLIGHT_RECORDS`] records of each
/// partition). Not configurable.
pub const MAX_SHARE_ACK_BATCHES: usize = 100_000;

/// The queue service; see the module docs.
#[derive(Clone)]
pub struct Queues {
    ctx: ShareContext,
}

/// What a share fetch asks for.
#[derive(Debug, Clone)]
pub struct ShareFetch<'a> {
    pub group: &'a str,
    pub member: &'a str,
    pub topic: &'a str,
    /// The partitions to visit in this order; empty: all, from a rotating
    /// start.
    pub partitions: &'a [u32],
    pub max_records: u32,
    pub max_wait: Duration,
}

/// One partition's part of a share fetch.
#[derive(Debug, Default)]
pub struct ShareEntry {
    pub partition: u32,
    pub error: Option<ErrorKind>,
    /// The acquired ranges and the file ranges of their batches.
    pub acquisition: Acquisition,
}

/// What a share fetch acquired, with the lock timeout the records are held
/// for.
#[derive(Debug)]
pub struct ShareFetchResult {
    pub lock_timeout: Duration,
    /// The partitions that acquired something or failed, in visit order.
    pub entries: Vec<ShareEntry>,
}

/// What [`Queues::fetch`] gives.
pub enum ShareFetched {
    /// Acquired something (or a partition failed, or no waiting asked for).
    Ready(ShareFetchResult),
    /// Wait with [`SharePoll::wait`].
    Waiting(SharePoll),
}

/// A share fetch waiting for records; see the module docs.
pub struct SharePoll {
    plan: Plan,
    ctx: ShareContext,
    deadline: Instant,
}

/// One requested partition, resolved.
struct Target {
    partition: u32,
    resolved: Result<(Arc<Partition>, Arc<SharePartition>), ErrorKind>,
}

/// A resolved share fetch.
struct Plan {
    topic: String,
    member: Arc<str>,
    /// The user fetching (`None` while no user exists): it becomes the one
    /// the timer's dead-letter writes run as, see `crate::share::dead_letter`.
    user: Option<Arc<str>>,
    max_records: u64,
    lock_timeout: Duration,
    targets: Vec<Target>,
}

/// One acknowledgement range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckRange {
    pub first_offset: u64,
    pub last_offset: u64,
    pub kind: AckKind,
}

/// An ack applied: each partition's outcome, and what is left before it may
/// be answered.
pub struct AckDone {
    /// Per partition named (each once, in the order first named).
    pub partitions: Vec<(u32, Option<ErrorKind>)>,
    pending: Option<AckPending>,
}

/// The dead-letter writes and the store sync an ack waits for.
struct AckPending {
    ctx: ShareContext,
    topic: Arc<Topic>,
    grants: Grants,
    last: Option<Offset>,
    jobs: Vec<(Arc<SharePartition>, Vec<DeadLetter>)>,
}

/// The error for a request naming more than `max` of `what`.
fn over_limit(what: &str, count: usize, max: usize) -> ServiceResult<()> {
    if count > max {
        return Err(ServiceError::new(
            ErrorKind::InvalidRequest,
            format!("the request names {count} {what}; at most {max} are allowed per request"),
        ));
    }
    Ok(())
}

/// The user `grants` belong to, if any.
fn user_of(grants: &Grants) -> Option<&str> {
    match grants {
        Grants::User { name, .. } => Some(name.as_str()),
        _ => None,
    }
}

impl Queues {
    /// The service over the share groups and what they act on.
    pub fn new(ctx: ShareContext) -> Queues {
        Queues { ctx }
    }

    /// The share groups with what their dead-lettering and timers act on.
    pub fn context(&self) -> &ShareContext {
        &self.ctx
    }

    /// Read on the group and on the topic, then the ids.
    fn check(grants: &Grants, group: &str, topic: &str, member: &str) -> ServiceResult<()> {
        require(grants, ResourceType::Group, group, Permission::Read)?;
        require(grants, ResourceType::Topic, topic, Permission::Read)?;
        validate_group_id(group)?;
        validate_member_id(member)
    }

    fn topic(&self, name: &str) -> ServiceResult<Arc<Topic>> {
        self.ctx.topics.get(name).ok_or_else(|| {
            ServiceError::new(ErrorKind::UnknownTopic, format!("no topic named {name:?}"))
        })
    }

    /// Acquires records for a member; see the module docs.
    ///
    /// # Errors
    /// For the whole request: the permission checks, `InvalidGroupId`,
    /// `InvalidMemberId`, `InvalidRequest` (too many partitions, no
    /// records asked for), `UnknownTopic`, `LimitReached` (a new share group
    /// over `group_share_max_groups`). A partition's own failure is in its
    /// entry.
    pub fn fetch(&self, grants: &Grants, req: &ShareFetch<'_>) -> ServiceResult<ShareFetched> {
        Queues::check(grants, req.group, req.topic, req.member)?;
        over_limit("partitions", req.partitions.len(), MAX_SHARE_PARTITIONS)?;
        if req.max_records == 0 {
            return Err(ServiceError::new(
                ErrorKind::InvalidRequest,
                "max_records must be at least 1",
            ));
        }
        let topic = self.topic(req.topic)?;
        let count = topic.partitions.len();
        let mut wanted: Vec<u32> = if req.partitions.is_empty() {
            let start = self.ctx.groups.rotate(count);
            (0..count).map(|i| ((start + i) % count) as u32).collect()
        } else {
            req.partitions.to_vec()
        };
        // A partition named twice is served once (a set: linear in the request).
        let mut seen = HashSet::with_capacity(wanted.len());
        wanted.retain(|p| seen.insert(*p));
        let mut targets = Vec::with_capacity(wanted.len());
        for p in wanted {
            let resolved = match topic.partitions.get(p as usize) {
                None => Err(ErrorKind::UnknownPartition),
                Some(partition) => {
                    let key = ShareKey {
                        group: req.group.to_owned(),
                        topic: req.topic.to_owned(),
                        partition: p,
                    };
                    // A new share group over the cap fails the whole request.
                    let sp = self
                        .ctx
                        .groups
                        .get_or_create(key, partition.log.log_start_offset().0)?;
                    Ok((Arc::clone(partition), sp))
                }
            };
            targets.push(Target {
                partition: p,
                resolved,
            });
        }
        let plan = Plan {
            topic: req.topic.to_owned(),
            member: Arc::from(req.member),
            user: user_of(grants).map(Arc::from),
            max_records: u64::from(req.max_records),
            lock_timeout: Duration::from_millis(topic.config.share.lock_timeout_ms),
            targets,
        };
        let (result, done) = plan.acquire(&self.ctx);
        if done || req.max_wait.is_zero() {
            return Ok(ShareFetched::Ready(result));
        }
        Ok(ShareFetched::Waiting(SharePoll {
            plan,
            ctx: self.ctx.clone(),
            deadline: Instant::now() + req.max_wait,
        }))
    }

    /// Applies a member's acknowledgements (`partitions`: each with its
    /// ranges, in request order); see the module docs.
    ///
    /// # Errors
    /// For the whole request: the permission checks, `InvalidGroupId`,
    /// `InvalidMemberId`, `UnknownTopic`, `InvalidRequest` (too many
    /// partitions or ranges). A partition's own failure is in its entry.
    pub fn ack(
        &self,
        grants: &Grants,
        group: &str,
        member: &str,
        topic_name: &str,
        partitions: &[(u32, Vec<AckRange>)],
    ) -> ServiceResult<AckDone> {
        Queues::check(grants, group, topic_name, member)?;
        let topic = self.topic(topic_name)?;
        let ranges: usize = partitions.iter().map(|(_, r)| r.len()).sum();
        over_limit("partitions", partitions.len(), MAX_SHARE_PARTITIONS)?;
        over_limit("ranges", ranges, MAX_SHARE_ACK_BATCHES)?;
        let max_attempts = topic.config.share.max_delivery_attempts;
        let user = user_of(grants);
        // A partition named twice is one entry with the ranges of both, in
        // request order: one state change and one store write per partition.
        let mut by_partition: Vec<(u32, Vec<&AckRange>)> = Vec::new();
        let mut index: HashMap<u32, usize> = HashMap::with_capacity(partitions.len());
        for (partition, ranges) in partitions {
            let i = *index.entry(*partition).or_insert_with(|| {
                by_partition.push((*partition, Vec::new()));
                by_partition.len() - 1
            });
            if let Some((_, list)) = by_partition.get_mut(i) {
                list.extend(ranges);
            }
        }
        let mut outcomes = Vec::with_capacity(by_partition.len());
        let mut last: Option<Offset> = None;
        let mut jobs = Vec::new();
        for (partition, ranges) in by_partition {
            if topic.partitions.get(partition as usize).is_none() {
                outcomes.push((partition, Some(ErrorKind::UnknownPartition)));
                continue;
            }
            let key = ShareKey {
                group: group.to_owned(),
                topic: topic_name.to_owned(),
                partition,
            };
            let Some(sp) = self.ctx.groups.get(&key) else {
                // The group never fetched from this partition: nothing is acquired.
                let error = (!ranges.is_empty()).then_some(ErrorKind::InvalidRecordState);
                outcomes.push((partition, error));
                continue;
            };
            sp.touch();
            let (out, claims, written) = {
                let mut g = sp.lock();
                if g.dead_letter_user.as_deref() != user {
                    g.dead_letter_user = user.map(str::to_owned);
                }
                let out = g.state.acknowledge_batches(
                    member,
                    ranges
                        .iter()
                        .map(|r| (r.first_offset, r.last_offset, r.kind)),
                    max_attempts,
                );
                let claims = if out.dead_letters {
                    g.state.claim_dead_letters()
                } else {
                    Vec::new()
                };
                (out, claims, sp.persist(&self.ctx.kv, &mut g))
            };
            if out.freed {
                sp.changed.notify_waiters();
            }
            let error = match written {
                Ok(offset) => {
                    last = last.max(offset);
                    out.invalid.then_some(ErrorKind::InvalidRecordState)
                }
                Err(e) => Some(ServiceError::storage(&e, "writing share-group state").kind),
            };
            outcomes.push((partition, error));
            if !claims.is_empty() {
                jobs.push((sp, claims));
            }
        }
        let pending = (last.is_some() || !jobs.is_empty()).then(|| AckPending {
            ctx: self.ctx.clone(),
            topic,
            grants: grants.clone(),
            last,
            jobs,
        });
        Ok(AckDone {
            partitions: outcomes,
            pending,
        })
    }
}

impl AckDone {
    /// Whether [`finish`](Self::finish) has anything to wait for (else the
    /// outcomes are final now).
    pub fn waits(&self) -> bool {
        self.pending.is_some()
    }

    /// Writes the dead letters (a failure is retried by the timer task) and
    /// makes the state durable; a failed sync fails every partition that had
    /// succeeded. Returns the final outcomes.
    pub async fn finish(self) -> Vec<(u32, Option<ErrorKind>)> {
        let AckDone {
            mut partitions,
            pending,
        } = self;
        let Some(AckPending {
            ctx,
            topic,
            grants,
            mut last,
            jobs,
        }) = pending
        else {
            return partitions;
        };
        for (sp, claims) in jobs {
            // A failure is logged and retried by the timer task.
            if let Ok(Some(offset)) =
                crate::share::dead_letter::write(&ctx, &sp, &topic, claims, &grants).await
            {
                last = last.max(Some(offset));
            }
        }
        if let Some(offset) = last
            && let Err(e) = sync_kv(&ctx.kv, offset).await
        {
            let kind = ServiceError::storage(&e, "syncing share-group state").kind;
            for (_, outcome) in partitions.iter_mut().filter(|(_, o)| o.is_none()) {
                *outcome = Some(kind);
            }
        }
        partitions
    }
}

impl SharePoll {
    /// Waits until something is acquired, a partition fails, the deadline
    /// passes or the broker shuts down; returns the last attempt.
    ///
    /// # Errors
    /// `UnknownTopic` when the topic was deleted meanwhile.
    pub async fn wait(self) -> ServiceResult<ShareFetchResult> {
        let SharePoll {
            plan,
            ctx,
            deadline,
        } = self;
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
            if ctx.topics.get(&plan.topic).is_none() {
                return Err(ServiceError::new(
                    ErrorKind::UnknownTopic,
                    format!("topic {:?} was deleted", plan.topic),
                ));
            }
            let (result, done) = plan.acquire(&ctx);
            if done {
                return Ok(result);
            }
            tokio::select! {
                _ = select_all(woken) => {}
                () = tokio::time::sleep_until(deadline) => return Ok(plan.acquire(&ctx).0),
                () = ctx.shutdown.cancelled() => return Ok(result),
            }
        }
    }
}

impl Plan {
    /// Acquires what it can over the partitions. Returns it with whether the
    /// request is answered (something acquired, or a partition failed).
    fn acquire(&self, ctx: &ShareContext) -> (ShareFetchResult, bool) {
        let deadline = Instant::now() + self.lock_timeout;
        let mut left = self.max_records;
        let mut budget = MAX_SHARE_FETCH_BYTES;
        let mut entries = Vec::new();
        let mut failed = false;
        for t in &self.targets {
            let (partition, sp) = match &t.resolved {
                Ok(r) => r,
                Err(kind) => {
                    failed = true;
                    entries.push(ShareEntry {
                        partition: t.partition,
                        error: Some(*kind),
                        acquisition: Acquisition::default(),
                    });
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
                    ctx.groups.schedule(sp, deadline);
                    entries.push(ShareEntry {
                        partition: t.partition,
                        error: None,
                        acquisition: a,
                    });
                }
                Ok(_) => {}
                Err(e) => {
                    failed = true;
                    entries.push(ShareEntry {
                        partition: t.partition,
                        error: Some(ServiceError::storage(&e, "share fetch read").kind),
                        acquisition: Acquisition::default(),
                    });
                }
            }
        }
        let done = failed || left < self.max_records;
        let result = ShareFetchResult {
            lock_timeout: self.lock_timeout,
            entries,
        };
        (result, done)
    }
}
