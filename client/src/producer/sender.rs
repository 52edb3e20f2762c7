//! The producer's background sender: drains ready batches into produce
//! requests, pipelines them on the connection, and completes, retries or fails
//! each batch from the response.
//!
//! ```text
//! loop: drain (up to max_request_bytes) ─▶ connection ─▶ in-flight slot
//!       ─▶ build batches (zstd on the blocking pool) ─▶ queue the request
//!       ─▶ spawn: wait for the response ─▶ complete / requeue each batch
//! ```
//!
//! One sender task per producer; it is the only code that takes batches out
//! of the accumulator, so batches of one partition leave in order. Requests
//! are queued on the connection by this one task, so they go on the wire in
//! that order too. A retried batch may be overtaken by a later batch of its
//! partition that was already in flight (as in Kafka without idempotence).
//!
//! The request is encoded as a list of parts (small headers between the
//! batches' own buffers): record bytes are never copied into the frame.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tracing::debug;
use warren_protocol::api::ApiKey;
use warren_protocol::api::produce::{ProducePartitionResponse, ProduceResponse, ROUTE_BY_KEY};
use warren_protocol::frame::ResponseFrame;
use warren_protocol::wire::{put_array_len, put_nullable_string, put_string};
use warren_protocol::{Compression, ErrorCode, RecordBatchBuilder};

use super::accumulator::{Accumulator, ProducerBatch};
use super::delivery::BatchDelivered;
use crate::config::{Acks, ProducerConfig, exponential};
use crate::connection::{Connection, Connector, decode_response};
use crate::error::{Error, Result};

/// What the sender task and the producer handles share.
#[derive(Debug)]
pub(crate) struct ProducerShared {
    pub config: ProducerConfig,
    pub connector: Connector,
    pub accumulator: Accumulator,
}

/// The sender task; returns once the producer is closed and every batch is
/// complete.
pub(crate) async fn run(shared: Arc<ProducerShared>) {
    let acc = &shared.accumulator;
    loop {
        let drained = acc.drain(Instant::now(), shared.config.max_request_bytes);
        if drained.batches.is_empty() {
            if acc.is_closing() && acc.is_idle() {
                break;
            }
            match drained.next_wakeup {
                Some(at) => {
                    tokio::select! {
                        () = acc.wake.notified() => {}
                        () = tokio::time::sleep_until(at) => {}
                    }
                }
                None => acc.wake.notified().await,
            }
            continue;
        }
        let conn = match shared.connector.get().await {
            Ok(conn) => conn,
            Err(e) => {
                // Not an attempt: nothing was sent. The connector backs off
                // before its next try; the batches expire at their deadline.
                debug!(error = %e, "producer cannot connect");
                for mut batch in drained.batches {
                    batch.last_error = Some(e.clone());
                    acc.requeue(batch);
                }
                continue;
            }
        };
        let permit = match conn.slot().await {
            Ok(permit) => permit,
            Err(e) => {
                for batch in drained.batches {
                    retry_or_fail(&shared, batch, e.clone());
                }
                continue;
            }
        };
        send_request(&shared, conn, permit, drained.batches).await;
    }
    debug!("producer sender stopped");
}

/// Builds the batches, queues one produce request and spawns the wait for
/// its response.
async fn send_request(
    shared: &Arc<ProducerShared>,
    conn: Arc<Connection>,
    permit: OwnedSemaphorePermit,
    batches: Vec<ProducerBatch>,
) {
    let batches = build_all(&shared.accumulator, shared.config.compression, batches).await;
    if batches.is_empty() {
        return;
    }
    let acks = shared.config.acks;
    let parts = encode_produce(acks.as_i16(), shared.config.timeout_ms(), &batches);
    let rx = match conn.send(permit, ApiKey::Produce, parts, acks != Acks::None) {
        Ok(rx) => rx,
        Err(e) => {
            for batch in batches {
                retry_or_fail(shared, batch, e.clone());
            }
            return;
        }
    };
    let shared = shared.clone();
    let timeout = shared.config.connection.request_timeout;
    tokio::spawn(async move {
        let reply = conn.wait(rx, timeout).await;
        handle_reply(&shared, batches, reply);
    });
}

/// Builds every batch not built yet (zstd on the blocking pool: compressing
/// a megabyte takes milliseconds). A batch that cannot be built fails.
async fn build_all(
    acc: &Accumulator,
    compression: Compression,
    mut batches: Vec<ProducerBatch>,
) -> Vec<ProducerBatch> {
    let builders: Vec<(usize, RecordBatchBuilder)> = batches
        .iter_mut()
        .enumerate()
        .filter_map(|(i, b)| b.builder.take().map(|builder| (i, builder)))
        .collect();
    if builders.is_empty() {
        return batches;
    }
    let build = move || -> Vec<(usize, warren_protocol::Result<Bytes>)> {
        builders
            .into_iter()
            .map(|(i, builder)| (i, builder.build()))
            .collect()
    };
    let built = match compression {
        Compression::None => build(),
        Compression::Zstd => match tokio::task::spawn_blocking(build).await {
            Ok(built) => built,
            Err(e) => {
                // The blocking pool is gone (runtime shutting down).
                let error = Error::Config(format!("cannot compress: {e}"));
                for batch in batches {
                    acc.complete(batch, Err(error.clone()));
                }
                return Vec::new();
            }
        },
    };
    let mut failed = Vec::new();
    for (i, result) in built {
        let Some(batch) = batches.get_mut(i) else {
            continue;
        };
        match result {
            Ok(bytes) => batch.built = Some(bytes),
            Err(e) => failed.push((i, Error::from(e))),
        }
    }
    // Remove failed batches from the back so earlier indexes stay valid.
    for (i, error) in failed.into_iter().rev() {
        if i < batches.len() {
            let batch = batches.remove(i);
            acc.complete(batch, Err(error));
        }
    }
    batches
}

/// Encodes a produce request for `batches` (grouped by topic, as `drain`
/// leaves them) as parts: the batches' own buffers with small headers
/// between them.
pub(crate) fn encode_produce(acks: i16, timeout_ms: u32, batches: &[ProducerBatch]) -> Vec<Bytes> {
    let mut parts = Vec::with_capacity(batches.len() * 2 + 1);
    let mut head = BytesMut::with_capacity(256);
    head.put_i16(acks);
    head.put_u32(timeout_ms);
    let same_topic = |a: &ProducerBatch, b: &ProducerBatch| a.topic.name == b.topic.name;
    put_array_len(&mut head, batches.chunk_by(same_topic).count());
    for group in batches.chunk_by(same_topic) {
        let Some(first) = group.first() else {
            continue;
        };
        put_string(&mut head, &first.topic.name);
        put_array_len(&mut head, group.len());
        for batch in group {
            let records = batch.built.clone().unwrap_or_default();
            match batch.lane.partition() {
                Some(p) => head.put_i32(p as i32),
                None => head.put_i32(ROUTE_BY_KEY),
            }
            put_nullable_string(&mut head, batch.lane.routing_key());
            head.put_u32(records.len() as u32);
            parts.push(head.split().freeze());
            parts.push(records);
        }
    }
    if !head.is_empty() {
        parts.push(head.freeze());
    }
    parts
}

/// A failed attempt: retriable errors put the batch back (the accumulator
/// expires it at its deadline), others fail it.
fn retry_or_fail(shared: &ProducerShared, mut batch: ProducerBatch, error: Error) {
    batch.attempts = batch.attempts.saturating_add(1);
    if error.is_retriable() {
        let wait = exponential(
            shared.config.retry_backoff,
            shared.config.retry_backoff_max,
            batch.attempts,
        );
        debug!(
            topic = %batch.topic.name,
            lane = ?batch.lane,
            attempts = batch.attempts,
            ?wait,
            %error,
            "retrying batch"
        );
        batch.retry_at = Some(Instant::now() + wait);
        batch.last_error = Some(error);
        shared.accumulator.requeue(batch);
    } else {
        shared.accumulator.complete(batch, Err(error));
    }
}

fn handle_reply(
    shared: &ProducerShared,
    batches: Vec<ProducerBatch>,
    reply: Result<Option<ResponseFrame>>,
) {
    let acc = &shared.accumulator;
    let response = match reply {
        Ok(None) => {
            // acks = 0: written is all we will ever know.
            for batch in batches {
                // A routed batch's partitions are the broker's to know.
                let partition = batch.lane.partition().unwrap_or(0);
                acc.complete(batch, Ok(BatchDelivered::single(partition, None)));
            }
            return;
        }
        Ok(Some(frame)) => decode_response::<ProduceResponse>(frame),
        Err(e) => Err(e),
    };
    let response = match response {
        Ok(r) => r,
        Err(e) => {
            for batch in batches {
                retry_or_fail(shared, batch, e.clone());
            }
            return;
        }
    };
    let mut entries = response
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.topic.as_str(), p)));
    for batch in batches {
        let entry = entries.next().filter(|(topic, e)| {
            *topic == &*batch.topic.name
                && batch
                    .lane
                    .partition()
                    .is_none_or(|p| e.partition == p as i32)
        });
        let Some((_, entry)) = entry else {
            let error = Error::from(warren_protocol::Error::InvalidField {
                field: "produce response entries (do not match the request)",
                value: batch.lane.partition().map_or(-1, i64::from),
            });
            acc.complete(batch, Err(error));
            continue;
        };
        // The partition the entry names: the batch's own, or for a routed
        // batch the first the broker wrote (or the one that failed).
        let partition = batch
            .lane
            .partition()
            .or_else(|| u32::try_from(entry.partition).ok());
        match entry.error_code {
            ErrorCode::NONE => match delivered(entry, partition) {
                Ok(d) => acc.complete(batch, Ok(d)),
                Err(error) => acc.complete(batch, Err(error)),
            },
            ErrorCode::MESSAGE_TOO_LARGE => {
                let error = Error::MessageTooLarge {
                    topic: batch.topic.name.to_string(),
                    partition,
                    bytes: batch.size_bytes(),
                    limit: "the topic's max.message.bytes".into(),
                };
                acc.complete(batch, Err(error));
            }
            ErrorCode::UNROUTABLE => {
                let error = Error::Unroutable {
                    topic: batch.topic.name.to_string(),
                    routing_key: batch.lane.routing_key().map(str::to_owned),
                    message: entry.error_message.clone().unwrap_or_else(|| {
                        format!(
                            "no binding of topic {} matches the routing key",
                            batch.topic.name
                        )
                    }),
                };
                acc.complete(batch, Err(error));
            }
            code => {
                if let Some(message) = &entry.error_message {
                    debug!(topic = %batch.topic.name, %code, message, "produce entry failed");
                }
                let error = match partition {
                    Some(p) => Error::from_partition_code(&batch.topic.name, p, code),
                    None => Error::Broker {
                        code,
                        message: entry
                            .error_message
                            .clone()
                            .unwrap_or_else(|| format!("producing to {}", batch.topic.name)),
                    },
                };
                retry_or_fail(shared, batch, error);
            }
        }
    }
}

/// A successful entry as the batch's delivery: its partition, offsets and
/// copies, checked (an offset below zero is a protocol error).
fn delivered(entry: &ProducePartitionResponse, partition: Option<u32>) -> Result<BatchDelivered> {
    let bad = |field, value| Error::from(warren_protocol::Error::InvalidField { field, value });
    let partition =
        partition.ok_or_else(|| bad("produce response partition", i64::from(entry.partition)))?;
    let base_offset = u64::try_from(entry.base_offset)
        .map_err(|_| bad("produce response base_offset", entry.base_offset))?;
    let copies = entry
        .more
        .iter()
        .map(|c| {
            u64::try_from(c.base_offset)
                .map(|base| (c.partition, base))
                .map_err(|_| bad("produce response base_offset", c.base_offset))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(BatchDelivered {
        partition,
        base_offset: Some(base_offset),
        copies,
        alternate_topic: entry.alternate_topic.as_deref().map(Arc::from),
    })
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
    use std::time::Duration;

    use super::*;
    use crate::producer::accumulator::{
        AccumulatorConfig, Placement, RecordRef, record_size_bound,
    };
    use warren_protocol::RecordBatch;
    use warren_protocol::api::bindings::RoutingMode;
    use warren_protocol::api::produce::ProduceRequest;

    #[tokio::test]
    async fn produce_requests_encode_as_the_protocol_decodes_them() {
        let acc = Accumulator::new(AccumulatorConfig {
            batch_bytes: 1 << 20,
            buffer_bytes: 1 << 20,
            linger: Duration::ZERO,
            compression: Compression::None,
            delivery_timeout: Duration::from_secs(30),
        });
        let a = acc.add_topic("alpha", 3, RoutingMode::Hash);
        let b = acc.add_topic("beta", 1, RoutingMode::Hash);
        let g = acc.add_topic("gamma", 2, RoutingMode::Direct);
        for (topic, placement, v) in [
            (&a, Placement::Fixed(2), "x"),
            (&b, Placement::Fixed(0), "y"),
            (&a, Placement::Fixed(0), "z"),
            (&g, Placement::Routed(Some("eu")), "r1"),
            (&g, Placement::Routed(None), "r2"),
            (&g, Placement::Routed(Some("eu")), "r3"),
        ] {
            let size = record_size_bound(None, Some(v.as_bytes()), &[]);
            acc.reserve(size).await.unwrap();
            let record = RecordRef {
                timestamp: 5,
                key: None,
                value: Some(v.as_bytes()),
                headers: &[],
            };
            drop(acc.append(topic, placement, record, size));
        }
        let drained = acc.drain(Instant::now() + Duration::from_secs(1), usize::MAX);
        let batches = build_all(&acc, Compression::None, drained.batches).await;
        let parts = encode_produce(-1, 1234, &batches);
        let body: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
        let req: ProduceRequest = warren_protocol::api::decode(Bytes::from(body)).unwrap();
        assert_eq!(req.acks, -1);
        assert_eq!(req.timeout_ms, 1234);
        /// Per entry: partition, routing key, record count.
        type Entry = (i32, Option<String>, usize);
        let layout: Vec<(String, Vec<Entry>)> = req
            .topics
            .iter()
            .map(|t| {
                (
                    t.topic.clone(),
                    t.partitions
                        .iter()
                        .map(|p| {
                            let records = RecordBatch::new(p.records.clone()).unwrap();
                            let count = records.records().unwrap().len();
                            (p.partition, p.routing_key.clone(), count)
                        })
                        .collect(),
                )
            })
            .collect();
        // Routed records go with partition -1 and their key, one batch per key.
        let mut gamma = layout[2].1.clone();
        gamma.sort();
        assert_eq!(
            layout[..2],
            [
                ("alpha".to_string(), vec![(2, None, 1), (0, None, 1)]),
                ("beta".to_string(), vec![(0, None, 1)]),
            ]
        );
        assert_eq!(layout[2].0, "gamma");
        assert_eq!(gamma, [(-1, None, 1), (-1, Some("eu".to_string()), 2)]);
        let batch = RecordBatch::new(req.topics[0].partitions[0].records.clone()).unwrap();
        batch.verify_crc().unwrap();
        assert_eq!(
            batch.records().unwrap()[0].value.as_deref(),
            Some(&b"x"[..])
        );
    }
}
