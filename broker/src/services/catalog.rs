//! The catalog: what a client may know about topics and where they live.
//! Lists and describes topics, answers metadata (which broker leads which
//! partition) and finds offsets (earliest, latest, by timestamp), each
//! filtered by the caller's grants.
//!
//! Placement is the one place a single node is assumed: every partition is
//! led by this broker ([`Catalog::NODE_ID`] at its advertised address). A
//! cluster replaces [`Catalog::brokers`] and [`Catalog::leader`] with the
//! replicated metadata's view; nothing above the catalog knows.
//!
//! Permissions: a topic shows in lists and metadata to callers who may
//! describe it (read or write); one named in a metadata request that the
//! caller may not describe is `TopicAuthorizationFailed` whether or not it
//! exists (Kafka does the same). Describing one topic needs describe;
//! offsets need read.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

use warren_protocol::api::auth::{Permission, ResourceType};
use warren_protocol::api::bindings::RoutingMode;

use super::{ErrorKind, ServiceError, ServiceResult, denied_kind};
use crate::auth::Grants;
use crate::topics::{Topic, Topics};

/// Most bytes of zstd records one offsets-by-timestamp lookup decompresses
/// over all its partitions (one batch at the largest a produce accepts); past
/// it, a partition whose batch is compressed is answered at batch granularity
/// (the batch's base offset and `max_timestamp`: at or before the exact
/// record), so a request naming many partitions of huge compressed batches
/// cannot hold a worker for long. Not configurable.
pub const MAX_DECOMPRESSED_BYTES_PER_REQUEST: u64 = 64 << 20;

/// The catalog service; see the module docs.
#[derive(Clone)]
pub struct Catalog {
    topics: Arc<Topics>,
    /// Where clients reach this broker.
    advertised: SocketAddr,
}

/// A broker of the cluster as clients see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    pub node_id: u32,
    pub addr: SocketAddr,
}

/// One topic's metadata: its routing mode and its partitions' leaders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPlacement {
    pub routing: RoutingMode,
    /// `(partition, leader node id)`, in partition order.
    pub partitions: Vec<(u32, u32)>,
}

/// A topic's name and partition count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicListing {
    pub name: String,
    pub partitions: u32,
}

/// Which offset of a partition to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start.
    Earliest,
    /// The high watermark (the next offset a consumer can read).
    Latest,
    /// The first record whose timestamp is at or after this one (ms).
    Timestamp(i64),
}

/// A found offset: the offset, and the record's timestamp for a lookup by
/// timestamp (else `None`). `None` as a whole: no record at or after the
/// timestamp below the high watermark.
pub type FoundOffset = Option<(u64, Option<i64>)>;

impl Catalog {
    /// This broker's node id: the only one while Warren runs as one node.
    pub const NODE_ID: u32 = 0;

    /// The catalog over `topics`, for a broker clients reach at `advertised`.
    pub fn new(topics: Arc<Topics>, advertised: SocketAddr) -> Catalog {
        Catalog { topics, advertised }
    }

    /// The brokers clients may connect to.
    pub fn brokers(&self) -> Vec<BrokerInfo> {
        vec![BrokerInfo {
            node_id: Catalog::NODE_ID,
            addr: self.advertised,
        }]
    }

    /// The node that leads `partition` of `topic`.
    pub fn leader(&self, _topic: &Topic, _partition: u32) -> u32 {
        Catalog::NODE_ID
    }

    /// Every topic the caller may describe, sorted by name.
    pub fn list(&self, grants: &Grants) -> Vec<TopicListing> {
        self.topics
            .list()
            .iter()
            .filter(|t| grants.allows_describe(ResourceType::Topic, &t.config.name))
            .map(|t| TopicListing {
                name: t.config.name.clone(),
                partitions: t.config.partitions,
            })
            .collect()
    }

    /// The metadata of the topics named, each once, in the order first
    /// named ([`metadata_all`](Self::metadata_all) for every topic).
    pub fn metadata<'n>(
        &self,
        grants: &Grants,
        names: &'n [String],
    ) -> Vec<(&'n str, Result<TopicPlacement, ErrorKind>)> {
        let readable = |name: &str| grants.allows_describe(ResourceType::Topic, name);
        let place = |topic: &Topic| TopicPlacement {
            routing: topic.routing(),
            partitions: (0..topic.config.partitions)
                .map(|p| (p, self.leader(topic, p)))
                .collect(),
        };
        // A name asked for twice is answered once: each answer lists every
        // partition, so repeats would multiply the response.
        let mut seen = HashSet::with_capacity(names.len());
        names
            .iter()
            .filter(|n| seen.insert(n.as_str()))
            .map(|name| {
                let found = match self.topics.get(name).filter(|_| readable(name)) {
                    Some(t) => Ok(place(&t)),
                    None if readable(name) => Err(ErrorKind::UnknownTopic),
                    None => Err(ErrorKind::TopicAuthorizationFailed),
                };
                (name.as_str(), found)
            })
            .collect()
    }

    /// The metadata of every topic the caller may describe, sorted by name.
    pub fn metadata_all(&self, grants: &Grants) -> Vec<(String, TopicPlacement)> {
        self.topics
            .list()
            .iter()
            .filter(|t| grants.allows_describe(ResourceType::Topic, &t.config.name))
            .map(|t| {
                let placement = TopicPlacement {
                    routing: t.routing(),
                    partitions: (0..t.config.partitions)
                        .map(|p| (p, self.leader(t, p)))
                        .collect(),
                };
                (t.config.name.clone(), placement)
            })
            .collect()
    }

    /// Topic `name`, for a caller who may describe it.
    ///
    /// # Errors
    /// `TopicAuthorizationFailed` (read or write is needed) or
    /// `UnknownTopic`, with a message.
    pub fn describe(&self, grants: &Grants, name: &str) -> ServiceResult<Arc<Topic>> {
        grants
            .check_describe(ResourceType::Topic, name)
            .map_err(|denied| {
                ServiceError::new(
                    denied_kind(denied, ResourceType::Topic),
                    format!("not authorized: read or write on topic {name:?} is needed"),
                )
            })?;
        self.topics.get(name).ok_or_else(|| {
            ServiceError::new(ErrorKind::UnknownTopic, format!("no topic named {name:?}"))
        })
    }

    /// Starts one offsets lookup for a caller with `grants` (its
    /// decompression budget is shared by every partition it looks up).
    pub fn offsets<'g>(&'g self, grants: &'g Grants) -> OffsetsLookup<'g> {
        OffsetsLookup {
            catalog: self,
            grants,
            budget: MAX_DECOMPRESSED_BYTES_PER_REQUEST,
        }
    }
}

/// One request's offset lookups; see [`Catalog::offsets`].
pub struct OffsetsLookup<'g> {
    catalog: &'g Catalog,
    grants: &'g Grants,
    /// Decompression left for lookups by timestamp.
    budget: u64,
}

impl OffsetsLookup<'_> {
    /// Finds the offsets `specs` ask for in `topic`, in order.
    pub fn topic(
        &mut self,
        topic: &str,
        specs: impl IntoIterator<Item = (u32, OffsetSpec)>,
    ) -> Vec<(u32, Result<FoundOffset, ErrorKind>)> {
        let allowed = self
            .grants
            .allows(ResourceType::Topic, topic, Permission::Read);
        let found = self.catalog.topics.get(topic);
        specs
            .into_iter()
            .map(|(partition, spec)| {
                let result = if !allowed {
                    Err(ErrorKind::TopicAuthorizationFailed)
                } else {
                    match &found {
                        None => Err(ErrorKind::UnknownTopic),
                        Some(t) => self.find(t, partition, spec),
                    }
                };
                (partition, result)
            })
            .collect()
    }

    fn find(
        &mut self,
        topic: &Topic,
        partition: u32,
        spec: OffsetSpec,
    ) -> Result<FoundOffset, ErrorKind> {
        let p = topic
            .partitions
            .get(partition as usize)
            .ok_or(ErrorKind::UnknownPartition)?;
        let hw = p.high_watermark();
        match spec {
            OffsetSpec::Latest => Ok(Some((hw.0, None))),
            OffsetSpec::Earliest => Ok(Some((p.log.log_start_offset().0, None))),
            OffsetSpec::Timestamp(ts) => {
                match p.log.offset_for_timestamp_within(ts, &mut self.budget) {
                    Ok(Some((o, t))) if o < hw => Ok(Some((o.0, Some(t)))),
                    Ok(_) => Ok(None),
                    Err(e) => Err(ServiceError::storage(&e, "offset for timestamp").kind),
                }
            }
        }
    }
}
