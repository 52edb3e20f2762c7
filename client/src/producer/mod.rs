//! The [`Producer`]: batches records per partition and sends them to the
//! broker, pipelined, with retries and back-pressure.
//!
//! A `send` encodes the record straight into its partition's open batch and
//! returns a [`DeliveryFuture`]; the background sender ships batches when they
//! are full (`batch_bytes`) or have waited `linger`, many partitions per
//! request, up to `max_in_flight` requests on the one connection. Records are
//! delivered at least once: a batch that meets a retriable error (a lost
//! connection, `BROKER_SHUTTING_DOWN`, `REQUEST_TIMED_OUT`, `DISK_FULL`) is
//! sent again after a backoff until `delivery_timeout`, and may then be
//! appended twice if the first attempt had in fact succeeded. Within a
//! partition, records keep their order unless a retry is overtaken by a batch
//! already in flight.
//!
//! Layout: `accumulator` (batches and memory), `sender` (the background task
//! and the wire), `delivery` (per-batch completion and [`DeliveryFuture`]).
//!
//! Thread-safe: `Producer` is `Clone + Send + Sync`; clones share one
//! connection, one buffer and one sender task.

mod accumulator;
mod delivery;
mod sender;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use warren_protocol::api::ApiKey;
use warren_protocol::api::metadata::MetadataRequest;
use warren_protocol::record_batch::BATCH_HEADER_LEN;
use warren_protocol::{ErrorCode, Header};

pub use delivery::{DeliveryFuture, RecordCopy, RecordMetadata};

use self::accumulator::{
    Accumulator, AccumulatorConfig, Placement, RecordRef, TopicBatches, record_size_bound,
};
use self::sender::ProducerShared;
use crate::config::{PRODUCE_OVERHEAD_BYTES, ProducerConfig};
use crate::connection::Connector;
use crate::error::{Error, Result};

/// The apis a producer needs from the broker.
const PRODUCER_APIS: &[ApiKey] = &[ApiKey::Metadata, ApiKey::Produce];

/// A record to send with [`Producer::send_record`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerRecord {
    /// The topic.
    pub topic: String,
    /// The partition; `None` to let the topic's routing mode choose: on a
    /// `hash` topic the key's hash ([`warren_protocol::partition_for_key`])
    /// or, without a key, the topic's sticky partition; on a `direct` or
    /// `topic` topic the broker's bindings, by the key.
    pub partition: Option<u32>,
    /// The key; it picks the partition when `partition` is `None`. On a
    /// `direct` or `topic` topic it is the routing key, so it must be UTF-8.
    pub key: Option<Bytes>,
    /// `None` is a tombstone (a null value).
    pub value: Option<Bytes>,
    /// Headers, kept in order.
    pub headers: Vec<Header>,
    /// Milliseconds since the Unix epoch; `None` for the time of `send`.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record with a value and nothing else.
    pub fn new(topic: impl Into<String>, value: impl Into<Bytes>) -> Self {
        ProducerRecord {
            topic: topic.into(),
            value: Some(value.into()),
            ..Default::default()
        }
    }

    /// Sets the key.
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets the partition.
    pub fn partition(mut self, partition: u32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Adds a header.
    pub fn header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.headers.push(Header::new(key, value));
        self
    }

    /// Sets the timestamp (ms since the Unix epoch).
    pub fn timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = Some(timestamp);
        self
    }
}

/// Sends records to the broker; see the module docs.
///
/// ```no_run
/// # async fn run() -> warren_client::Result<()> {
/// use warren_client::{Producer, ProducerConfig};
/// let producer = Producer::connect(ProducerConfig::new("127.0.0.1:7171")).await?;
/// let delivery = producer.send("orders", Some(b"customer-7"), b"{\"qty\":1}").await?;
/// producer.flush().await?;
/// let meta = delivery.await?;
/// println!("partition {} offset {:?}", meta.partition, meta.offset);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Producer {
    inner: Arc<ProducerInner>,
}

/// Closes the accumulator when the last handle goes: the sender then sends
/// what is buffered and stops.
#[derive(Debug)]
struct ProducerInner {
    shared: Arc<ProducerShared>,
    /// Largest record `send` accepts: the buffer and the frame both bound it.
    max_record_bytes: usize,
}

impl Drop for ProducerInner {
    fn drop(&mut self) {
        self.shared.accumulator.close();
    }
}

/// Ends a flush even if its future is dropped.
struct FlushGuard<'a>(&'a Accumulator);

impl Drop for FlushGuard<'_> {
    fn drop(&mut self) {
        self.0.end_flush();
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Producer {
    /// Validates `config`, connects (ApiVersions included) and starts the
    /// sender task on the current tokio runtime.
    ///
    /// # Errors
    /// [`Error::Config`]; the connection's errors ([`Error::Connect`],
    /// [`Error::UnsupportedApi`], ...).
    pub async fn connect(config: ProducerConfig) -> Result<Producer> {
        config.validate()?;
        let connector = Connector::new(config.connection.clone(), PRODUCER_APIS);
        connector.get().await?;
        let accumulator = Accumulator::new(AccumulatorConfig {
            batch_bytes: config.batch_bytes,
            buffer_bytes: config.buffer_bytes,
            linger: config.linger,
            compression: config.compression,
            delivery_timeout: config.delivery_timeout,
        });
        let max_record_bytes = config.buffer_bytes.min(
            config
                .connection
                .max_frame_bytes
                .saturating_sub(PRODUCE_OVERHEAD_BYTES + BATCH_HEADER_LEN),
        );
        let shared = Arc::new(ProducerShared {
            config,
            connector,
            accumulator,
        });
        tokio::spawn(sender::run(shared.clone()));
        Ok(Producer {
            inner: Arc::new(ProducerInner {
                shared,
                max_record_bytes,
            }),
        })
    }

    /// The producer's configuration.
    pub fn config(&self) -> &ProducerConfig {
        &self.inner.shared.config
    }

    /// Sends a record with an optional key and a value, copying them into the
    /// partition's batch. On a `hash` topic the partition is the key's hash,
    /// or the sticky partition without a key. On a `direct` or `topic` topic
    /// the record is sent with `partition = -1` and the key as routing key
    /// (records are batched per key), and the broker appends it to every
    /// partition a binding of the key names; the [`RecordMetadata`] gives the
    /// first partition and offset and lists the others in `copies`.
    ///
    /// Awaiting this waits only while the producer's buffer is full (or, the
    /// first time a topic is used, for its metadata); the returned
    /// [`DeliveryFuture`] resolves once the broker has acknowledged the
    /// record. Do not await each delivery before the next send: that makes
    /// every record a round trip.
    ///
    /// # Errors
    /// [`Error::UnknownTopic`]; [`Error::MessageTooLarge`] for a record that
    /// can never fit the buffer or a frame; [`Error::Closed`] after
    /// [`close`](Self::close); [`Error::Unroutable`] for a key that is not
    /// UTF-8 on a `direct` or `topic` topic; metadata request errors. A key
    /// that matches no binding fails the delivery (the returned future) with
    /// [`Error::Unroutable`].
    pub async fn send(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: &[u8],
    ) -> Result<DeliveryFuture> {
        self.send_parts(topic, None, key, Some(value), &[], None)
            .await
    }

    /// Sends a [`ProducerRecord`]: as [`send`](Self::send), with an explicit
    /// partition, headers, a null value or a timestamp if it has them.
    ///
    /// # Errors
    /// As [`send`](Self::send), plus [`Error::Partition`] with
    /// `UNKNOWN_PARTITION` for a partition the topic does not have.
    pub async fn send_record(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        self.send_parts(
            &record.topic,
            record.partition,
            record.key.as_deref(),
            record.value.as_deref(),
            &record.headers,
            record.timestamp,
        )
        .await
    }

    async fn send_parts(
        &self,
        topic: &str,
        partition: Option<u32>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
        timestamp: Option<i64>,
    ) -> Result<DeliveryFuture> {
        let acc = &self.inner.shared.accumulator;
        if acc.is_closing() {
            return Err(Error::Closed);
        }
        let batches = match acc.topic(topic) {
            Some(t) => t,
            None => self.load_topic(topic).await?,
        };
        let count = batches.partition_count();
        let placement = match (partition, key) {
            (Some(p), _) if p < count => Placement::Fixed(p),
            (Some(p), _) => {
                return Err(Error::Partition {
                    topic: topic.to_owned(),
                    partition: p,
                    code: ErrorCode::UNKNOWN_PARTITION,
                });
            }
            // The broker's bindings decide: send the key as the routing key.
            (None, key) if batches.routing().uses_bindings() => {
                let routing_key = key.map(std::str::from_utf8).transpose().map_err(|_| {
                    Error::Unroutable {
                        topic: topic.to_owned(),
                        routing_key: None,
                        message: format!(
                            "topic {topic} routes by {} bindings and the record's key is not UTF-8, so it cannot be a routing key",
                            batches.routing()
                        ),
                    }
                })?;
                Placement::Routed(routing_key)
            }
            (None, Some(key)) => Placement::Fixed(warren_protocol::partition_for_key(key, count)),
            (None, None) => Placement::Sticky,
        };
        let size = record_size_bound(key, value, headers);
        if size > self.inner.max_record_bytes {
            return Err(Error::MessageTooLarge {
                topic: topic.to_owned(),
                partition: None,
                bytes: size,
                limit: format!(
                    "the producer takes records up to {} bytes (buffer_bytes and the frame limit)",
                    self.inner.max_record_bytes
                ),
            });
        }
        acc.reserve(size).await?;
        let timestamp = timestamp.unwrap_or_else(now_ms);
        let record = RecordRef {
            timestamp,
            key,
            value,
            headers,
        };
        Ok(acc.append(&batches, placement, record, size))
    }

    /// The number of partitions of `topic` (cached after the first lookup).
    ///
    /// # Errors
    /// [`Error::UnknownTopic`]; the Metadata request's errors.
    pub async fn partition_count(&self, topic: &str) -> Result<u32> {
        match self.inner.shared.accumulator.topic(topic) {
            Some(t) => Ok(t.partition_count()),
            None => Ok(self.load_topic(topic).await?.partition_count()),
        }
    }

    async fn load_topic(&self, topic: &str) -> Result<Arc<TopicBatches>> {
        let shared = &self.inner.shared;
        let request = MetadataRequest {
            topics: vec![topic.to_owned()],
        };
        let response = shared
            .connector
            .call(&request, std::time::Duration::ZERO, true)
            .await?;
        let meta = response
            .topics
            .into_iter()
            .find(|t| t.name == topic)
            .ok_or_else(|| Error::UnknownTopic(topic.to_owned()))?;
        match meta.error_code {
            ErrorCode::NONE => {}
            ErrorCode::UNKNOWN_TOPIC => return Err(Error::UnknownTopic(topic.to_owned())),
            code => {
                return Err(Error::Broker {
                    code,
                    message: format!("metadata for topic {topic:?}"),
                });
            }
        }
        let count = u32::try_from(meta.partitions.len()).unwrap_or(u32::MAX);
        if count == 0 {
            return Err(Error::UnknownTopic(topic.to_owned()));
        }
        Ok(shared.accumulator.add_topic(topic, count, meta.routing))
    }

    /// Sends every buffered record now (ignoring `linger`) and waits until
    /// every record sent before the call is acknowledged or has failed.
    ///
    /// # Errors
    /// The first delivery error among those records (each record's
    /// [`DeliveryFuture`] still reports its own).
    pub async fn flush(&self) -> Result<()> {
        let acc = &self.inner.shared.accumulator;
        let pending = acc.incomplete();
        if pending.is_empty() {
            return Ok(());
        }
        acc.begin_flush();
        let _guard = FlushGuard(acc);
        let mut first_error = None;
        for completion in pending {
            if let Err(e) = completion.wait().await {
                first_error.get_or_insert_with(|| e.clone());
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Stops accepting records (later and waiting sends fail with
    /// [`Error::Closed`], for every clone of this producer), sends what is
    /// buffered and waits for it like [`flush`](Self::flush).
    ///
    /// Dropping the last clone instead also sends what is buffered, in the
    /// background, without waiting.
    ///
    /// # Errors
    /// As [`flush`](Self::flush).
    pub async fn close(self) -> Result<()> {
        let acc = &self.inner.shared.accumulator;
        acc.close();
        let mut first_error = None;
        for completion in acc.incomplete() {
            if let Err(e) = completion.wait().await {
                first_error.get_or_insert_with(|| e.clone());
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests;
