//! The [`GroupConsumer`]: a [`Consumer`] whose partitions the broker assigns,
//! as a member of a consumer group, with committed offsets.
//!
//! - **Membership** runs on a background task with its own connection, so a
//!   heartbeat never waits behind a long-poll fetch: it joins, heartbeats
//!   every `heartbeat_interval_ms` (the broker says how often), and on
//!   `UNKNOWN_MEMBER` (expelled after a missed session, or the broker
//!   restarted) drops every partition and joins again. Commits and offset
//!   reads go over that connection too.
//! - **Rebalances are applied by [`poll`](GroupConsumer::poll)**, on the
//!   caller's task, between batches: partitions the broker takes away are
//!   committed (with auto-commit), reported to the rebalance listener
//!   ([`Rebalance::Revoked`]) and dropped, and the background task is woken
//!   to confirm at once, so the next owner can start; partitions it hands
//!   out start at the group's committed offset (or
//!   [`ConsumerConfig::start_at`] when none) and are reported as
//!   [`Rebalance::Assigned`]. A `poll` waiting for records wakes up for a
//!   rebalance. Partitions lost without a chance to commit (the member was
//!   expelled) are reported as [`Rebalance::Lost`].
//! - **Commits**: the offset committed is the consumer's position, the
//!   offset after the last record `poll` returned. With
//!   [`GroupConfig::auto_commit`], `poll` commits every interval (what the
//!   previous polls returned counts as processed), and before giving up a
//!   partition; otherwise call [`commit`](GroupConsumer::commit). A commit
//!   returns once the broker has made it durable. Delivery is at least once:
//!   after a crash, the records after the last commit are delivered again.
//! - **[`close`](GroupConsumer::close)** commits (with auto-commit) and
//!   leaves the group, so its partitions move at once. Dropping the consumer
//!   without `close` stops the heartbeats; the broker reassigns its
//!   partitions after the session timeout.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};
use warren_protocol::ErrorCode;
use warren_protocol::api::ApiKey;
use warren_protocol::api::groups::{
    CommitOffsetsRequest, CommitPartition, CommitTopic, FetchOffsetsRequest, HeartbeatRequest,
    JoinGroupRequest, LeaveGroupRequest, TopicPartitions,
};

use crate::config::ConsumerConfig;
use crate::connection::Connector;
use crate::consumer::{Consumer, ConsumerRecord, SeekTo};
use crate::error::{Error, Result};

/// The apis a group member needs besides the consumer's.
const GROUP_APIS: &[ApiKey] = &[
    ApiKey::JoinGroup,
    ApiKey::Heartbeat,
    ApiKey::LeaveGroup,
    ApiKey::CommitOffsets,
    ApiKey::FetchOffsets,
];

/// How long `close` waits for the LeaveGroup.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(5);

/// A topic partition.
pub type TopicPartition = (String, u32);

/// Group settings of a [`GroupConsumer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// The group's name.
    pub group: String,
    /// The topics to consume.
    pub topics: Vec<String>,
    /// The broker expels the member if it hears nothing for this long
    /// (within the broker's `group_min/max_session_timeout_ms`). Default 10 s.
    pub session_timeout: Duration,
    /// Commit positions this often from `poll`, and before giving up a
    /// partition; `None` for manual [`commit`](GroupConsumer::commit) only.
    /// Default 5 s.
    pub auto_commit: Option<Duration>,
}

impl GroupConfig {
    /// Defaults for `group` consuming `topics`.
    pub fn new(group: impl Into<String>, topics: &[&str]) -> Self {
        GroupConfig {
            group: group.into(),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            session_timeout: Duration::from_secs(10),
            auto_commit: Some(Duration::from_secs(5)),
        }
    }
}

/// A change of the consumer's partitions, reported to the rebalance listener
/// from inside [`poll`](GroupConsumer::poll).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rebalance {
    /// These partitions are now consumed by this member, from the committed
    /// offsets.
    Assigned(Vec<TopicPartition>),
    /// These partitions were given up (committed first with auto-commit).
    Revoked(Vec<TopicPartition>),
    /// These partitions were taken away without a chance to commit (the
    /// member was expelled or the broker restarted); another member may
    /// already be consuming them.
    Lost(Vec<TopicPartition>),
}

/// Membership as the background task knows it.
#[derive(Debug, Default)]
struct Membership {
    member_id: String,
    generation: u32,
    /// The broker's latest answer.
    assignment: BTreeSet<TopicPartition>,
    /// Bumped whenever `assignment` changes.
    version: u64,
    /// The member was expelled: partitions held until now are lost.
    lost: bool,
    /// What the foreground consumes now (sent as `owned` in heartbeats).
    owned: BTreeSet<TopicPartition>,
    /// A fatal error of the task (reported by the next poll).
    error: Option<Error>,
    closing: bool,
}

#[derive(Debug, Default)]
struct GroupShared {
    membership: Mutex<Membership>,
    /// Task -> foreground: the assignment changed (or the task failed).
    changed: Notify,
    /// Foreground -> task: heartbeat now (a give-up to confirm, or close).
    wake: Notify,
}

impl GroupShared {
    fn lock(&self) -> MutexGuard<'_, Membership> {
        self.membership
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

type Listener = Box<dyn FnMut(&Rebalance) + Send>;

/// A consumer-group member; see the module docs.
///
/// ```no_run
/// # async fn run() -> warren_client::Result<()> {
/// use std::time::Duration;
/// use warren_client::{ConsumerConfig, GroupConfig, GroupConsumer};
/// let mut consumer = GroupConsumer::join(
///     ConsumerConfig::new("127.0.0.1:7171"),
///     GroupConfig::new("billing", &["orders"]),
/// )
/// .await?;
/// for record in consumer.poll(Duration::from_millis(500)).await? {
///     println!("{}/{}@{}", record.topic, record.partition, record.offset);
/// }
/// consumer.close().await?;
/// # Ok(()) }
/// ```
pub struct GroupConsumer {
    consumer: Consumer,
    config: GroupConfig,
    connector: Arc<Connector>,
    shared: Arc<GroupShared>,
    task: Option<JoinHandle<()>>,
    /// What this consumer has applied: the assignment `version` and the partitions.
    applied_version: u64,
    owned: BTreeSet<TopicPartition>,
    /// Positions last committed, to skip commits of unchanged positions.
    committed: BTreeMap<TopicPartition, u64>,
    next_auto_commit: Option<Instant>,
    /// In a mutex only so the consumer is `Sync` (its futures are `Send`)
    /// with any `Send` listener; never contended.
    listener: Mutex<Option<Listener>>,
}

impl std::fmt::Debug for GroupConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupConsumer")
            .field("group", &self.config.group)
            .field("owned", &self.owned)
            .finish_non_exhaustive()
    }
}

impl Drop for GroupConsumer {
    fn drop(&mut self) {
        // Without close: stop heartbeating; the session timeout frees the
        // partitions.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl GroupConsumer {
    /// Connects, starts the membership task and waits for the join's answer
    /// (the first assignment is applied by the first `poll`).
    ///
    /// # Errors
    /// [`Error::Config`]; connection errors; the broker's refusal of the join
    /// (`INVALID_GROUP_ID`, `INVALID_SESSION_TIMEOUT`).
    pub async fn join(config: ConsumerConfig, group: GroupConfig) -> Result<GroupConsumer> {
        if group.topics.is_empty() {
            return Err(Error::Config("subscribe to at least one topic".into()));
        }
        let session_ms = u32::try_from(group.session_timeout.as_millis())
            .map_err(|_| Error::Config("session_timeout is too long".into()))?;
        let consumer = Consumer::connect(config.clone()).await?;
        let connector = Arc::new(Connector::new(config.connection.clone(), GROUP_APIS));
        let shared = Arc::new(GroupShared::default());
        let joined = join_once(&connector, &shared, &group, session_ms).await?;
        let task = tokio::spawn(membership_task(
            Arc::clone(&connector),
            Arc::clone(&shared),
            group.clone(),
            session_ms,
            joined,
        ));
        Ok(GroupConsumer {
            consumer,
            next_auto_commit: group.auto_commit.map(|i| Instant::now() + i),
            config: group,
            connector,
            shared,
            task: Some(task),
            applied_version: 0,
            owned: BTreeSet::new(),
            committed: BTreeMap::new(),
            listener: Mutex::new(None),
        })
    }

    /// Calls `listener` for every [`Rebalance`], from inside `poll`.
    pub fn on_rebalance(&mut self, listener: impl FnMut(&Rebalance) + Send + 'static) {
        *self
            .listener
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Box::new(listener));
    }

    /// The partitions this member consumes now, sorted.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.owned.iter().cloned().collect()
    }

    /// The member id the broker gave this member (empty while joining).
    pub fn member_id(&self) -> String {
        self.shared.lock().member_id.clone()
    }

    /// The member's generation.
    pub fn generation(&self) -> u32 {
        self.shared.lock().generation
    }

    /// The offset of the next record `poll` returns for the partition.
    pub fn position(&self, topic: &str, partition: u32) -> Option<u64> {
        self.consumer.position(topic, partition)
    }

    /// Applies any rebalance, auto-commits when due, and returns the records
    /// that arrive within `timeout` (none if nothing is assigned).
    ///
    /// # Errors
    /// The consumer's errors; a fatal membership error (the broker refused
    /// the group); commit errors are only logged here.
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        let deadline = Instant::now() + timeout;
        let shared = Arc::clone(&self.shared);
        loop {
            let changed = shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            self.apply_rebalance().await?;
            self.maybe_auto_commit().await;
            if self.shared.lock().version != self.applied_version {
                // Not fully applied (an offset read failed): try again shortly.
                tokio::time::sleep(Duration::from_millis(20)).await;
                if Instant::now() >= deadline {
                    return Ok(Vec::new());
                }
                continue;
            }
            let wait = deadline.saturating_duration_since(Instant::now());
            if self.owned.is_empty() {
                tokio::select! {
                    () = &mut changed => continue,
                    () = tokio::time::sleep_until(deadline) => return Ok(Vec::new()),
                }
            }
            tokio::select! {
                records = self.consumer.poll(wait) => return records,
                () = &mut changed => {}
            }
            if Instant::now() >= deadline {
                return Ok(Vec::new());
            }
        }
    }

    /// Commits the position of every partition consumed now (the offset after
    /// the last record `poll` returned), and waits until it is durable.
    ///
    /// # Errors
    /// [`Error::Partition`] with `STALE_GENERATION` or
    /// `PARTITION_NOT_ASSIGNED` when a rebalance overtook the commit (the
    /// partition's next owner starts from the previous commit);
    /// [`Error::Broker`] with `UNKNOWN_MEMBER`; connection errors.
    pub async fn commit(&mut self) -> Result<()> {
        let owned: Vec<TopicPartition> = self.owned.iter().cloned().collect();
        self.commit_partitions(&owned).await
    }

    /// Commits the current positions of `partitions` (skipping unchanged ones).
    async fn commit_partitions(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        let positions: Vec<(TopicPartition, u64)> = partitions
            .iter()
            .filter_map(|tp| {
                self.consumer
                    .position(&tp.0, tp.1)
                    .map(|position| (tp.clone(), position))
            })
            .collect();
        self.commit_offsets(&positions).await
    }

    /// Commits explicit offsets, each the next offset to consume of its
    /// partition (for a caller that processed only part of what `poll`
    /// returned). Offsets equal to the last committed are skipped. Returns
    /// once durable.
    ///
    /// # Errors
    /// As [`commit`](Self::commit).
    pub async fn commit_offsets(&mut self, offsets: &[(TopicPartition, u64)]) -> Result<()> {
        let mut by_topic: BTreeMap<&str, Vec<CommitPartition>> = BTreeMap::new();
        let mut positions = Vec::new();
        for (tp, position) in offsets {
            if self.committed.get(tp) == Some(position) {
                continue;
            }
            by_topic.entry(&tp.0).or_default().push(CommitPartition {
                partition: tp.1,
                offset: *position,
                metadata: None,
            });
            positions.push((tp.clone(), *position));
        }
        if positions.is_empty() {
            return Ok(());
        }
        let (member_id, generation) = {
            let m = self.shared.lock();
            (m.member_id.clone(), m.generation)
        };
        if member_id.is_empty() {
            return Err(Error::Broker {
                code: ErrorCode::UNKNOWN_MEMBER,
                message: "not a member of the group (rejoining)".into(),
            });
        }
        let request = CommitOffsetsRequest {
            group: self.config.group.clone(),
            member_id,
            generation,
            topics: by_topic
                .into_iter()
                .map(|(topic, partitions)| CommitTopic {
                    topic: topic.to_owned(),
                    partitions,
                })
                .collect(),
        };
        let response = self.connector.call(&request, Duration::ZERO, false).await?;
        let mut first_error = None;
        for t in &response.topics {
            for &(partition, code) in &t.partitions {
                if code == ErrorCode::NONE {
                    if let Some((tp, pos)) = positions
                        .iter()
                        .find(|(tp, _)| tp.0 == t.topic && tp.1 == partition)
                    {
                        self.committed.insert(tp.clone(), *pos);
                    }
                } else if first_error.is_none() {
                    first_error = Some(Error::from_partition_code(&t.topic, partition, code));
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn maybe_auto_commit(&mut self) {
        let (Some(interval), Some(due)) = (self.config.auto_commit, self.next_auto_commit) else {
            return;
        };
        if Instant::now() < due {
            return;
        }
        self.next_auto_commit = Some(Instant::now() + interval);
        if let Err(e) = self.commit().await {
            debug!(group = %self.config.group, error = %e, "auto-commit failed; retrying at the next interval");
        }
    }

    fn notify(&mut self, event: &Rebalance) {
        info!(group = %self.config.group, ?event, "rebalance");
        let listener = self
            .listener
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(listener) = listener.as_mut() {
            listener(event);
        }
    }

    /// Applies the broker's latest assignment: gives up, then takes.
    async fn apply_rebalance(&mut self) -> Result<()> {
        let (version, target, lost, member_id, generation) = {
            let mut m = self.shared.lock();
            if let Some(e) = m.error.take() {
                return Err(e);
            }
            let lost = std::mem::take(&mut m.lost);
            (
                m.version,
                m.assignment.clone(),
                lost,
                m.member_id.clone(),
                m.generation,
            )
        };
        if version == self.applied_version && !lost {
            return Ok(());
        }
        // After an expulsion every partition held is lost, even one handed
        // back by the rejoin: another member may have consumed it meanwhile,
        // so it restarts from the committed offset.
        let revoked: Vec<TopicPartition> = if lost {
            self.owned.iter().cloned().collect()
        } else {
            self.owned.difference(&target).cloned().collect()
        };
        if !revoked.is_empty() {
            if !lost
                && self.config.auto_commit.is_some()
                && let Err(e) = self.commit_partitions(&revoked).await
            {
                warn!(group = %self.config.group, error = %e,
                    "commit before giving up partitions failed; their next owner starts at the previous commit");
            }
            for tp in &revoked {
                self.owned.remove(tp);
                self.committed.remove(tp);
            }
            self.reassign_consumer();
            self.shared.lock().owned = self.owned.clone();
            // Confirm at once so the next owner can start.
            self.shared.wake.notify_one();
            let event = if lost {
                Rebalance::Lost(revoked)
            } else {
                Rebalance::Revoked(revoked)
            };
            self.notify(&event);
        }
        let added: Vec<TopicPartition> = target.difference(&self.owned).cloned().collect();
        if !added.is_empty() {
            let starts = self
                .committed_offsets(&added, &member_id, generation)
                .await?;
            let Some(starts) = starts else {
                // A rebalance overtook the read: the next loop starts over.
                return Ok(());
            };
            for tp in &added {
                self.owned.insert(tp.clone());
            }
            self.reassign_consumer();
            for (tp, offset) in starts {
                if let Some(offset) = offset {
                    self.consumer
                        .seek(&tp.0, tp.1, SeekTo::Offset(offset))
                        .await?;
                    self.committed.insert(tp, offset);
                }
            }
            self.shared.lock().owned = self.owned.clone();
            self.shared.wake.notify_one();
            self.notify(&Rebalance::Assigned(added));
        }
        self.applied_version = version;
        Ok(())
    }

    /// Gives the inner consumer exactly the owned partitions.
    fn reassign_consumer(&mut self) {
        let mut by_topic: BTreeMap<String, Vec<u32>> = self
            .consumer
            .assignment()
            .into_iter()
            .map(|(t, _)| (t, Vec::new()))
            .collect();
        for (t, p) in &self.owned {
            by_topic.entry(t.clone()).or_default().push(*p);
        }
        for (topic, partitions) in by_topic {
            let mut current: Vec<u32> = self
                .consumer
                .assignment()
                .into_iter()
                .filter(|(t, _)| *t == topic)
                .map(|(_, p)| p)
                .collect();
            current.sort_unstable();
            if current != partitions {
                self.consumer.assign(&topic, &partitions);
            }
        }
    }

    /// The committed offsets of `partitions`, `None` per partition without
    /// one. `Ok(None)` when the generation moved on meanwhile.
    async fn committed_offsets(
        &self,
        partitions: &[TopicPartition],
        member_id: &str,
        generation: u32,
    ) -> Result<Option<Vec<(TopicPartition, Option<u64>)>>> {
        let mut by_topic: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
        for (t, p) in partitions {
            by_topic.entry(t).or_default().push(*p);
        }
        let request = FetchOffsetsRequest {
            group: self.config.group.clone(),
            member_id: member_id.to_owned(),
            generation,
            topics: by_topic
                .into_iter()
                .map(|(topic, partitions)| TopicPartitions {
                    topic: topic.to_owned(),
                    partitions,
                })
                .collect(),
        };
        let response = match self.connector.call(&request, Duration::ZERO, true).await {
            Ok(r) => r,
            Err(Error::Broker {
                code: ErrorCode::STALE_GENERATION | ErrorCode::UNKNOWN_MEMBER,
                ..
            }) => return Ok(None),
            Err(e) if e.is_retriable() => {
                debug!(error = %e, "reading committed offsets failed; retrying");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let mut out = Vec::with_capacity(partitions.len());
        for tp in partitions {
            let found = response
                .topics
                .iter()
                .filter(|t| t.topic == tp.0)
                .flat_map(|t| &t.partitions)
                .find(|p| p.partition == tp.1);
            let offset = match found {
                Some(p) if p.error_code != ErrorCode::NONE => {
                    return Err(Error::from_partition_code(&tp.0, tp.1, p.error_code));
                }
                Some(p) => u64::try_from(p.offset).ok(),
                None => None,
            };
            out.push((tp.clone(), offset));
        }
        Ok(Some(out))
    }

    /// Commits (with auto-commit) and leaves the group, so its partitions
    /// move to the other members at once.
    ///
    /// # Errors
    /// The commit's errors (the group is left anyway).
    pub async fn close(mut self) -> Result<()> {
        let committed = if self.config.auto_commit.is_some() {
            self.commit().await
        } else {
            Ok(())
        };
        self.shared.lock().closing = true;
        self.shared.wake.notify_one();
        if let Some(task) = self.task.take()
            && tokio::time::timeout(LEAVE_TIMEOUT, task).await.is_err()
        {
            warn!(group = %self.config.group, "leaving the group timed out");
        }
        committed
    }
}

/// Sends one JoinGroup with the membership's current id and records the answer.
async fn join_once(
    connector: &Connector,
    shared: &GroupShared,
    group: &GroupConfig,
    session_ms: u32,
) -> Result<Duration> {
    let member_id = shared.lock().member_id.clone();
    let response = connector
        .call(
            &JoinGroupRequest {
                group: group.group.clone(),
                member_id,
                session_timeout_ms: session_ms,
                topics: group.topics.clone(),
            },
            Duration::ZERO,
            false,
        )
        .await?;
    let assignment = TopicPartitions::to_pairs::<BTreeSet<_>>(&response.assignment);
    {
        let mut m = shared.lock();
        m.member_id = response.member_id;
        m.generation = response.generation;
        if m.assignment != assignment {
            m.assignment = assignment;
            m.version += 1;
        }
    }
    shared.changed.notify_one();
    Ok(Duration::from_millis(u64::from(
        response.heartbeat_interval_ms.max(1),
    )))
}

/// Heartbeats until closed, rejoining after an expulsion; leaves at close.
async fn membership_task(
    connector: Arc<Connector>,
    shared: Arc<GroupShared>,
    group: GroupConfig,
    session_ms: u32,
    mut interval: Duration,
) {
    loop {
        let wake = shared.wake.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        let (member_id, generation, owned, closing) = {
            let m = shared.lock();
            (
                m.member_id.clone(),
                m.generation,
                TopicPartitions::from_pairs(&m.owned),
                m.closing,
            )
        };
        if closing {
            break;
        }
        if member_id.is_empty() {
            match join_once(&connector, &shared, &group, session_ms).await {
                Ok(i) => interval = i,
                Err(e) if e.is_retriable() => debug!(error = %e, "join failed; retrying"),
                Err(e) => {
                    shared.lock().error = Some(e);
                    shared.changed.notify_one();
                    return;
                }
            }
        } else {
            let request = HeartbeatRequest {
                group: group.group.clone(),
                member_id,
                generation,
                owned,
            };
            match connector.call(&request, Duration::ZERO, true).await {
                Ok(response) => {
                    interval =
                        Duration::from_millis(u64::from(response.heartbeat_interval_ms.max(1)));
                    let assignment = TopicPartitions::to_pairs::<BTreeSet<_>>(&response.assignment);
                    let mut m = shared.lock();
                    m.generation = response.generation;
                    if m.assignment != assignment {
                        m.assignment = assignment;
                        m.version += 1;
                        drop(m);
                        shared.changed.notify_one();
                    }
                }
                Err(Error::Broker {
                    code: ErrorCode::UNKNOWN_MEMBER,
                    ..
                }) => {
                    warn!(group = %group.group, "expelled from the group; joining again");
                    {
                        let mut m = shared.lock();
                        m.member_id.clear();
                        m.generation = 0;
                        m.assignment.clear();
                        m.version += 1;
                        m.lost = true;
                    }
                    shared.changed.notify_one();
                    continue;
                }
                Err(e) if e.is_retriable() => debug!(error = %e, "heartbeat failed; retrying"),
                Err(e) => {
                    shared.lock().error = Some(e);
                    shared.changed.notify_one();
                    return;
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = &mut wake => {}
        }
    }
    let member_id = shared.lock().member_id.clone();
    if !member_id.is_empty() {
        let request = LeaveGroupRequest {
            group: group.group.clone(),
            member_id,
        };
        if let Err(e) = connector.call(&request, Duration::ZERO, false).await {
            debug!(error = %e, "leave failed; the session timeout frees the partitions");
        }
    }
}
