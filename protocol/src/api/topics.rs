//! Topic administration: CreateTopic (key 2), DeleteTopic (3), DescribeTopic (4)
//! and ListTopics (5).
//!
//! Failures (unknown topic, name taken, bad config) come back as the response
//! header's error code with an [`ErrorBody`](super::ErrorBody).
//!
//! ```text
//! CreateTopic   request  = name: string | partitions: u32 |
//!                          configs: array< key: string | value: string >
//!               response = (empty)
//! DeleteTopic   request  = name: string
//!               response = (empty)
//! DescribeTopic request  = name: string
//!               response = name: string | configs: array< key: string | value: string > |
//!                          partitions: array< partition: u32 | log_start_offset: u64 |
//!                              log_end_offset: u64 | high_watermark: u64 |
//!                              size_bytes: u64 | segments: u32 > |
//!                          bindings: array< key: string | partitions: array<u32> >
//! ListTopics    request  = (empty)
//!               response = topics: array< name: string | partitions: u32 >
//! ```
//! Config keys (all optional; unknown keys are `INVALID_CONFIG`): `durability`
//! (`fsync`, `none`, `interval:<ms>`), `retention.bytes`, `retention.ms` (`-1` =
//! unlimited), `segment.bytes`, `segment.ms`, `max.message.bytes`, `routing`
//! (`hash`, `direct`, `topic`; see [`RoutingMode`](super::bindings::RoutingMode)),
//! `alternate.topic` (a topic name, `""` = none; only with `direct` or `topic`).
//!
//! DescribeTopic's `bindings` lists a `direct` or `topic` topic's bindings, one
//! entry per key (sorted by key, bytewise) with its partitions (ascending);
//! empty for a `hash` topic.

use bytes::{BufMut, BytesMut};

use super::{ApiKey, Body, Request, empty_body};
use crate::error::Result;
use crate::wire::{WireReader, put_array, put_array_len, put_string};

fn put_configs(dst: &mut BytesMut, configs: &[(String, String)]) {
    put_array_len(dst, configs.len());
    for (k, v) in configs {
        put_string(dst, k);
        put_string(dst, v);
    }
}

fn read_configs(r: &mut WireReader) -> Result<Vec<(String, String)>> {
    let n = r.array_len("configs", 4)?;
    let mut configs = Vec::with_capacity(n);
    for _ in 0..n {
        configs.push((r.string("config key")?, r.string("config value")?));
    }
    Ok(configs)
}

/// CreateTopic request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreateTopicRequest {
    pub name: String,
    pub partitions: u32,
    /// `(key, value)` pairs; see the module docs for the keys.
    pub configs: Vec<(String, String)>,
}

impl Request for CreateTopicRequest {
    const API_KEY: ApiKey = ApiKey::CreateTopic;
    type Response = EmptyResponse;
}

impl Body for CreateTopicRequest {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_string(dst, &self.name);
        dst.put_u32(self.partitions);
        put_configs(dst, &self.configs);
        Ok(())
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        Ok(CreateTopicRequest {
            name: r.string("name")?,
            partitions: r.u32("partitions")?,
            configs: read_configs(r)?,
        })
    }
}

/// A response with no fields (success is the header's `NONE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EmptyResponse;

empty_body!(EmptyResponse);

/// DeleteTopic request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeleteTopicRequest {
    pub name: String,
}

impl Request for DeleteTopicRequest {
    const API_KEY: ApiKey = ApiKey::DeleteTopic;
    type Response = EmptyResponse;
}

impl Body for DeleteTopicRequest {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_string(dst, &self.name);
        Ok(())
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        Ok(DeleteTopicRequest {
            name: r.string("name")?,
        })
    }
}

/// DescribeTopic request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DescribeTopicRequest {
    pub name: String,
}

impl Request for DescribeTopicRequest {
    const API_KEY: ApiKey = ApiKey::DescribeTopic;
    type Response = DescribeTopicResponse;
}

impl Body for DescribeTopicRequest {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_string(dst, &self.name);
        Ok(())
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        Ok(DescribeTopicRequest {
            name: r.string("name")?,
        })
    }
}

/// One partition's state in a DescribeTopic response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PartitionDescription {
    pub partition: u32,
    pub log_start_offset: u64,
    pub log_end_offset: u64,
    /// The last offset consumers can read, plus one (durable offset under
    /// `fsync`, log end otherwise).
    pub high_watermark: u64,
    pub size_bytes: u64,
    pub segments: u32,
}

/// One binding key of a topic and the partitions it is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BindingDescription {
    /// The routing key (`direct`) or pattern (`topic`).
    pub key: String,
    /// Ascending.
    pub partitions: Vec<u32>,
}

/// DescribeTopic response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DescribeTopicResponse {
    pub name: String,
    /// Every config key with its effective value.
    pub configs: Vec<(String, String)>,
    pub partitions: Vec<PartitionDescription>,
    /// The topic's bindings, sorted by key; empty for a `hash` topic.
    pub bindings: Vec<BindingDescription>,
}

impl Body for DescribeTopicResponse {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_string(dst, &self.name);
        put_configs(dst, &self.configs);
        put_array_len(dst, self.partitions.len());
        for p in &self.partitions {
            dst.put_u32(p.partition);
            dst.put_u64(p.log_start_offset);
            dst.put_u64(p.log_end_offset);
            dst.put_u64(p.high_watermark);
            dst.put_u64(p.size_bytes);
            dst.put_u32(p.segments);
        }
        put_array(dst, &self.bindings, |dst, b| {
            put_string(dst, &b.key);
            put_array(dst, &b.partitions, |dst, p| {
                dst.put_u32(*p);
                Ok(())
            })
        })
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        let name = r.string("name")?;
        let configs = read_configs(r)?;
        let n = r.array_len("partitions", 40)?;
        let mut partitions = Vec::with_capacity(n);
        for _ in 0..n {
            partitions.push(PartitionDescription {
                partition: r.u32("partition")?,
                log_start_offset: r.u64("log_start_offset")?,
                log_end_offset: r.u64("log_end_offset")?,
                high_watermark: r.u64("high_watermark")?,
                size_bytes: r.u64("size_bytes")?,
                segments: r.u32("segments")?,
            });
        }
        let bindings = r.array("bindings", 6, |r| {
            Ok(BindingDescription {
                key: r.string("binding key")?,
                partitions: r.array("bound partitions", 4, |r| r.u32("partition"))?,
            })
        })?;
        Ok(DescribeTopicResponse {
            name,
            configs,
            partitions,
            bindings,
        })
    }
}

/// ListTopics request: no fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListTopicsRequest;

empty_body!(ListTopicsRequest);

impl Request for ListTopicsRequest {
    const API_KEY: ApiKey = ApiKey::ListTopics;
    type Response = ListTopicsResponse;
}

/// A topic in a ListTopics response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicListing {
    pub name: String,
    pub partitions: u32,
}

/// ListTopics response, sorted by name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListTopicsResponse {
    pub topics: Vec<TopicListing>,
}

impl Body for ListTopicsResponse {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_array_len(dst, self.topics.len());
        for t in &self.topics {
            put_string(dst, &t.name);
            dst.put_u32(t.partitions);
        }
        Ok(())
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        let n = r.array_len("topics", 6)?;
        let mut topics = Vec::with_capacity(n);
        for _ in 0..n {
            topics.push(TopicListing {
                name: r.string("name")?,
                partitions: r.u32("partitions")?,
            });
        }
        Ok(ListTopicsResponse { topics })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::tests::round_trip;

    #[test]
    fn round_trips() {
        round_trip(&CreateTopicRequest {
            name: "orders".into(),
            partitions: 4,
            configs: vec![("durability".into(), "none".into())],
        });
        round_trip(&DeleteTopicRequest {
            name: "orders".into(),
        });
        round_trip(&DescribeTopicRequest {
            name: "orders".into(),
        });
        round_trip(&DescribeTopicResponse {
            name: "orders".into(),
            configs: vec![("retention.ms".into(), "-1".into())],
            partitions: vec![PartitionDescription {
                partition: 1,
                log_start_offset: 2,
                log_end_offset: 30,
                high_watermark: 29,
                size_bytes: 4096,
                segments: 1,
            }],
            bindings: vec![
                BindingDescription {
                    key: "#".into(),
                    partitions: vec![0],
                },
                BindingDescription {
                    key: String::new(),
                    partitions: vec![1, 2],
                },
            ],
        });
        round_trip(&ListTopicsResponse {
            topics: vec![TopicListing {
                name: "a".into(),
                partitions: 3,
            }],
        });
    }
}
