//! Metadata (key 1): the brokers and, per topic, its partitions and leaders.
//!
//! A single broker is its own leader for every partition (node id 0); the
//! layout already carries leaders for the cluster to come.
//!
//! ```text
//! request  = topics: array<name: string>          empty = every topic
//! response = brokers: array< node_id: u32 | host: string | port: u16 >
//!            topics:  array< error_code: u16 | name: string | routing: u8 |
//!                            partitions: array< partition: u32 | leader: u32 > >
//! ```
//! A requested topic that does not exist comes back with `UNKNOWN_TOPIC`,
//! routing 0 and no partitions. `routing` is the topic's
//! [`RoutingMode`] ([`RoutingMode::wire`]: 0 hash, 1 direct, 2 topic), so a
//! producer knows whether to pick partitions itself (hash) or leave them to
//! the broker's bindings (`partition = -1`).

use bytes::{BufMut, BytesMut};

use super::bindings::RoutingMode;
use super::{ApiKey, Body, Request};
use crate::error::Result;
use crate::error_code::ErrorCode;
use crate::wire::{WireReader, put_array_len, put_string};

/// Metadata request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetadataRequest {
    /// Topics to describe; empty means all.
    pub topics: Vec<String>,
}

impl Request for MetadataRequest {
    const API_KEY: ApiKey = ApiKey::Metadata;
    type Response = MetadataResponse;
}

impl Body for MetadataRequest {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_array_len(dst, self.topics.len());
        for t in &self.topics {
            put_string(dst, t);
        }
        Ok(())
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        let n = r.array_len("topics", 2)?;
        let mut topics = Vec::with_capacity(n);
        for _ in 0..n {
            topics.push(r.string("topic")?);
        }
        Ok(MetadataRequest { topics })
    }
}

/// A broker in the metadata response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerMetadata {
    pub node_id: u32,
    pub host: String,
    pub port: u16,
}

/// A partition and its leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionMetadata {
    pub partition: u32,
    pub leader: u32,
}

/// A topic in the metadata response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    pub error_code: ErrorCode,
    pub name: String,
    /// How the topic routes batches produced with `partition = -1`
    /// ([`RoutingMode::Hash`] for an unknown topic).
    pub routing: RoutingMode,
    pub partitions: Vec<PartitionMetadata>,
}

/// Metadata response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetadataResponse {
    pub brokers: Vec<BrokerMetadata>,
    pub topics: Vec<TopicMetadata>,
}

impl Body for MetadataResponse {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_array_len(dst, self.brokers.len());
        for b in &self.brokers {
            dst.put_u32(b.node_id);
            put_string(dst, &b.host);
            dst.put_u16(b.port);
        }
        put_array_len(dst, self.topics.len());
        for t in &self.topics {
            dst.put_u16(t.error_code.0);
            put_string(dst, &t.name);
            dst.put_u8(t.routing.wire());
            put_array_len(dst, t.partitions.len());
            for p in &t.partitions {
                dst.put_u32(p.partition);
                dst.put_u32(p.leader);
            }
        }
        Ok(())
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        let n = r.array_len("brokers", 8)?;
        let mut brokers = Vec::with_capacity(n);
        for _ in 0..n {
            brokers.push(BrokerMetadata {
                node_id: r.u32("node_id")?,
                host: r.string("host")?,
                port: r.u16("port")?,
            });
        }
        let n = r.array_len("topics", 9)?;
        let mut topics = Vec::with_capacity(n);
        for _ in 0..n {
            let error_code = ErrorCode(r.u16("error_code")?);
            let name = r.string("name")?;
            let routing = RoutingMode::from_wire(r.u8("routing")?)?;
            let np = r.array_len("partitions", 8)?;
            let mut partitions = Vec::with_capacity(np);
            for _ in 0..np {
                partitions.push(PartitionMetadata {
                    partition: r.u32("partition")?,
                    leader: r.u32("leader")?,
                });
            }
            topics.push(TopicMetadata {
                error_code,
                name,
                routing,
                partitions,
            });
        }
        Ok(MetadataResponse { brokers, topics })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::tests::round_trip;

    #[test]
    fn round_trips() {
        round_trip(&MetadataRequest {
            topics: vec!["a".into(), "orders".into()],
        });
        round_trip(&MetadataResponse {
            brokers: vec![BrokerMetadata {
                node_id: 0,
                host: "127.0.0.1".into(),
                port: 7171,
            }],
            topics: vec![
                TopicMetadata {
                    error_code: ErrorCode::NONE,
                    name: "orders".into(),
                    routing: RoutingMode::Topic,
                    partitions: vec![PartitionMetadata {
                        partition: 0,
                        leader: 0,
                    }],
                },
                TopicMetadata {
                    error_code: ErrorCode::UNKNOWN_TOPIC,
                    name: "nope".into(),
                    routing: RoutingMode::Hash,
                    partitions: vec![],
                },
            ],
        });
    }
}
