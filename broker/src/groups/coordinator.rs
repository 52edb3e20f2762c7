//! The group coordinator: serves JoinGroup, Heartbeat, LeaveGroup,
//! CommitOffsets, FetchOffsets, ListGroups and DescribeGroup over the
//! per-group state machines ([`GroupState`]) and the broker's metadata store.
//!
//! - Membership lives in memory, one [`GroupState`] per group with members,
//!   all behind one `std::sync::Mutex` that is never held across an `.await`
//!   or a file sync (a join or heartbeat is a few map operations; the target
//!   assignment of 10 members over 100 partitions takes microseconds).
//!   A broker restart forgets members: they get `UNKNOWN_MEMBER` at their next
//!   heartbeat and join again, and resume from their committed offsets.
//! - Sessions: [`run_expiry`] sleeps until the earliest session
//!   deadline of any member (woken early when a join brings an earlier one),
//!   then expels every member whose deadline passed. No polling loop.
//! - Committed offsets live in the metadata [`KvStore`], keys and values
//!   built and parsed by [`crate::metadata::offsets`]: key
//!   `o group \0 topic \0 partition(u32 BE)`, value [`offsets::encode`]. A commit
//!   is checked and appended under the groups lock (so a check and its write
//!   cannot interleave with a membership change or another commit), then made
//!   durable outside it with the store's group commit; the response waits for
//!   that. Loading at start is the store's: live keys plus the records since
//!   its last snapshot, not every commit ever made.
//! - Bounds: a group has at most `group_max_size` members and the broker
//!   keeps at most `group_max_groups` groups (with members or committed
//!   offsets); past either, `LIMIT_REACHED`. A group with no members loses
//!   its offsets `offsets_retention_minutes` after its last commit or after
//!   its last member left ([`Coordinator::expire_offsets`], run by
//!   [`run_offsets_retention`]); a deleted topic's offsets go with it
//!   ([`Coordinator::forget_topic`]). Both delete under the groups lock, so a
//!   commit checked before cannot write after them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;
// tokio's clock, as in `state.rs`: paused in the session-timeout tests.
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use warren_protocol::ErrorCode;
use warren_protocol::api::groups::{
    CommitOffsetsRequest, CommitOffsetsResponse, CommittedOffset, CommittedTopic,
    DescribeGroupResponse, FetchOffsetsRequest, FetchOffsetsResponse, GroupListing, GroupMember,
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, ListGroupsResponse,
    PartitionErrors, PartitionLag, TopicLag, TopicPartitions,
};
use warren_storage::{KvOp, KvStore, Offset};

use super::assignor::TopicPartition;
use super::state::GroupState;
use crate::config::BrokerConfig;
use crate::metadata::offsets::{self, StoredOffset};
use crate::topics::Topics;

/// Longest group name, in bytes.
pub const MAX_GROUP_NAME_BYTES: usize = 255;

/// A refusal for the response header: its code and message.
pub type Refusal = (ErrorCode, String);

/// Checks a group name: 1..=255 bytes, no control characters (so no `\0`,
/// which separates the fields of a store key).
///
/// # Errors
/// `INVALID_GROUP_ID` with the reason.
pub fn validate_group(group: &str) -> Result<(), Refusal> {
    if group.is_empty() || group.len() > MAX_GROUP_NAME_BYTES {
        return Err((
            ErrorCode::INVALID_GROUP_ID,
            format!(
                "group name must be 1 to {MAX_GROUP_NAME_BYTES} bytes, got {}",
                group.len()
            ),
        ));
    }
    if group.chars().any(char::is_control) {
        return Err((
            ErrorCode::INVALID_GROUP_ID,
            "group name must not contain control characters".into(),
        ));
    }
    Ok(())
}

/// One committed offset, as [`committed_offsets`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCommit {
    pub group: String,
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
}

/// Every committed offset in the store, in key order (group, topic,
/// partition). Scans the store's offset keys: for metrics and admin calls,
/// not a hot path. Entries that do not parse are skipped.
pub fn committed_offsets(kv: &KvStore) -> Vec<StoredCommit> {
    kv.scan_prefix(offsets::ALL)
        .iter()
        .filter_map(|(key, value)| {
            let (group, topic, partition) = offsets::parse_key(key)?;
            Some(StoredCommit {
                group: group.to_owned(),
                topic: topic.to_owned(),
                partition,
                offset: offsets::decode(value)?.offset,
            })
        })
        .collect()
}

/// Reads one committed offset; a value that does not decode is logged and
/// reported as `UNKNOWN_SERVER_ERROR` (the store's CRCs make this a bug, not
/// disk damage).
fn read_offset(kv: &KvStore, key: &[u8]) -> Result<Option<StoredOffset>, ErrorCode> {
    match kv.get(key) {
        None => Ok(None),
        Some(value) => offsets::decode(&value).map(Some).ok_or_else(|| {
            tracing::error!(key = ?String::from_utf8_lossy(key), "committed offset does not decode");
            ErrorCode::UNKNOWN_SERVER_ERROR
        }),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The partition count of each of `names` that exists.
/// The partitions of `revoking` that a heartbeat's `owned` list still
/// claims: all a heartbeat needs of `owned` (a member confirms what it gave
/// up). Looks each claim up instead of materialising `owned` as
/// `(topic, partition)` pairs, which cost a copy of the topic name per
/// partition: a 16 MiB frame can list millions of partitions under a 64 KiB
/// name. At most `revoking.len()` entries, whatever the request holds.
fn claimed_among(
    owned: &[TopicPartitions],
    revoking: &BTreeSet<TopicPartition>,
) -> BTreeSet<TopicPartition> {
    let mut unclaimed: BTreeMap<&str, BTreeSet<u32>> = BTreeMap::new();
    for (topic, partition) in revoking {
        unclaimed.entry(topic).or_default().insert(*partition);
    }
    let mut claimed = BTreeSet::new();
    for t in owned {
        let Some(partitions) = unclaimed.get_mut(t.topic.as_str()) else {
            continue;
        };
        for p in &t.partitions {
            // Removed once claimed: a partition listed again costs no copy.
            if partitions.remove(p) {
                claimed.insert((t.topic.clone(), *p));
            }
        }
    }
    claimed
}

fn partition_counts<'a>(
    topics: &Topics,
    names: impl IntoIterator<Item = &'a String>,
) -> BTreeMap<String, u32> {
    names
        .into_iter()
        .filter_map(|name| {
            topics.get(name).map(|t| {
                (
                    name.clone(),
                    u32::try_from(t.partitions.len()).unwrap_or(u32::MAX),
                )
            })
        })
        .collect()
}

/// The group coordinator. See the module docs.
pub struct Coordinator {
    groups: Mutex<HashMap<String, GroupState>>,
    /// Groups with committed offsets -> their last activity in ms since the
    /// Unix epoch: the later of their last commit and the moment their last
    /// member left. Taken after `groups` when both are held.
    activity: Mutex<HashMap<String, i64>>,
    /// Woken when a join may have brought an earlier session deadline.
    deadline_changed: Notify,
    heartbeat_interval_ms: u32,
    min_session_ms: u32,
    max_session_ms: u32,
    /// `group_max_size`.
    max_members: usize,
    /// `group_max_groups`.
    max_groups: usize,
    /// `offsets_retention_minutes`, in ms.
    retention_ms: i64,
}

impl Coordinator {
    /// A coordinator with no groups, with the config's heartbeat interval,
    /// session-timeout bounds and group caps.
    pub fn new(config: &BrokerConfig) -> Coordinator {
        Coordinator {
            groups: Mutex::new(HashMap::new()),
            activity: Mutex::new(HashMap::new()),
            deadline_changed: Notify::new(),
            heartbeat_interval_ms: config.group_heartbeat_interval_ms,
            min_session_ms: config.group_min_session_timeout_ms,
            max_session_ms: config.group_max_session_timeout_ms,
            max_members: usize::try_from(config.group_max_size).unwrap_or(usize::MAX),
            max_groups: usize::try_from(config.group_max_groups).unwrap_or(usize::MAX),
            retention_ms: i64::try_from(config.offsets_retention_minutes.saturating_mul(60_000))
                .unwrap_or(i64::MAX),
        }
    }

    /// [`new`](Self::new), knowing the groups that have committed offsets in
    /// `kv` (their last commit times start their retention). Scans the
    /// store's offset keys: at start, on a blocking thread.
    pub fn load(config: &BrokerConfig, kv: &KvStore) -> Coordinator {
        let coordinator = Coordinator::new(config);
        {
            let mut activity = coordinator.activity();
            for (key, value) in kv.scan_prefix(offsets::ALL) {
                if let (Some((group, _, _)), Some(stored)) =
                    (offsets::parse_key(&key), offsets::decode(&value))
                {
                    let last = activity.entry(group.to_owned()).or_insert(i64::MIN);
                    *last = (*last).max(stored.commit_time_ms);
                }
            }
        }
        coordinator
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, GroupState>> {
        self.groups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn activity(&self) -> MutexGuard<'_, HashMap<String, i64>> {
        self.activity
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `LIMIT_REACHED` if `group` is new and the broker already keeps
    /// `group_max_groups` groups (with members or committed offsets).
    fn check_new_group(
        &self,
        group: &str,
        groups: &HashMap<String, GroupState>,
        activity: &HashMap<String, i64>,
    ) -> Result<(), Refusal> {
        if groups.contains_key(group) || activity.contains_key(group) {
            return Ok(());
        }
        let count = activity.len() + groups.keys().filter(|g| !activity.contains_key(*g)).count();
        if count >= self.max_groups {
            return Err((
                ErrorCode::LIMIT_REACHED,
                format!(
                    "the broker keeps {count} consumer groups, its limit (group_max_groups = {}); \
                     group {group:?} cannot be added",
                    self.max_groups
                ),
            ));
        }
        Ok(())
    }

    /// Notes that `group` lost its last member now (its offsets' retention
    /// starts again).
    fn emptied(&self, group: &str) {
        if let Some(last) = self.activity().get_mut(group) {
            *last = (*last).max(now_ms());
        }
    }

    /// JoinGroup.
    ///
    /// # Errors
    /// `INVALID_GROUP_ID`, `INVALID_SESSION_TIMEOUT`, `INVALID_REQUEST` for an
    /// empty or oversized subscription.
    pub fn join(
        &self,
        req: &JoinGroupRequest,
        topics: &Topics,
    ) -> Result<JoinGroupResponse, Refusal> {
        validate_group(&req.group)?;
        if !(self.min_session_ms..=self.max_session_ms).contains(&req.session_timeout_ms) {
            return Err((
                ErrorCode::INVALID_SESSION_TIMEOUT,
                format!(
                    "session_timeout_ms {} is outside {}..={}",
                    req.session_timeout_ms, self.min_session_ms, self.max_session_ms
                ),
            ));
        }
        if req.topics.is_empty() {
            return Err((
                ErrorCode::INVALID_REQUEST,
                "subscribe to at least one topic".into(),
            ));
        }
        let subscription: BTreeSet<String> = req.topics.iter().cloned().collect();
        let now = Instant::now();
        let (member_id, assignment) = {
            let mut groups = self.lock();
            self.check_new_group(&req.group, &groups, &self.activity())?;
            let (members, known) = groups.get(&req.group).map_or((0, false), |g| {
                (g.members().len(), g.members().contains_key(&req.member_id))
            });
            if !known && members >= self.max_members {
                return Err((
                    ErrorCode::LIMIT_REACHED,
                    format!(
                        "group {:?} has {members} members, its limit (group_max_size = {})",
                        req.group, self.max_members
                    ),
                ));
            }
            let group = groups.entry(req.group.clone()).or_default();
            let mut names = group.subscribed_topics();
            names.extend(subscription.iter().cloned());
            let counts = partition_counts(topics, &names);
            group.join(
                &req.member_id,
                subscription,
                Duration::from_millis(u64::from(req.session_timeout_ms)),
                &counts,
                now,
            )
        };
        self.deadline_changed.notify_one();
        tracing::info!(group = %req.group, member = %member_id, generation = assignment.generation,
            partitions = assignment.partitions.len(), "member joined");
        Ok(JoinGroupResponse {
            member_id,
            generation: assignment.generation,
            heartbeat_interval_ms: self.heartbeat_interval_ms,
            assignment: TopicPartitions::from_pairs(&assignment.partitions),
        })
    }

    /// Heartbeat.
    ///
    /// # Errors
    /// `INVALID_GROUP_ID`; `UNKNOWN_MEMBER` for a member the group does not
    /// have (expelled, left, or the broker restarted).
    pub fn heartbeat(
        &self,
        req: &HeartbeatRequest,
        topics: &Topics,
    ) -> Result<HeartbeatResponse, Refusal> {
        validate_group(&req.group)?;
        let unknown = || {
            (
                ErrorCode::UNKNOWN_MEMBER,
                format!(
                    "group {:?} has no member {:?}; join again",
                    req.group, req.member_id
                ),
            )
        };
        let mut groups = self.lock();
        let group = groups.get_mut(&req.group).ok_or_else(unknown)?;
        let owned = group
            .members()
            .get(&req.member_id)
            .map(|m| claimed_among(&req.owned, &m.revoking))
            .unwrap_or_default();
        let counts = partition_counts(topics, &group.subscribed_topics());
        let assignment = group
            .heartbeat(
                &req.member_id,
                req.generation,
                &owned,
                &counts,
                Instant::now(),
            )
            .map_err(|_| unknown())?;
        Ok(HeartbeatResponse {
            generation: assignment.generation,
            heartbeat_interval_ms: self.heartbeat_interval_ms,
            assignment: TopicPartitions::from_pairs(&assignment.partitions),
        })
    }

    /// LeaveGroup: the member's partitions are free at once.
    ///
    /// # Errors
    /// `INVALID_GROUP_ID`; `UNKNOWN_MEMBER`.
    pub fn leave(&self, group_name: &str, member_id: &str, topics: &Topics) -> Result<(), Refusal> {
        validate_group(group_name)?;
        let unknown = || {
            (
                ErrorCode::UNKNOWN_MEMBER,
                format!("group {group_name:?} has no member {member_id:?}"),
            )
        };
        let mut groups = self.lock();
        let group = groups.get_mut(group_name).ok_or_else(unknown)?;
        let counts = partition_counts(topics, &group.subscribed_topics());
        group.leave(member_id, &counts).map_err(|_| unknown())?;
        if group.is_empty() {
            groups.remove(group_name);
            self.emptied(group_name);
        }
        tracing::info!(group = %group_name, member = %member_id, "member left");
        Ok(())
    }

    /// Expels every member whose session ran out; returns how many.
    pub fn expire(&self, topics: &Topics, now: Instant) -> usize {
        let mut groups = self.lock();
        let mut expelled = 0;
        let mut emptied = Vec::new();
        groups.retain(|name, group| {
            if group.next_deadline().is_some_and(|d| d <= now) {
                let counts = partition_counts(topics, &group.subscribed_topics());
                for member in group.expire(&counts, now) {
                    tracing::info!(group = %name, member = %member, "session timed out; member expelled");
                    expelled += 1;
                }
                if group.is_empty() {
                    emptied.push(name.clone());
                }
            }
            !group.is_empty()
        });
        for name in emptied {
            self.emptied(&name);
        }
        expelled
    }

    /// The earliest session deadline of any member.
    fn next_deadline(&self) -> Option<Instant> {
        self.lock()
            .values()
            .filter_map(GroupState::next_deadline)
            .min()
    }

    /// CommitOffsets: checks and appends under the lock. Returns the response
    /// and, if anything was written, the store offset to sync before answering.
    ///
    /// # Errors
    /// `INVALID_GROUP_ID`; `UNKNOWN_MEMBER`; `GROUP_NOT_EMPTY` for an
    /// operator's commit (empty `member_id`) while the group has members; a
    /// store error (nothing was written).
    pub fn commit(
        &self,
        req: &CommitOffsetsRequest,
        topics: &Topics,
        kv: &KvStore,
    ) -> Result<(CommitOffsetsResponse, Option<Offset>), Refusal> {
        validate_group(&req.group)?;
        let groups = self.lock();
        let group = groups.get(&req.group);
        if req.member_id.is_empty() {
            if let Some(g) = group.filter(|g| !g.is_empty()) {
                return Err((
                    ErrorCode::GROUP_NOT_EMPTY,
                    format!(
                        "group {:?} has {} members; offsets can be reset only while it has none",
                        req.group,
                        g.members().len()
                    ),
                ));
            }
        } else {
            let known = group.is_some_and(|g| g.members().contains_key(&req.member_id));
            if !known {
                return Err((
                    ErrorCode::UNKNOWN_MEMBER,
                    format!(
                        "group {:?} has no member {:?}; join again",
                        req.group, req.member_id
                    ),
                ));
            }
        }
        let time = now_ms();
        let mut keys_values: Vec<(Vec<u8>, Bytes)> = Vec::new();
        // Where each partition's entry is in `keys_values`: a partition named
        // again replaces its value (the last wins, as in the store) instead of
        // adding a key of up to ~500 bytes per 14-byte request entry.
        let mut slot_of: HashMap<(&str, u32), usize> = HashMap::new();
        let mut response = CommitOffsetsResponse::default();
        for t in &req.topics {
            let topic = topics.get(&t.topic);
            let mut errors = Vec::with_capacity(t.partitions.len());
            for p in &t.partitions {
                let code = match &topic {
                    None => ErrorCode::UNKNOWN_TOPIC,
                    Some(topic) if p.partition as usize >= topic.partitions.len() => {
                        ErrorCode::UNKNOWN_PARTITION
                    }
                    Some(_) => match group.filter(|_| !req.member_id.is_empty()) {
                        Some(g) => g
                            .check_commit(
                                &req.member_id,
                                req.generation,
                                &(t.topic.clone(), p.partition),
                            )
                            .err()
                            .unwrap_or(ErrorCode::NONE),
                        None => ErrorCode::NONE,
                    },
                };
                if code == ErrorCode::NONE {
                    let value = offsets::encode(p.offset, time, p.metadata.as_deref());
                    match slot_of.entry((t.topic.as_str(), p.partition)) {
                        std::collections::hash_map::Entry::Occupied(slot) => {
                            if let Some(kv) = keys_values.get_mut(*slot.get()) {
                                kv.1 = value;
                            }
                        }
                        std::collections::hash_map::Entry::Vacant(slot) => {
                            slot.insert(keys_values.len());
                            keys_values
                                .push((offsets::key(&req.group, &t.topic, p.partition), value));
                        }
                    }
                }
                errors.push((p.partition, code));
            }
            response.topics.push(PartitionErrors {
                topic: t.topic.clone(),
                partitions: errors,
            });
        }
        if keys_values.is_empty() {
            return Ok((response, None));
        }
        // A partition named twice is written once, with its last offset
        // (a map, so a request of n repeats writes one key, not n).
        let keys_values: BTreeMap<Vec<u8>, Bytes> = keys_values.into_iter().collect();
        let mut activity = self.activity();
        self.check_new_group(&req.group, &groups, &activity)?;
        let ops: Vec<KvOp<'_>> = keys_values.iter().map(|(k, v)| KvOp::Put(k, v)).collect();
        let end = kv.apply(&ops).map_err(|e| {
            (
                crate::error::storage_code(&e, "commit offsets"),
                format!("storing offsets: {e}"),
            )
        })?;
        let last = activity.entry(req.group.clone()).or_insert(time);
        *last = (*last).max(time);
        drop(activity);
        drop(groups);
        Ok((response, Some(end)))
    }

    /// FetchOffsets.
    ///
    /// # Errors
    /// `INVALID_GROUP_ID`; for a member, `UNKNOWN_MEMBER` or `STALE_GENERATION`.
    pub fn fetch_offsets(
        &self,
        req: &FetchOffsetsRequest,
        kv: &KvStore,
    ) -> Result<FetchOffsetsResponse, Refusal> {
        validate_group(&req.group)?;
        if !req.member_id.is_empty() {
            let groups = self.lock();
            let member = groups
                .get(&req.group)
                .and_then(|g| g.members().get(&req.member_id))
                .ok_or_else(|| {
                    (
                        ErrorCode::UNKNOWN_MEMBER,
                        format!(
                            "group {:?} has no member {:?}; join again",
                            req.group, req.member_id
                        ),
                    )
                })?;
            if member.generation != req.generation {
                return Err((
                    ErrorCode::STALE_GENERATION,
                    format!(
                        "generation {} is stale; the member is at generation {}",
                        req.generation, member.generation
                    ),
                ));
            }
        }
        let committed = |code: Result<Option<StoredOffset>, ErrorCode>, partition| match code {
            Ok(Some(s)) => CommittedOffset {
                partition,
                error_code: ErrorCode::NONE,
                offset: i64::try_from(s.offset).unwrap_or(i64::MAX),
                metadata: s.metadata,
            },
            Ok(None) => CommittedOffset {
                partition,
                error_code: ErrorCode::NONE,
                offset: -1,
                metadata: None,
            },
            Err(error_code) => CommittedOffset {
                partition,
                error_code,
                offset: -1,
                metadata: None,
            },
        };
        let topics = if req.topics.is_empty() {
            let mut by_topic: BTreeMap<String, Vec<CommittedOffset>> = BTreeMap::new();
            for (key, value) in kv.scan_prefix(&offsets::group_prefix(&req.group)) {
                let Some((_, topic, partition)) = offsets::parse_key(&key) else {
                    continue;
                };
                let decoded = offsets::decode(&value).ok_or(ErrorCode::UNKNOWN_SERVER_ERROR);
                by_topic
                    .entry(topic.to_owned())
                    .or_default()
                    .push(committed(decoded.map(Some), partition));
            }
            by_topic
                .into_iter()
                .map(|(topic, partitions)| CommittedTopic { topic, partitions })
                .collect()
        } else {
            req.topics
                .iter()
                .map(|t| CommittedTopic {
                    topic: t.topic.clone(),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|&p| {
                            committed(read_offset(kv, &offsets::key(&req.group, &t.topic, p)), p)
                        })
                        .collect(),
                })
                .collect()
        };
        Ok(FetchOffsetsResponse { topics })
    }

    /// ListGroups: groups with members, and groups with committed offsets.
    /// Scans every committed offset (an admin call, not a hot path).
    pub fn list(&self, kv: &KvStore) -> ListGroupsResponse {
        let mut groups: BTreeMap<String, u32> = BTreeMap::new();
        for (key, _) in kv.scan_prefix(offsets::ALL) {
            if let Some((group, _, _)) = offsets::parse_key(&key) {
                groups.entry(group.to_owned()).or_insert(0);
            }
        }
        for (name, group) in self.lock().iter() {
            groups.insert(
                name.clone(),
                u32::try_from(group.members().len()).unwrap_or(u32::MAX),
            );
        }
        ListGroupsResponse {
            groups: groups
                .into_iter()
                .map(|(group, members)| GroupListing { group, members })
                .collect(),
        }
    }

    /// DescribeGroup: members, assignment, and per partition the committed
    /// offset, log end offset, lag and owner.
    ///
    /// # Errors
    /// `INVALID_GROUP_ID`.
    pub fn describe(
        &self,
        group_name: &str,
        topics: &Topics,
        kv: &KvStore,
    ) -> Result<DescribeGroupResponse, Refusal> {
        validate_group(group_name)?;
        let mut committed: BTreeMap<(String, u32), i64> = BTreeMap::new();
        for (key, value) in kv.scan_prefix(&offsets::group_prefix(group_name)) {
            if let (Some((_, topic, partition)), Some(stored)) =
                (offsets::parse_key(&key), offsets::decode(&value))
            {
                committed.insert(
                    (topic.to_owned(), partition),
                    i64::try_from(stored.offset).unwrap_or(i64::MAX),
                );
            }
        }
        let (members, owners, mut names) = {
            let groups = self.lock();
            let mut owners: BTreeMap<TopicPartition, String> = BTreeMap::new();
            let mut members = Vec::new();
            let mut names: BTreeSet<String> = BTreeSet::new();
            if let Some(group) = groups.get(group_name) {
                names = group.subscribed_topics();
                for (id, m) in group.members() {
                    for tp in m.assigned.iter().chain(&m.revoking) {
                        owners.insert(tp.clone(), id.clone());
                    }
                    members.push(GroupMember {
                        member_id: id.clone(),
                        generation: m.generation,
                        session_timeout_ms: u32::try_from(m.session_timeout.as_millis())
                            .unwrap_or(u32::MAX),
                        topics: m.topics.iter().cloned().collect(),
                        assignment: TopicPartitions::from_pairs(&m.assigned),
                    });
                }
            }
            (members, owners, names)
        };
        names.extend(committed.keys().map(|(t, _)| t.clone()));
        let offsets = names
            .into_iter()
            .map(|topic_name| {
                let topic = topics.get(&topic_name);
                let partitions = match &topic {
                    Some(topic) => topic
                        .partitions
                        .iter()
                        .map(|p| {
                            let key = (topic_name.clone(), p.index);
                            let end = i64::try_from(p.high_watermark().0).unwrap_or(i64::MAX);
                            let start = i64::try_from(p.log.log_start_offset().0).unwrap_or(0);
                            let c = committed.get(&key).copied().unwrap_or(-1);
                            PartitionLag {
                                partition: p.index,
                                committed: c,
                                log_end_offset: end,
                                lag: if c < 0 { end - start } else { (end - c).max(0) },
                                owner: owners.get(&key).cloned().unwrap_or_default(),
                            }
                        })
                        .collect(),
                    None => committed
                        .iter()
                        .filter(|((t, _), _)| *t == topic_name)
                        .map(|((_, p), &c)| PartitionLag {
                            partition: *p,
                            committed: c,
                            log_end_offset: -1,
                            lag: -1,
                            owner: String::new(),
                        })
                        .collect(),
                };
                TopicLag {
                    topic: topic_name,
                    partitions,
                }
            })
            .collect();
        Ok(DescribeGroupResponse {
            group: group_name.to_owned(),
            members,
            offsets,
        })
    }

    /// Deletes every committed offset on `topic` (the topic was deleted: a new
    /// topic of the same name starts with none). Returns the store offset to
    /// sync, if anything was written. Holds the groups lock while it scans
    /// and deletes, so a commit that checked the topic before it was deleted
    /// cannot write after the scan (and bring an offset back).
    ///
    /// # Errors
    /// The store's.
    pub fn forget_topic(
        &self,
        topic: &str,
        kv: &KvStore,
    ) -> warren_storage::Result<Option<Offset>> {
        let groups = self.lock();
        let mut touched = BTreeSet::new();
        let keys: Vec<Bytes> = kv
            .scan_prefix(offsets::ALL)
            .into_iter()
            .filter(|(key, _)| {
                offsets::parse_key(key).is_some_and(|(g, t, _)| {
                    t == topic && {
                        touched.insert(g.to_owned());
                        true
                    }
                })
            })
            .map(|(key, _)| key)
            .collect();
        let end = crate::metadata::delete_keys(kv, &keys)?;
        // A group left with no offsets and no members is gone.
        let mut activity = self.activity();
        for group in touched {
            if !groups.contains_key(&group)
                && kv.scan_prefix(&offsets::group_prefix(&group)).is_empty()
            {
                activity.remove(&group);
            }
        }
        Ok(end)
    }

    /// Deletes the committed offsets of every group that has no members and
    /// whose last activity (last commit, or its last member leaving) is
    /// older than `offsets_retention_minutes` before `now_ms` (Kafka's
    /// `offsets.retention.minutes`). Returns the groups removed and the store
    /// offset to sync. Holds the groups lock while it decides and deletes,
    /// so a commit or join cannot slip in between.
    ///
    /// # Errors
    /// The store's; the groups not yet deleted stay known.
    pub fn expire_offsets(
        &self,
        kv: &KvStore,
        now_ms: i64,
    ) -> warren_storage::Result<(Vec<String>, Option<Offset>)> {
        let cutoff = now_ms.saturating_sub(self.retention_ms);
        let groups = self.lock();
        let mut activity = self.activity();
        let expired: Vec<String> = activity
            .iter()
            .filter(|(g, last)| **last < cutoff && !groups.contains_key(*g))
            .map(|(g, _)| g.clone())
            .collect();
        let mut end = None;
        for group in &expired {
            let keys: Vec<Bytes> = kv
                .scan_prefix(&offsets::group_prefix(group))
                .into_iter()
                .map(|(k, _)| k)
                .collect();
            if let Some(o) = crate::metadata::delete_keys(kv, &keys)? {
                end = Some(o);
            }
            activity.remove(group);
            tracing::info!(%group, offsets = keys.len(), "committed offsets expired (no members, no commit within offsets_retention_minutes)");
        }
        Ok((expired, end))
    }
}

/// Runs until the broker shuts down: sleeps until the earliest session
/// deadline of any member (or until a join may have brought an earlier one),
/// then expels the members whose session ran out.
pub async fn run_expiry(
    coordinator: Arc<Coordinator>,
    topics: Arc<Topics>,
    shutdown: CancellationToken,
) {
    loop {
        let changed = coordinator.deadline_changed.notified();
        let next = coordinator.next_deadline();
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = sleep => {
                coordinator.expire(&topics, Instant::now());
            }
            () = changed => {}
            () = shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn heartbeat_claims_are_looked_up_among_the_revoking_partitions_only() {
        let revoking: BTreeSet<TopicPartition> = [
            ("t".to_string(), 0),
            ("t".to_string(), 2),
            ("u".to_string(), 1),
        ]
        .into();
        let owned = vec![
            TopicPartitions {
                topic: "t".into(),
                partitions: vec![2, 2, 2, 5, 0],
            },
            TopicPartitions {
                topic: "n".repeat(1_000),
                partitions: (0..10_000).collect(),
            },
            TopicPartitions {
                topic: "t".into(),
                partitions: vec![0, 7],
            },
        ];
        let claimed = claimed_among(&owned, &revoking);
        assert_eq!(claimed, [("t".to_string(), 0), ("t".to_string(), 2)].into());
        assert!(claimed_among(&owned, &BTreeSet::new()).is_empty());
        assert!(claimed_among(&[], &revoking).is_empty());
    }

    fn join_req(group: &str, member_id: &str) -> JoinGroupRequest {
        JoinGroupRequest {
            group: group.into(),
            member_id: member_id.into(),
            session_timeout_ms: 10_000,
            topics: vec!["t".into()],
        }
    }

    #[test]
    fn empty_groups_offsets_expire_after_the_retention_durably() {
        let dir = tempfile::tempdir().unwrap();
        let kv_dir = dir.path().join("kv");
        let config = BrokerConfig {
            offsets_retention_minutes: 1,
            ..BrokerConfig::default()
        };
        let now = now_ms();
        let manager = warren_storage::LogManager::open(&dir.path().join("data")).unwrap();
        let topics = Topics::with_metrics(Arc::new(manager), false);
        {
            let kv = KvStore::open(&kv_dir, warren_storage::KvConfig::default()).unwrap();
            for (group, time) in [
                ("old", now - 120_000),
                ("recent", now),
                ("joined", now - 120_000),
            ] {
                let key = offsets::key(group, "t", 0);
                kv.apply_durable(&[KvOp::Put(&key, &offsets::encode(5, time, None))])
                    .unwrap();
            }
            let c = Coordinator::load(&config, &kv);
            // A group with a member keeps its offsets however old its commit.
            let member = c.join(&join_req("joined", ""), &topics).unwrap();
            let (expired, end) = c.expire_offsets(&kv, now).unwrap();
            assert_eq!(expired, ["old"]);
            kv.sync_to(end.unwrap()).unwrap();
            assert_eq!(c.expire_offsets(&kv, now).unwrap().0, Vec::<String>::new());
            // Its last member leaving starts its retention afresh.
            c.leave("joined", &member.member_id, &topics).unwrap();
            assert!(c.expire_offsets(&kv, now).unwrap().0.is_empty());
            let (mut later, end) = c.expire_offsets(&kv, now_ms() + 61_000).unwrap();
            later.sort();
            assert_eq!(later, ["joined", "recent"]);
            kv.sync_to(end.unwrap()).unwrap();
            kv.close().unwrap();
        }
        let kv = KvStore::open(&kv_dir, warren_storage::KvConfig::default()).unwrap();
        assert!(committed_offsets(&kv).is_empty(), "deleted for good");
    }

    #[test]
    fn members_per_group_and_groups_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        let config = BrokerConfig {
            group_max_size: 2,
            group_max_groups: 2,
            ..BrokerConfig::default()
        };
        let manager = warren_storage::LogManager::open(&dir.path().join("data")).unwrap();
        let topics = Topics::with_metrics(Arc::new(manager), false);
        let c = Coordinator::new(&config);
        let a = c.join(&join_req("g", ""), &topics).unwrap();
        c.join(&join_req("g", ""), &topics).unwrap();
        let third = c.join(&join_req("g", ""), &topics).unwrap_err();
        assert_eq!(third.0, ErrorCode::LIMIT_REACHED);
        assert!(third.1.contains("group_max_size"), "{}", third.1);
        // A known member may join again.
        c.join(&join_req("g", &a.member_id), &topics).unwrap();
        c.join(&join_req("h", ""), &topics).unwrap();
        let new_group = c.join(&join_req("i", ""), &topics).unwrap_err();
        assert_eq!(new_group.0, ErrorCode::LIMIT_REACHED);
        assert!(new_group.1.contains("group_max_groups"), "{}", new_group.1);
    }

    #[test]
    fn group_names_are_checked() {
        assert!(validate_group("billing-eu.v2").is_ok());
        assert!(validate_group("").is_err());
        assert!(validate_group("a\0b").is_err());
        assert!(validate_group(&"g".repeat(256)).is_err());
        assert!(validate_group(&"g".repeat(255)).is_ok());
    }
}
