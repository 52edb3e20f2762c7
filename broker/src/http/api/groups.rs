//! `GET /api/groups` and `GET /api/groups/{name}[?kind=consumer|share]`:
//! consumer groups (the coordinator's ListGroups and DescribeGroup, the same
//! answers the CLI gets) and share groups (from their share-partitions'
//! state), with lag.
//!
//! Consumer-group lag per partition is the coordinator's: high watermark
//! minus the committed offset, or minus the log start when nothing is
//! committed. Share-group lag is the high watermark minus the
//! share-partition start offset (records not yet acknowledged, released
//! to the dead-letter topic or dropped); a share group's members are the
//! members holding record locks now (the broker keeps no other list of them).
//! Offsets and lag are shown only for topics the user may read (the route
//! needs `read` on the group; see `http/auth.rs`), in the detail and in the
//! listing's summed lag.
//! A group name may be both a consumer and a share group: the listing shows
//! both; `GET /api/groups/{name}` shows the consumer group unless
//! `?kind=share`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use warren_protocol::api::groups::DescribeGroupResponse;

use super::{ApiError, ApiResult, parse_query};
use crate::auth::Grants;
use crate::groups::keep_readable_offsets;
use crate::http::auth::RequestGrants;
use crate::share::SharePartition;
use crate::state::Shared;
use warren_protocol::api::auth::{Permission, ResourceType};

/// One line of `GET /api/groups`.
#[derive(Debug, Serialize)]
pub struct GroupSummary {
    pub name: String,
    /// `consumer` or `share`.
    pub kind: &'static str,
    /// `Stable` (has members) or `Empty`.
    pub state: &'static str,
    pub members: u32,
    /// Summed over the partitions of existing topics.
    pub lag: u64,
}

/// `GET /api/groups/{name}`.
#[derive(Debug, Serialize)]
pub struct GroupDetail {
    pub name: String,
    pub kind: &'static str,
    pub state: &'static str,
    /// The highest member generation (0 without members; share groups 0).
    pub generation: u32,
    pub members: Vec<MemberInfo>,
    pub offsets: Vec<PartitionOffset>,
}

/// A group member and the partitions it consumes.
#[derive(Debug, Serialize)]
pub struct MemberInfo {
    pub member_id: String,
    /// Always null: the protocol carries no client id.
    pub client_id: Option<String>,
    pub partitions: Vec<TopicPartition>,
}

/// A topic and partition number.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: u32,
}

/// A group's position in one partition.
#[derive(Debug, Serialize)]
pub struct PartitionOffset {
    pub topic: String,
    pub partition: u32,
    /// Consumer groups: the committed offset, null if none. Share groups: the
    /// share-partition start offset (every record below is done).
    pub committed_offset: Option<u64>,
    /// The partition's high watermark (null if the topic is gone).
    pub log_end_offset: Option<u64>,
    /// Null if the topic is gone.
    pub lag: Option<u64>,
    /// The member consuming it, if any (consumer groups).
    pub owner: Option<String>,
}

/// `?kind=` of `GET /api/groups/{name}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindQuery {
    kind: Option<String>,
}

fn consumer_detail(d: DescribeGroupResponse) -> GroupDetail {
    let generation = d.members.iter().map(|m| m.generation).max().unwrap_or(0);
    let members: Vec<MemberInfo> = d
        .members
        .into_iter()
        .map(|m| MemberInfo {
            member_id: m.member_id,
            client_id: None,
            partitions: m
                .assignment
                .into_iter()
                .flat_map(|t| {
                    t.partitions
                        .into_iter()
                        .map(move |partition| TopicPartition {
                            topic: t.topic.clone(),
                            partition,
                        })
                })
                .collect(),
        })
        .collect();
    let offsets = d
        .offsets
        .into_iter()
        .flat_map(|t| {
            t.partitions.into_iter().map(move |p| PartitionOffset {
                topic: t.topic.clone(),
                partition: p.partition,
                committed_offset: u64::try_from(p.committed).ok(),
                log_end_offset: u64::try_from(p.log_end_offset).ok(),
                lag: u64::try_from(p.lag).ok(),
                owner: (!p.owner.is_empty()).then_some(p.owner),
            })
        })
        .collect();
    GroupDetail {
        name: d.group,
        kind: "consumer",
        state: if members.is_empty() {
            "Empty"
        } else {
            "Stable"
        },
        generation,
        members,
        offsets,
    }
}

fn share_detail(
    shared: &Shared,
    name: &str,
    mut partitions: Vec<Arc<SharePartition>>,
    grants: &Grants,
) -> GroupDetail {
    partitions.retain(|sp| grants.allows(ResourceType::Topic, &sp.key.topic, Permission::Read));
    partitions.sort_by(|a, b| a.key.cmp(&b.key));
    let mut holders: BTreeMap<String, BTreeSet<TopicPartition>> = BTreeMap::new();
    let offsets = partitions
        .iter()
        .map(|sp| {
            let (start, lockers) = sp.progress();
            let tp = TopicPartition {
                topic: sp.key.topic.clone(),
                partition: sp.key.partition,
            };
            for member in lockers {
                holders
                    .entry(member.to_string())
                    .or_default()
                    .insert(tp.clone());
            }
            let end = shared
                .topics
                .get(&sp.key.topic)
                .and_then(|t| t.partitions.get(sp.key.partition as usize).cloned())
                .map(|p| p.high_watermark().0);
            PartitionOffset {
                topic: tp.topic,
                partition: tp.partition,
                committed_offset: Some(start),
                log_end_offset: end,
                lag: end.map(|end| end.saturating_sub(start)),
                owner: None,
            }
        })
        .collect();
    let members: Vec<MemberInfo> = holders
        .into_iter()
        .map(|(member_id, partitions)| MemberInfo {
            member_id,
            client_id: None,
            partitions: partitions.into_iter().collect(),
        })
        .collect();
    GroupDetail {
        name: name.to_owned(),
        kind: "share",
        state: if members.is_empty() {
            "Empty"
        } else {
            "Stable"
        },
        generation: 0,
        members,
        offsets,
    }
}

/// Every share group's share-partitions, by group name.
fn share_groups(shared: &Shared) -> BTreeMap<String, Vec<Arc<SharePartition>>> {
    let mut groups: BTreeMap<String, Vec<Arc<SharePartition>>> = BTreeMap::new();
    for sp in shared.share.list() {
        groups.entry(sp.key.group.clone()).or_default().push(sp);
    }
    groups
}

fn summary(d: &GroupDetail) -> GroupSummary {
    GroupSummary {
        name: d.name.clone(),
        kind: d.kind,
        state: d.state,
        members: u32::try_from(d.members.len()).unwrap_or(u32::MAX),
        lag: d.offsets.iter().filter_map(|o| o.lag).sum(),
    }
}

/// `GET /api/groups`: consumer groups, then share groups, each sorted by name.
pub async fn list(
    State(shared): State<Arc<Shared>>,
    grants: Option<Extension<RequestGrants>>,
) -> ApiResult<Json<Vec<GroupSummary>>> {
    let grants = RequestGrants::or_open(grants);
    // Scans the store's committed offsets once per group: an admin call,
    // like ListGroups followed by DescribeGroup from the CLI.
    let worker = Arc::clone(&shared);
    let worker_grants = Arc::clone(&grants);
    let mut out = tokio::task::spawn_blocking(move || {
        let shared = worker;
        let mut out = Vec::new();
        for g in shared.groups.list(&shared.kv).groups {
            if let Ok(mut d) = shared.groups.describe(&g.group, &shared.topics, &shared.kv) {
                keep_readable_offsets(&mut d, &worker_grants);
                out.push(summary(&consumer_detail(d)));
            }
        }
        out
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    for (name, partitions) in share_groups(&shared) {
        out.push(summary(&share_detail(&shared, &name, partitions, &grants)));
    }
    Ok(Json(out))
}

/// `GET /api/groups/{name}`: 404 `GROUP_NOT_FOUND` for a group with no
/// members, no committed offsets and no share-partitions.
pub async fn describe(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    grants: Option<Extension<RequestGrants>>,
    query: Result<Query<KindQuery>, QueryRejection>,
) -> ApiResult<Json<GroupDetail>> {
    let grants = RequestGrants::or_open(grants);
    let kind = parse_query(query)?.kind;
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "GROUP_NOT_FOUND",
            format!("no group named {name:?}"),
        )
    };
    let want_consumer = match kind.as_deref() {
        None | Some("consumer") => true,
        Some("share") => false,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "kind must be consumer or share, not {other:?}"
            )));
        }
    };
    if want_consumer {
        let worker = Arc::clone(&shared);
        let group = name.clone();
        let described = tokio::task::spawn_blocking(move || {
            worker.groups.describe(&group, &worker.topics, &worker.kv)
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
        if let Ok(mut d) = described
            && !(d.members.is_empty() && d.offsets.is_empty())
        {
            keep_readable_offsets(&mut d, &grants);
            return Ok(Json(consumer_detail(d)));
        }
        if kind.is_some() {
            return Err(not_found());
        }
    }
    match share_groups(&shared).remove(&name) {
        Some(partitions) => Ok(Json(share_detail(&shared, &name, partitions, &grants))),
        None => Err(not_found()),
    }
}
