//! Consumer groups: JoinGroup (key 9), Heartbeat (key 10), LeaveGroup
//! (key 11), CommitOffsets (key 12), FetchOffsets (key 13), ListGroups
//! (key 18) and DescribeGroup (key 19).
//!
//! The broker assigns partitions (there is no client-side assignor) and moves
//! them incrementally: a member keeps every partition it owns that is still
//! meant for it, gives up only the ones that move, and is handed a partition
//! only once its previous owner has given it up (or been expelled).
//!
//! ```text
//! JoinGroup request  = group: string | member_id: string | session_timeout_ms: u32 |
//!                      topics: array<string>
//! JoinGroup response = member_id: string | generation: u32 |
//!                      heartbeat_interval_ms: u32 | assignment
//! Heartbeat request  = group: string | member_id: string | generation: u32 |
//!                      owned: assignment
//! Heartbeat response = generation: u32 | heartbeat_interval_ms: u32 | assignment
//! LeaveGroup request = group: string | member_id: string
//! LeaveGroup response = (empty)
//! assignment         = array< topic: string | partitions: array<u32> >
//! ```
//!
//! A new member joins with an empty `member_id` and gets one back; a member
//! that rejoins with its id (after a lost connection, say) keeps it. The
//! response's `assignment` is the member's partitions **now**: on a heartbeat
//! it may add partitions (start consuming them) or leave some out (stop
//! consuming them, commit their offsets, and report the smaller `owned` set
//! at the next heartbeat, which should come at once). `generation` is the
//! member's epoch: it grows whenever the member's assignment changes, and
//! commits carry it (see below). A heartbeat from a member the broker has
//! expelled (it missed `session_timeout_ms`) or that left gets
//! `UNKNOWN_MEMBER` in the response header: the member must drop its
//! partitions and join again with an empty id.
//!
//! ```text
//! CommitOffsets request  = group: string | member_id: string | generation: u32 |
//!                          topics: array< topic: string | partitions: array<
//!                              partition: u32 | offset: u64 | metadata: nullable_string > >
//! CommitOffsets response = topics: array< topic: string |
//!                              partitions: array< partition: u32 | error_code: u16 > >
//! FetchOffsets request   = group: string | member_id: string | generation: u32 |
//!                          topics: array< topic: string | partitions: array<u32> >
//! FetchOffsets response  = topics: array< topic: string | partitions: array<
//!                              partition: u32 | error_code: u16 | offset: i64 |
//!                              metadata: nullable_string > >
//! ```
//!
//! A commit's `offset` is the next offset to consume. It is answered once the
//! commit is durable. From a member, a commit is refused per partition with
//! `STALE_GENERATION` when `generation` is not the member's current one, and
//! with `PARTITION_NOT_ASSIGNED` for a partition the member does not own; an
//! unknown member gets `UNKNOWN_MEMBER` in the header. With an empty
//! `member_id` (and generation 0) the commit is an operator's (offset reset):
//! accepted only while the group has no members, else `GROUP_NOT_EMPTY`.
//!
//! FetchOffsets with an empty topic list returns every committed offset of the
//! group; a partition with nothing committed has offset -1. A member reading
//! its offsets (to know where to start on a partition it was just given)
//! sends its id and generation and is fenced as a commit is, in the header:
//! `UNKNOWN_MEMBER`, or `STALE_GENERATION` when the generation is not its
//! current one. An empty `member_id` reads without fencing.
//!
//! ```text
//! ListGroups request     = (empty)
//! ListGroups response    = groups: array< group: string | members: u32 >
//! DescribeGroup request  = group: string
//! DescribeGroup response = group: string |
//!                          members: array< member_id: string | generation: u32 |
//!                              session_timeout_ms: u32 | topics: array<string> |
//!                              assignment > |
//!                          offsets: array< topic: string | partitions: array<
//!                              partition: u32 | committed: i64 | log_end_offset: i64 |
//!                              lag: i64 | owner: string > >
//! ```
//!
//! ListGroups lists every group with members or with committed offsets.
//! DescribeGroup answers for any name (an unknown group has no members and no
//! offsets). `offsets` has every partition of every topic the group subscribes
//! to or has committed on: `committed` is -1 when nothing is committed, `lag`
//! is `log_end_offset - committed` (the whole log, `log_end_offset -
//! log_start_offset`, when nothing is committed; -1 when the topic no longer
//! exists, with `log_end_offset` -1), and `owner` is the member consuming the
//! partition, or empty.

use bytes::{BufMut, BytesMut};

use super::topics::EmptyResponse;
use super::{ApiKey, Body, Request};
use crate::error::Result;
use crate::error_code::ErrorCode;
use crate::wire::{WireReader, put_array, put_nullable_string, put_string};

/// Partitions by topic: an assignment, or the partitions a member owns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopicPartitions {
    pub topic: String,
    pub partitions: Vec<u32>,
}

impl TopicPartitions {
    /// Groups `(topic, partition)` pairs by topic (topics sorted, partitions
    /// in the order given): an assignment from a set of partitions.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = &'a (String, u32)>) -> Vec<Self> {
        let mut by_topic: std::collections::BTreeMap<&str, Vec<u32>> =
            std::collections::BTreeMap::new();
        for (topic, p) in pairs {
            by_topic.entry(topic).or_default().push(*p);
        }
        by_topic
            .into_iter()
            .map(|(topic, partitions)| TopicPartitions {
                topic: topic.to_owned(),
                partitions,
            })
            .collect()
    }

    /// Every `(topic, partition)` of an assignment.
    pub fn to_pairs<C: FromIterator<(String, u32)>>(list: &[Self]) -> C {
        list.iter()
            .flat_map(|t| t.partitions.iter().map(|&p| (t.topic.clone(), p)))
            .collect()
    }
}

fn put_assignment(dst: &mut BytesMut, assignment: &[TopicPartitions]) -> Result<()> {
    put_array(dst, assignment, |dst, t| {
        put_string(dst, &t.topic);
        put_array(dst, &t.partitions, |dst, p| {
            dst.put_u32(*p);
            Ok(())
        })
    })
}

fn read_assignment(r: &mut WireReader, what: &'static str) -> Result<Vec<TopicPartitions>> {
    r.array(what, 6, |r| {
        Ok(TopicPartitions {
            topic: r.string("topic")?,
            partitions: r.array("partitions", 4, |r| r.u32("partition"))?,
        })
    })
}

/// JoinGroup request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JoinGroupRequest {
    pub group: String,
    /// Empty for a new member.
    pub member_id: String,
    pub session_timeout_ms: u32,
    /// The topics the member subscribes to.
    pub topics: Vec<String>,
}

impl Request for JoinGroupRequest {
    const API_KEY: ApiKey = ApiKey::JoinGroup;
    type Response = JoinGroupResponse;
}

impl Body for JoinGroupRequest {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_string(dst, &self.group);
        put_string(dst, &self.member_id);
        dst.put_u32(self.session_timeout_ms);
        put_array(dst, &self.topics, |dst, t| {
            put_string(dst, t);
            Ok(())
        })
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        Ok(JoinGroupRequest {
            group: r.string("group")?,
            member_id: r.string("member_id")?,
            session_timeout_ms: r.u32("session_timeout_ms")?,
            topics: r.array("topics", 2, |r| r.string("topic"))?,
        })
    }
}

/// JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JoinGroupResponse {
    pub member_id: String,
    pub generation: u32,
    pub heartbeat_interval_ms: u32,
    pub assignment: Vec<TopicPartitions>,
}

impl Body for JoinGroupResponse {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_string(dst, &self.member_id);
        dst.put_u32(self.generation);
        dst.put_u32(self.heartbeat_interval_ms);
        put_assignment(dst, &self.assignment)
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        Ok(JoinGroupResponse {
            member_id: r.string("member_id")?,
            generation: r.u32("generation")?,
            heartbeat_interval_ms: r.u32("heartbeat_interval_ms")?,
            assignment: read_assignment(r, "assignment")?,
        })
    }
}

/// Heartbeat request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeartbeatRequest {
    pub group: String,
    pub member_id: String,
    pub generation: u32,
    /// The partitions the member still consumes.
    pub owned: Vec<TopicPartitions>,
}

impl Request for HeartbeatRequest {
    const API_KEY: ApiKey = ApiKey::Heartbeat;
    type Response = HeartbeatResponse;
}

impl Body for HeartbeatRequest {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_string(dst, &self.group);
        put_string(dst, &self.member_id);
        dst.put_u32(self.generation);
        put_assignment(dst, &self.owned)
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        Ok(HeartbeatRequest {
            group: r.string("group")?,
            member_id: r.string("member_id")?,
            generation: r.u32("generation")?,
            owned: read_assignment(r, "owned")?,
        })
    }
}

/// Heartbeat response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeartbeatResponse {
    pub generation: u32,
    pub heartbeat_interval_ms: u32,
    pub assignment: Vec<TopicPartitions>,
}

impl Body for HeartbeatResponse {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        dst.put_u32(self.generation);
        dst.put_u32(self.heartbeat_interval_ms);
        put_assignment(dst, &self.assignment)
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        Ok(HeartbeatResponse {
            generation: r.u32("generation")?,
            heartbeat_interval_ms: r.u32("heartbeat_interval_ms")?,
            assignment: read_assignment(r, "assignment")?,
        })
    }
}

/// LeaveGroup request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaveGroupRequest {
    pub group: String,
    pub member_id: String,
}

impl Request for LeaveGroupRequest {
    const API_KEY: ApiKey = ApiKey::LeaveGroup;
    type Response = EmptyResponse;
}

impl Body for LeaveGroupRequest {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_string(dst, &self.group);
        put_string(dst, &self.member_id);
        Ok(())
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        Ok(LeaveGroupRequest {
            group: r.string("group")?,
            member_id: r.string("member_id")?,
        })
    }
}

/// One partition's offset in a CommitOffsets request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommitPartition {
    pub partition: u32,
    /// The next offset to consume.
    pub offset: u64,
    pub metadata: Option<String>,
}

/// One topic of a CommitOffsets request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommitTopic {
    pub topic: String,
    pub partitions: Vec<CommitPartition>,
}

/// CommitOffsets request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommitOffsetsRequest {
    pub group: String,
    /// Empty for an operator's commit to a group without members.
    pub member_id: String,
    pub generation: u32,
    pub topics: Vec<CommitTopic>,
}

impl Request for CommitOffsetsRequest {
    const API_KEY: ApiKey = ApiKey::CommitOffsets;
    type Response = CommitOffsetsResponse;
}

impl Body for CommitOffsetsRequest {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_string(dst, &self.group);
        put_string(dst, &self.member_id);
        dst.put_u32(self.generation);
        put_array(dst, &self.topics, |dst, t| {
            put_string(dst, &t.topic);
            put_array(dst, &t.partitions, |dst, p| {
                dst.put_u32(p.partition);
                dst.put_u64(p.offset);
                put_nullable_string(dst, p.metadata.as_deref());
                Ok(())
            })
        })
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        Ok(CommitOffsetsRequest {
            group: r.string("group")?,
            member_id: r.string("member_id")?,
            generation: r.u32("generation")?,
            topics: r.array("topics", 6, |r| {
                Ok(CommitTopic {
                    topic: r.string("topic")?,
                    partitions: r.array("partitions", 14, |r| {
                        Ok(CommitPartition {
                            partition: r.u32("partition")?,
                            offset: r.u64("offset")?,
                            metadata: r.nullable_string("metadata")?,
                        })
                    })?,
                })
            })?,
        })
    }
}

/// One partition's result: `(partition, error_code)`, by topic.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartitionErrors {
    pub topic: String,
    pub partitions: Vec<(u32, ErrorCode)>,
}

/// CommitOffsets response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommitOffsetsResponse {
    pub topics: Vec<PartitionErrors>,
}

impl Body for CommitOffsetsResponse {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_array(dst, &self.topics, |dst, t| {
            put_string(dst, &t.topic);
            put_array(dst, &t.partitions, |dst, (p, code)| {
                dst.put_u32(*p);
                dst.put_u16(code.0);
                Ok(())
            })
        })
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        Ok(CommitOffsetsResponse {
            topics: r.array("topics", 6, |r| {
                Ok(PartitionErrors {
                    topic: r.string("topic")?,
                    partitions: r.array("partitions", 6, |r| {
                        Ok((r.u32("partition")?, ErrorCode(r.u16("error_code")?)))
                    })?,
                })
            })?,
        })
    }
}

/// FetchOffsets request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchOffsetsRequest {
    pub group: String,
    /// A member's id, fenced like a commit; empty for a reader outside the
    /// group (an operator, a lag monitor), never fenced.
    pub member_id: String,
    /// The member's generation (ignored with an empty `member_id`).
    pub generation: u32,
    /// Empty: every committed offset of the group.
    pub topics: Vec<TopicPartitions>,
}

impl Request for FetchOffsetsRequest {
    const API_KEY: ApiKey = ApiKey::FetchOffsets;
    type Response = FetchOffsetsResponse;
}

impl Body for FetchOffsetsRequest {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_string(dst, &self.group);
        put_string(dst, &self.member_id);
        dst.put_u32(self.generation);
        put_assignment(dst, &self.topics)
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        Ok(FetchOffsetsRequest {
            group: r.string("group")?,
            member_id: r.string("member_id")?,
            generation: r.u32("generation")?,
            topics: read_assignment(r, "topics")?,
        })
    }
}

/// One partition's committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub partition: u32,
    pub error_code: ErrorCode,
    /// The next offset to consume, or -1 when nothing is committed.
    pub offset: i64,
    pub metadata: Option<String>,
}

/// One topic of a FetchOffsets response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommittedTopic {
    pub topic: String,
    pub partitions: Vec<CommittedOffset>,
}

/// FetchOffsets response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchOffsetsResponse {
    pub topics: Vec<CommittedTopic>,
}

impl Body for FetchOffsetsResponse {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_array(dst, &self.topics, |dst, t| {
            put_string(dst, &t.topic);
            put_array(dst, &t.partitions, |dst, p| {
                dst.put_u32(p.partition);
                dst.put_u16(p.error_code.0);
                dst.put_i64(p.offset);
                put_nullable_string(dst, p.metadata.as_deref());
                Ok(())
            })
        })
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        Ok(FetchOffsetsResponse {
            topics: r.array("topics", 6, |r| {
                Ok(CommittedTopic {
                    topic: r.string("topic")?,
                    partitions: r.array("partitions", 16, |r| {
                        Ok(CommittedOffset {
                            partition: r.u32("partition")?,
                            error_code: ErrorCode(r.u16("error_code")?),
                            offset: r.i64("offset")?,
                            metadata: r.nullable_string("metadata")?,
                        })
                    })?,
                })
            })?,
        })
    }
}

/// ListGroups request (empty).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListGroupsRequest;

impl Request for ListGroupsRequest {
    const API_KEY: ApiKey = ApiKey::ListGroups;
    type Response = ListGroupsResponse;
}

impl Body for ListGroupsRequest {
    fn encode(&self, _dst: &mut BytesMut) -> Result<()> {
        Ok(())
    }

    fn read(_r: &mut WireReader) -> Result<Self> {
        Ok(ListGroupsRequest)
    }
}

/// One group in a ListGroups response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupListing {
    pub group: String,
    /// Members now (0 for a group that only has committed offsets).
    pub members: u32,
}

/// ListGroups response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListGroupsResponse {
    pub groups: Vec<GroupListing>,
}

impl Body for ListGroupsResponse {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_array(dst, &self.groups, |dst, g| {
            put_string(dst, &g.group);
            dst.put_u32(g.members);
            Ok(())
        })
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        Ok(ListGroupsResponse {
            groups: r.array("groups", 6, |r| {
                Ok(GroupListing {
                    group: r.string("group")?,
                    members: r.u32("members")?,
                })
            })?,
        })
    }
}

/// DescribeGroup request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DescribeGroupRequest {
    pub group: String,
}

impl Request for DescribeGroupRequest {
    const API_KEY: ApiKey = ApiKey::DescribeGroup;
    type Response = DescribeGroupResponse;
}

impl Body for DescribeGroupRequest {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_string(dst, &self.group);
        Ok(())
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        Ok(DescribeGroupRequest {
            group: r.string("group")?,
        })
    }
}

/// One member in a DescribeGroup response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupMember {
    pub member_id: String,
    pub generation: u32,
    pub session_timeout_ms: u32,
    pub topics: Vec<String>,
    /// The partitions it consumes now.
    pub assignment: Vec<TopicPartitions>,
}

/// One partition's position in a DescribeGroup response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartitionLag {
    pub partition: u32,
    /// The committed offset, -1 if none.
    pub committed: i64,
    /// The partition's log end offset, -1 if the topic does not exist.
    pub log_end_offset: i64,
    /// Records not yet committed; see the module docs.
    pub lag: i64,
    /// The member consuming it, or empty.
    pub owner: String,
}

/// One topic's partitions in a DescribeGroup response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopicLag {
    pub topic: String,
    pub partitions: Vec<PartitionLag>,
}

/// DescribeGroup response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DescribeGroupResponse {
    pub group: String,
    pub members: Vec<GroupMember>,
    pub offsets: Vec<TopicLag>,
}

impl Body for DescribeGroupResponse {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_string(dst, &self.group);
        put_array(dst, &self.members, |dst, m| {
            put_string(dst, &m.member_id);
            dst.put_u32(m.generation);
            dst.put_u32(m.session_timeout_ms);
            put_array(dst, &m.topics, |dst, t| {
                put_string(dst, t);
                Ok(())
            })?;
            put_assignment(dst, &m.assignment)
        })?;
        put_array(dst, &self.offsets, |dst, t| {
            put_string(dst, &t.topic);
            put_array(dst, &t.partitions, |dst, p| {
                dst.put_u32(p.partition);
                dst.put_i64(p.committed);
                dst.put_i64(p.log_end_offset);
                dst.put_i64(p.lag);
                put_string(dst, &p.owner);
                Ok(())
            })
        })
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        Ok(DescribeGroupResponse {
            group: r.string("group")?,
            members: r.array("members", 18, |r| {
                Ok(GroupMember {
                    member_id: r.string("member_id")?,
                    generation: r.u32("generation")?,
                    session_timeout_ms: r.u32("session_timeout_ms")?,
                    topics: r.array("topics", 2, |r| r.string("topic"))?,
                    assignment: read_assignment(r, "assignment")?,
                })
            })?,
            offsets: r.array("offsets", 6, |r| {
                Ok(TopicLag {
                    topic: r.string("topic")?,
                    partitions: r.array("partitions", 30, |r| {
                        Ok(PartitionLag {
                            partition: r.u32("partition")?,
                            committed: r.i64("committed")?,
                            log_end_offset: r.i64("log_end_offset")?,
                            lag: r.i64("lag")?,
                            owner: r.string("owner")?,
                        })
                    })?,
                })
            })?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::tests::round_trip;

    fn assignment() -> Vec<TopicPartitions> {
        vec![
            TopicPartitions {
                topic: "orders".into(),
                partitions: vec![0, 3, 5],
            },
            TopicPartitions {
                topic: "audit".into(),
                partitions: vec![],
            },
        ]
    }

    #[test]
    fn round_trips() {
        round_trip(&JoinGroupRequest {
            group: "billing".into(),
            member_id: String::new(),
            session_timeout_ms: 10_000,
            topics: vec!["orders".into(), "audit".into()],
        });
        round_trip(&JoinGroupResponse {
            member_id: "m-1".into(),
            generation: 3,
            heartbeat_interval_ms: 300,
            assignment: assignment(),
        });
        round_trip(&HeartbeatRequest {
            group: "billing".into(),
            member_id: "m-1".into(),
            generation: 3,
            owned: assignment(),
        });
        round_trip(&HeartbeatResponse {
            generation: 4,
            heartbeat_interval_ms: 300,
            assignment: assignment(),
        });
        round_trip(&LeaveGroupRequest {
            group: "billing".into(),
            member_id: "m-1".into(),
        });
        round_trip(&CommitOffsetsRequest {
            group: "billing".into(),
            member_id: "m-1".into(),
            generation: 4,
            topics: vec![CommitTopic {
                topic: "orders".into(),
                partitions: vec![
                    CommitPartition {
                        partition: 0,
                        offset: 42,
                        metadata: None,
                    },
                    CommitPartition {
                        partition: 3,
                        offset: 7,
                        metadata: Some("host-a".into()),
                    },
                ],
            }],
        });
        round_trip(&CommitOffsetsResponse {
            topics: vec![PartitionErrors {
                topic: "orders".into(),
                partitions: vec![(0, ErrorCode::NONE), (3, ErrorCode::STALE_GENERATION)],
            }],
        });
        round_trip(&FetchOffsetsRequest {
            group: "billing".into(),
            member_id: "m-1".into(),
            generation: 7,
            topics: assignment(),
        });
        round_trip(&FetchOffsetsResponse {
            topics: vec![CommittedTopic {
                topic: "orders".into(),
                partitions: vec![CommittedOffset {
                    partition: 0,
                    error_code: ErrorCode::NONE,
                    offset: -1,
                    metadata: None,
                }],
            }],
        });
        round_trip(&ListGroupsRequest);
        round_trip(&ListGroupsResponse {
            groups: vec![
                GroupListing {
                    group: "billing".into(),
                    members: 3,
                },
                GroupListing {
                    group: "audit".into(),
                    members: 0,
                },
            ],
        });
        round_trip(&DescribeGroupRequest {
            group: "billing".into(),
        });
        round_trip(&describe_group_response());
    }

    pub(crate) fn describe_group_response() -> DescribeGroupResponse {
        DescribeGroupResponse {
            group: "billing".into(),
            members: vec![GroupMember {
                member_id: "m-1".into(),
                generation: 4,
                session_timeout_ms: 10_000,
                topics: vec!["orders".into()],
                assignment: assignment(),
            }],
            offsets: vec![TopicLag {
                topic: "orders".into(),
                partitions: vec![
                    PartitionLag {
                        partition: 0,
                        committed: 40,
                        log_end_offset: 42,
                        lag: 2,
                        owner: "m-1".into(),
                    },
                    PartitionLag {
                        partition: 1,
                        committed: -1,
                        log_end_offset: -1,
                        lag: -1,
                        owner: String::new(),
                    },
                ],
            }],
        }
    }
}
