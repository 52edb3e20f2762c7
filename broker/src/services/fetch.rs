//! Fetch: a long poll over many partitions, answered with file ranges that
//! the front-end sends with `sendfile(2)` (or copies, over TLS).
//!
//! [`Fetcher::fetch`] resolves what the request names (read permission per
//! topic, `TopicAuthorizationFailed` per partition otherwise), then reads at
//! once; if that already has `min_bytes` (or `max_wait` is zero) the result
//! is [`Fetched::Ready`]. Otherwise [`LongPoll::wait`] waits: it registers
//! with every requested partition's high-watermark notifier *before* reading
//! again (so no wake-up between read and wait is lost), and returns as soon
//! as a read reaches `min_bytes`, the deadline passes, or the broker shuts
//! down. No polling loop: each extra read follows a high-watermark move.
//!
//! Size: the record bytes of a result are at most the request's `max_bytes`,
//! itself capped by the broker's `fetch_max_bytes` (the first batch always
//! goes whole, as in Kafka), and never more than the front-end's
//! `record_cap` (what its frame can carry).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::select_all;
use tokio::sync::futures::Notified;
use tokio_util::sync::CancellationToken;
use warren_protocol::api::auth::{Permission, ResourceType};
use warren_storage::{FileSlice, Offset};

use super::{ErrorKind, ServiceError};
use crate::auth::Grants;
use crate::partition::Partition;
use crate::topics::Topics;

/// The fetch service; see the module docs.
#[derive(Clone)]
pub struct Fetcher {
    topics: Arc<Topics>,
    /// `fetch_max_bytes`: most record bytes one fetch returns.
    max_bytes: u32,
    /// Cancelled when the broker shuts down: long polls answer at once.
    shutdown: CancellationToken,
}

/// One partition a fetch asks for.
#[derive(Debug, Clone, Copy)]
pub struct FetchPartition {
    pub partition: u32,
    pub fetch_offset: u64,
    pub max_bytes: u32,
}

/// The limits of one fetch.
#[derive(Debug, Clone, Copy)]
pub struct FetchLimits {
    /// Answer once this many record bytes are there.
    pub min_bytes: u64,
    /// Most record bytes in all (capped by `fetch_max_bytes`).
    pub max_bytes: u32,
    /// How long to wait for `min_bytes`.
    pub max_wait: Duration,
    /// Most record bytes the front-end's response can carry beside its own
    /// fields; a batch beyond it is left out even where `max_bytes` would let
    /// the first batch through.
    pub record_cap: u64,
}

/// One topic of a fetch and what was read of each of its partitions.
pub struct FetchTopic {
    pub name: String,
    pub partitions: Vec<FetchTarget>,
}

/// One requested partition, resolved, with its last read.
pub struct FetchTarget {
    pub partition: u32,
    log: Result<Arc<Partition>, ErrorKind>,
    fetch_offset: u64,
    max_bytes: u32,
    /// What the last read found.
    pub read: PartitionRead,
}

/// What one read of a partition found.
#[derive(Debug, Default)]
pub struct PartitionRead {
    pub error: Option<ErrorKind>,
    pub high_watermark: u64,
    pub log_start_offset: u64,
    /// Whole batches, in offset order.
    pub slices: Vec<FileSlice>,
    /// Their bytes in all.
    pub bytes: u64,
    /// The offsets they span: the records a consumer gets (without decoding
    /// them).
    pub records: u64,
}

/// A fetch and its last read.
pub struct FetchResult {
    pub topics: Vec<FetchTopic>,
    limits: FetchLimits,
    /// Record bytes of the last read.
    pub bytes: u64,
}

/// What [`Fetcher::fetch`] gives.
pub enum Fetched {
    /// Enough now (or no waiting asked for).
    Ready(FetchResult),
    /// Wait with [`LongPoll::wait`].
    Waiting(LongPoll),
}

/// A fetch waiting for records; see the module docs.
pub struct LongPoll {
    result: FetchResult,
    deadline: tokio::time::Instant,
    shutdown: CancellationToken,
}

impl Fetcher {
    /// The service over `topics`, returning at most `max_bytes` of records
    /// per fetch and answering long polls at once after `shutdown`.
    pub fn new(topics: Arc<Topics>, max_bytes: u32, shutdown: CancellationToken) -> Fetcher {
        Fetcher {
            topics,
            max_bytes,
            shutdown,
        }
    }

    /// Resolves and reads the `topics` a caller with `grants` asks for, in
    /// request order.
    pub fn fetch<P>(
        &self,
        grants: &Grants,
        topics: impl IntoIterator<Item = (String, P)>,
        mut limits: FetchLimits,
    ) -> Fetched
    where
        P: IntoIterator<Item = FetchPartition>,
    {
        limits.max_bytes = limits.max_bytes.min(self.max_bytes);
        let topics = topics
            .into_iter()
            .map(|(name, partitions)| {
                let allowed = grants.allows(ResourceType::Topic, &name, Permission::Read);
                let topic = self.topics.get(&name);
                let partitions = partitions
                    .into_iter()
                    .map(|p| FetchTarget {
                        partition: p.partition,
                        log: match &topic {
                            _ if !allowed => Err(ErrorKind::TopicAuthorizationFailed),
                            None => Err(ErrorKind::UnknownTopic),
                            Some(topic) => topic
                                .partitions
                                .get(p.partition as usize)
                                .cloned()
                                .ok_or(ErrorKind::UnknownPartition),
                        },
                        fetch_offset: p.fetch_offset,
                        max_bytes: p.max_bytes,
                        read: PartitionRead::default(),
                    })
                    .collect();
                FetchTopic { name, partitions }
            })
            .collect();
        let mut result = FetchResult {
            topics,
            limits,
            bytes: 0,
        };
        result.read();
        if result.bytes >= limits.min_bytes
            || limits.max_wait.is_zero()
            || result.partitions().next().is_none()
        {
            return Fetched::Ready(result.sent());
        }
        Fetched::Waiting(LongPoll {
            result,
            deadline: tokio::time::Instant::now() + limits.max_wait,
            shutdown: self.shutdown.clone(),
        })
    }
}

impl LongPoll {
    /// Waits until a read has `min_bytes`, the deadline passes or the broker
    /// shuts down, and returns the last read.
    pub async fn wait(self) -> FetchResult {
        let LongPoll {
            mut result,
            deadline,
            shutdown,
        } = self;
        let partitions: Vec<Arc<Partition>> = result.partitions().cloned().collect();
        loop {
            let mut woken: Vec<Pin<Box<Notified<'_>>>> =
                partitions.iter().map(|p| Box::pin(p.hw_moved())).collect();
            for n in &mut woken {
                n.as_mut().enable();
            }
            result.read();
            if result.bytes >= result.limits.min_bytes {
                return result.sent();
            }
            // Not sent: let go of its file ranges while waiting, so a segment
            // that retention or a topic delete removes meanwhile is not held
            // open (a long poll lasts up to max_wait).
            result.release_slices();
            tokio::select! {
                _ = select_all(woken) => {}
                () = tokio::time::sleep_until(deadline) => break,
                () = shutdown.cancelled() => break,
            }
        }
        result.read();
        result.sent()
    }
}

impl FetchResult {
    fn partitions(&self) -> impl Iterator<Item = &Arc<Partition>> {
        self.topics
            .iter()
            .flat_map(|t| &t.partitions)
            .filter_map(|t| t.log.as_ref().ok())
    }

    /// The read that is being returned (and so sent): adds what it carries
    /// to each partition's fetched counters.
    fn sent(self) -> FetchResult {
        for t in self.topics.iter().flat_map(|t| &t.partitions) {
            if let Ok(p) = &t.log
                && t.read.bytes > 0
            {
                p.metrics.fetched(t.read.records, t.read.bytes);
            }
        }
        self
    }

    /// Drops the file ranges of the last read (it will not be sent).
    fn release_slices(&mut self) {
        for t in self.topics.iter_mut().flat_map(|t| &mut t.partitions) {
            t.read.slices = Vec::new();
        }
    }

    /// Reads every partition within the byte limits.
    fn read(&mut self) {
        let mut remaining = self.limits.max_bytes;
        let mut total: u64 = 0;
        let cap = self.limits.record_cap;
        for t in self.topics.iter_mut().flat_map(|t| &mut t.partitions) {
            let mut read = read_partition(t, remaining, total > 0);
            if !fits(total, read.bytes, cap) {
                // Only a batch of gigabytes gets here: it would wrap the
                // frame length. Left out, as a budget that ran out.
                read.slices.clear();
                read.bytes = 0;
            }
            read.records = match (read.slices.first(), read.slices.last()) {
                (Some(first), Some(last)) => {
                    last.next_offset.0.saturating_sub(first.first_offset.0)
                }
                _ => 0,
            };
            remaining = remaining.saturating_sub(u32::try_from(read.bytes).unwrap_or(u32::MAX));
            total += read.bytes;
            t.read = read;
        }
        self.bytes = total;
    }
}

/// Whether a partition's `bytes` may join the `total` record bytes already
/// in a response capped at `cap`.
pub fn fits(total: u64, bytes: u64, cap: u64) -> bool {
    total.checked_add(bytes).is_some_and(|sum| sum <= cap)
}

/// One partition's read. Only the first partition with data may exceed
/// `remaining` (one whole batch).
fn read_partition(t: &FetchTarget, remaining: u32, have_data: bool) -> PartitionRead {
    let p = match &t.log {
        Ok(p) => p,
        Err(kind) => {
            return PartitionRead {
                error: Some(*kind),
                ..PartitionRead::default()
            };
        }
    };
    let hw = p.high_watermark();
    let log_start = p.log.log_start_offset();
    let empty = |error: Option<ErrorKind>| PartitionRead {
        error,
        high_watermark: hw.0,
        log_start_offset: log_start.0,
        ..PartitionRead::default()
    };
    let offset = Offset(t.fetch_offset);
    if offset < log_start || offset > hw {
        return empty(Some(ErrorKind::OffsetOutOfRange));
    }
    let budget = t.max_bytes.min(remaining);
    if offset == hw || (have_data && budget == 0) {
        return empty(None);
    }
    match p.log.read_to(offset, budget.max(1), hw) {
        Ok(info) => {
            let bytes: u64 = info.slices.iter().map(|s| u64::from(s.len)).sum();
            if have_data && bytes > u64::from(budget) {
                return empty(None);
            }
            PartitionRead {
                error: None,
                high_watermark: hw.0,
                log_start_offset: info.log_start_offset.0,
                slices: info.slices,
                bytes,
                records: 0,
            }
        }
        Err(e) => empty(Some(ServiceError::storage(&e, "fetch read").kind)),
    }
}
