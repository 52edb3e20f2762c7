//! Produce (key 6): append record batches to partitions.
//!
//! ```text
//! request  = acks: i16 | timeout_ms: u32 |
//!            topics: array< topic: string |
//!                partitions: array< partition: i32 | routing_key: nullable string |
//!                                   records: bytes > >
//! response = topics: array< topic: string |
//!                partitions: array< partition: i32 | error_code: u16 | base_offset: i64 > >
//! ```
//!
//! - `acks`: `0` = no response at all (the broker sends nothing back for this
//!   request; the client does not wait), `1` = answered once appended to the page
//!   cache, `-1` = answered once durable as the topic's durability mode says
//!   (after the shared fsync for `fsync`).
//! - `records` holds exactly one RecordBatch (magic 2) with a valid CRC; its
//!   `base_offset` is ignored and assigned by the broker. A client with several
//!   batches for one partition sends several entries; entries are appended in
//!   request order.
//! - `partition = -1` asks the broker to route by `routing_key` (hash mode:
//!   [`partition_for_key`](crate::partition_for_key) of the key's bytes);
//!   with a null `routing_key` the broker places the batch round-robin;
//!   otherwise `routing_key` is ignored and may be null.
//! - The response has one entry per request entry, in the same order, with the
//!   partition the batch went to (`-1` if routing failed), its error code, and
//!   the offset assigned to its first record (`-1` on error).

use bytes::{BufMut, Bytes, BytesMut};

use super::{ApiKey, Body, Request};
use crate::error::Result;
use crate::error_code::ErrorCode;
use crate::wire::{WireReader, put_array, put_bytes, put_nullable_string, put_string};

/// `partition` value asking the broker to route by routing key.
pub const ROUTE_BY_KEY: i32 = -1;

/// Produce request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProduceRequest {
    /// 0, 1 or -1; see the module docs.
    pub acks: i16,
    /// How long the broker may wait for durability before answering
    /// `REQUEST_TIMED_OUT`.
    pub timeout_ms: u32,
    pub topics: Vec<ProduceTopic>,
}

/// One topic's entries in a produce request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProduceTopic {
    pub topic: String,
    pub partitions: Vec<ProducePartition>,
}

/// One batch for one partition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProducePartition {
    /// Target partition, or [`ROUTE_BY_KEY`].
    pub partition: i32,
    pub routing_key: Option<String>,
    /// One whole RecordBatch (a slice of the request frame: never copied).
    pub records: Bytes,
}

impl ProduceRequest {
    /// Bytes of record data in the request.
    pub fn record_bytes(&self) -> usize {
        self.topics
            .iter()
            .flat_map(|t| &t.partitions)
            .map(|p| p.records.len())
            .sum()
    }
}

impl Request for ProduceRequest {
    const API_KEY: ApiKey = ApiKey::Produce;
    type Response = ProduceResponse;
}

impl Body for ProduceRequest {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        dst.reserve(self.record_bytes() + 64);
        dst.put_i16(self.acks);
        dst.put_u32(self.timeout_ms);
        put_array(dst, &self.topics, |dst, t| {
            put_string(dst, &t.topic);
            put_array(dst, &t.partitions, |dst, p| {
                dst.put_i32(p.partition);
                put_nullable_string(dst, p.routing_key.as_deref());
                put_bytes(dst, &p.records)
            })
        })
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        Ok(ProduceRequest {
            acks: r.i16("acks")?,
            timeout_ms: r.u32("timeout_ms")?,
            topics: r.array("topics", 6, |r| {
                Ok(ProduceTopic {
                    topic: r.string("topic")?,
                    partitions: r.array("partitions", 10, |r| {
                        Ok(ProducePartition {
                            partition: r.i32("partition")?,
                            routing_key: r.nullable_string("routing_key")?,
                            records: r.bytes("records")?,
                        })
                    })?,
                })
            })?,
        })
    }
}

/// Produce response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProduceResponse {
    pub topics: Vec<ProduceTopicResponse>,
}

/// One topic's results, entries in request order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProduceTopicResponse {
    pub topic: String,
    pub partitions: Vec<ProducePartitionResponse>,
}

/// The result for one request entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducePartitionResponse {
    /// The partition written (`-1` when routing failed).
    pub partition: i32,
    pub error_code: ErrorCode,
    /// Offset of the batch's first record (`-1` on error).
    pub base_offset: i64,
}

impl Body for ProduceResponse {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_array(dst, &self.topics, |dst, t| {
            put_string(dst, &t.topic);
            put_array(dst, &t.partitions, |dst, p| {
                dst.put_i32(p.partition);
                dst.put_u16(p.error_code.0);
                dst.put_i64(p.base_offset);
                Ok(())
            })
        })
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        Ok(ProduceResponse {
            topics: r.array("topics", 6, |r| {
                Ok(ProduceTopicResponse {
                    topic: r.string("topic")?,
                    partitions: r.array("partitions", 14, |r| {
                        Ok(ProducePartitionResponse {
                            partition: r.i32("partition")?,
                            error_code: ErrorCode(r.u16("error_code")?),
                            base_offset: r.i64("base_offset")?,
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

    #[test]
    fn round_trips() {
        round_trip(&ProduceRequest {
            acks: -1,
            timeout_ms: 30_000,
            topics: vec![ProduceTopic {
                topic: "orders".into(),
                partitions: vec![
                    ProducePartition {
                        partition: 3,
                        routing_key: None,
                        records: Bytes::from_static(b"batch bytes"),
                    },
                    ProducePartition {
                        partition: ROUTE_BY_KEY,
                        routing_key: Some("eu.paris".into()),
                        records: Bytes::from_static(b"more"),
                    },
                ],
            }],
        });
        round_trip(&ProduceResponse {
            topics: vec![ProduceTopicResponse {
                topic: "orders".into(),
                partitions: vec![ProducePartitionResponse {
                    partition: 3,
                    error_code: ErrorCode::DISK_FULL,
                    base_offset: -1,
                }],
            }],
        });
    }
}
