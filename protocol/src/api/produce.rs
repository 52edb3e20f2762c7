//! Produce (key 6): append record batches to partitions.
//!
//! ```text
//! request  = acks: i16 | timeout_ms: u32 |
//!            topics: array< topic: string |
//!                partitions: array< partition: i32 | routing_key: nullable string |
//!                                   records: bytes > >
//! response = topics: array< topic: string |
//!                partitions: array< partition: i32 | error_code: u16 | base_offset: i64 |
//!                                   more: array< partition: u32 | base_offset: i64 > |
//!                                   alternate_topic: nullable string |
//!                                   error_message: nullable string > >
//! ```
//!
//! - `acks`: `0` = no response at all (the broker sends nothing back for this
//!   request; the client does not wait), `1` = answered once appended to the page
//!   cache, `-1` = answered once durable as the topic's durability mode says
//!   (after the shared fsync for `fsync`), on every partition the batch went to.
//! - `records` holds exactly one RecordBatch (magic 2) with a valid CRC; its
//!   `base_offset` is ignored and assigned by the broker. A client with several
//!   batches for one partition sends several entries; entries are appended in
//!   request order.
//! - `partition = -1` asks the broker to route by `routing_key`, by the topic's
//!   [`RoutingMode`](super::bindings::RoutingMode):
//!   - `hash`: [`partition_for_key`](crate::partition_for_key) of the key's
//!     bytes; with a null `routing_key`, round-robin;
//!   - `direct` / `topic`: every partition bound to the key (exact match, or a
//!     matching pattern), each getting the same batch bytes. A null key or no
//!     match sends the batch to the topic's alternate topic, routed by that
//!     topic's own mode with the same key (no further hop), or, without one,
//!     fails the entry with `UNROUTABLE`.
//!
//!   Any other `partition` is used as is, whatever the mode; `routing_key` is
//!   then ignored and may be null.
//! - The response has one entry per request entry, in the same order, with the
//!   first partition the batch went to (`-1` if it went nowhere), its error
//!   code, and the offset assigned to its first record there (`-1` on error).
//!   `more` lists the other partitions a routed batch was appended to (empty
//!   otherwise); `alternate_topic` is set when the batch went to the alternate
//!   topic instead (the partitions are then that topic's); `error_message` may
//!   explain an error (null on success).
//! - A routed batch is appended to its partitions in turn: if one append fails,
//!   the entry carries that error with `partition` = the one that failed,
//!   `base_offset = -1` and `more` empty; the copies already appended stay
//!   (`error_message` names them), and a retry may duplicate them
//!   (at-least-once).

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducePartitionResponse {
    /// The (first) partition written (`-1` when the batch went nowhere).
    pub partition: i32,
    pub error_code: ErrorCode,
    /// Offset of the batch's first record in `partition` (`-1` on error).
    pub base_offset: i64,
    /// The other partitions a routed batch was appended to, in partition
    /// order; empty unless bindings matched several partitions.
    pub more: Vec<ProduceCopy>,
    /// Set when the batch matched no binding and went to the topic's
    /// alternate topic: `partition` and `more` are then that topic's.
    pub alternate_topic: Option<String>,
    /// What went wrong, in words, when `error_code` is not `NONE` (may be null).
    pub error_message: Option<String>,
}

impl ProducePartitionResponse {
    /// A result with no copies, no alternate topic and no message.
    pub fn new(partition: i32, error_code: ErrorCode, base_offset: i64) -> Self {
        ProducePartitionResponse {
            partition,
            error_code,
            base_offset,
            more: Vec::new(),
            alternate_topic: None,
            error_message: None,
        }
    }
}

/// A further partition a routed batch was appended to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProduceCopy {
    pub partition: u32,
    /// Offset of the batch's first record in that partition.
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
                put_array(dst, &p.more, |dst, c| {
                    dst.put_u32(c.partition);
                    dst.put_i64(c.base_offset);
                    Ok(())
                })?;
                put_nullable_string(dst, p.alternate_topic.as_deref());
                put_nullable_string(dst, p.error_message.as_deref());
                Ok(())
            })
        })
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        Ok(ProduceResponse {
            topics: r.array("topics", 6, |r| {
                Ok(ProduceTopicResponse {
                    topic: r.string("topic")?,
                    partitions: r.array("partitions", 22, |r| {
                        Ok(ProducePartitionResponse {
                            partition: r.i32("partition")?,
                            error_code: ErrorCode(r.u16("error_code")?),
                            base_offset: r.i64("base_offset")?,
                            more: r.array("more", 12, |r| {
                                Ok(ProduceCopy {
                                    partition: r.u32("partition")?,
                                    base_offset: r.i64("base_offset")?,
                                })
                            })?,
                            alternate_topic: r.nullable_string("alternate_topic")?,
                            error_message: r.nullable_string("error_message")?,
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
                partitions: vec![
                    ProducePartitionResponse::new(3, ErrorCode::DISK_FULL, -1),
                    ProducePartitionResponse {
                        partition: 1,
                        error_code: ErrorCode::NONE,
                        base_offset: 7,
                        more: vec![ProduceCopy {
                            partition: 4,
                            base_offset: 99,
                        }],
                        alternate_topic: Some("unrouted".into()),
                        error_message: None,
                    },
                    ProducePartitionResponse {
                        error_message: Some("no binding matches".into()),
                        ..ProducePartitionResponse::new(-1, ErrorCode::UNROUTABLE, -1)
                    },
                ],
            }],
        });
    }
}
