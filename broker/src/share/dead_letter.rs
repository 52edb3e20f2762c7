//! Dead-lettering: records a share group rejected, or that ran out of
//! delivery attempts, are copied to the topic's `dead.letter.topic` and then
//! archived.
//!
//! For each claimed offset the record is read back from the source log and
//! appended to the dead-letter topic (partition = source partition modulo its
//! partition count) with the same timestamp, key, value and headers, plus
//! `x-origin-topic`, `x-origin-partition`, `x-origin-offset`,
//! `x-delivery-count` and `x-death-reason` (values as UTF-8 text). Records go
//! in as few batches as the dead-letter topic's `max.message.bytes` allows.
//! Source batches are read as a stream: only claimed records are kept, and
//! none of their fields beyond the dead-letter topic's `max.message.bytes`
//! (such a record is archived without a copy), so a small zstd batch of
//! huge values never sits decompressed in memory.
//! Once the appends are durable as the dead-letter topic's `durability` says
//! (an fsync for `fsync`), the offsets are archived and the new state is
//! written. A crash between the two dead-letters those records again at the
//! next attempt: at-least-once.
//!
//! Failures that may pass (the dead-letter topic does not exist yet, a full
//! disk, a failed partition) leave the records waiting, never delivered, and
//! the timer task retries after [`DEAD_LETTER_RETRY`]. Records that can never
//! be written (deleted by retention meanwhile, or a single record larger than
//! the dead-letter topic accepts) are archived with an error in the log. With
//! no `dead.letter.topic` set, records are archived with a warning.
//!
//! Authorization: a dead-letter copy lands in a topic the consumer may not be
//! allowed to write, so it needs write on the dead-letter topic, checked
//! every time with grants of the moment (they may have changed since the
//! topic was created, which needed the same permission):
//! - records rejected or released out of attempts by a ShareAck: the grants
//!   of the session that sent it;
//! - records the timer task dead-letters (a lock expiry at
//!   `max.delivery.attempts`, a retry): the grants of the user who last
//!   acquired records (ShareFetch) or acknowledged (ShareAck) on the
//!   share-partition, as they are now; so records of a consumer that dies on
//!   them without acking still go. When there is none (no fetch or ack since
//!   the broker started) and users exist, the write is refused.
//!
//! A refused write loses nothing: the records stay in the share group as
//! waiting for the dead-letter topic (`Archiving`, stored as such, never
//! delivered again), a warning names the topic, group and user, and the
//! timer retries after [`DEAD_LETTER_RETRY`], so a later grant (or an ack by
//! a user who has it) lets them through. While they wait they hold the share
//! group's window, as when the dead-letter topic is missing.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::time::Instant;
use warren_protocol::api::auth::{Permission, ResourceType};
use warren_protocol::record_batch::DEFAULT_MAX_DECOMPRESSED_BYTES;
use warren_protocol::record_stream::{ClipLimits, Clipped};
use warren_protocol::{Compression, ErrorCode, Header, Record, RecordBatch, RecordBatchBuilder};
use warren_storage::Offset;

use super::state::DeadLetter;
use super::{DEAD_LETTER_RETRY, SharePartition};
use crate::auth::Grants;
use crate::partition::Partition;
use crate::topics::Topic;

/// Bytes read from the source log per read while collecting records.
const READ_BYTES: u32 = 1 << 20;
/// Bytes a record takes in a batch beyond its key, value and headers, counted
/// generously (length, attributes, deltas, header lengths, the five headers'
/// keys).
const RECORD_OVERHEAD_BYTES: usize = 160;

/// What the blocking part did.
struct Written {
    /// Offsets that are in the dead-letter topic, or that never can be.
    archived: Vec<u64>,
    /// The dead-letter partition and the offset its appends must be durable to.
    sync: Option<(Arc<Partition>, Offset)>,
    /// Why the rest was not written (they are retried).
    error: Option<warren_storage::Error>,
    /// Records appended to the dead-letter topic (the metric's count).
    copied: u64,
}

/// Writes `claims` (claimed from `sp`'s state) to `topic`'s dead-letter topic,
/// archives what was written, and appends the new state to the metadata
/// store. Returns the store offset to make durable. `grants` must allow
/// writing to the dead-letter topic (see the module docs).
///
/// # Errors
/// The code of a failure that leaves records to retry (they are unclaimed and
/// a retry is scheduled): `TOPIC_AUTHORIZATION_FAILED` when `grants` do not
/// allow the write, a storage error's code otherwise; the state written so
/// far is still returned through the store, so the caller syncs it anyway.
pub async fn write(
    ctx: &super::ShareContext,
    sp: &Arc<SharePartition>,
    topic: &Arc<Topic>,
    claims: Vec<DeadLetter>,
    grants: &Grants,
) -> Result<Option<Offset>, ErrorCode> {
    let offsets: Vec<u64> = claims.iter().map(|c| c.offset).collect();
    let key = &sp.key;
    let refused = topic
        .config
        .share
        .dead_letter_topic
        .as_deref()
        .filter(|dlq| !grants.allows(ResourceType::Topic, dlq, Permission::Write));
    let written = match &topic.config.share.dead_letter_topic {
        Some(dlq_name) if refused.is_some() => {
            let user = match grants {
                Grants::User { name, .. } => Some(name.as_str()),
                _ => None,
            };
            tracing::warn!(
                group = %key.group, topic = %key.topic, partition = key.partition,
                dead_letter_topic = %dlq_name, user = user.unwrap_or("(none)"),
                records = claims.len(), first_offset = offsets.first().copied().unwrap_or_default(),
                retry_in = ?DEAD_LETTER_RETRY,
                "not authorized to write to the dead-letter topic: the records wait (never delivered again) and are retried"
            );
            Written {
                archived: Vec::new(),
                sync: None,
                error: None,
                copied: 0,
            }
        }
        None => {
            tracing::warn!(
                group = %key.group, topic = %key.topic, partition = key.partition,
                records = claims.len(), first_offset = offsets.first().copied().unwrap_or_default(),
                "records rejected or out of delivery attempts, and the topic has no dead.letter.topic: archived"
            );
            Written {
                archived: offsets.clone(),
                sync: None,
                error: None,
                copied: 0,
            }
        }
        Some(dlq_name) => match (
            ctx.topics.get(dlq_name),
            topic.partitions.get(key.partition as usize),
        ) {
            (Some(dlq), Some(source)) => {
                let index = key.partition as usize % dlq.partitions.len().max(1);
                match dlq.partitions.get(index) {
                    Some(target) => {
                        let (source, target) = (Arc::clone(source), Arc::clone(target));
                        let claims = claims.clone();
                        let topic_name = key.topic.clone();
                        let partition = key.partition;
                        tokio::task::spawn_blocking(move || {
                            copy(&source, &target, &topic_name, partition, &claims)
                        })
                        .await
                        .unwrap_or_else(|_| Written {
                            archived: Vec::new(),
                            sync: None,
                            error: Some(warren_storage::Error::Closed(dlq_name.clone())),
                            copied: 0,
                        })
                    }
                    None => missing(dlq_name),
                }
            }
            _ => missing(dlq_name),
        },
    };
    let mut error = written.error;
    let mut archived = written.archived;
    let mut copied = written.copied;
    if let Some((target, end)) = written.sync
        && let Err(e) = target.make_visible(end).await
    {
        // Appended but maybe not durable: write them again later (a crash
        // could otherwise lose them from both places).
        error = Some(e);
        archived.clear();
        copied = 0;
    }
    sp.dead_lettered.fetch_add(copied, Ordering::Relaxed);
    if let Some(e) = &error {
        tracing::error!(
            group = %key.group, topic = %key.topic, partition = key.partition,
            dead_letter_topic = topic.config.share.dead_letter_topic.as_deref().unwrap_or_default(),
            error = %e, retry_in = ?DEAD_LETTER_RETRY,
            "writing to the dead-letter topic failed; the records wait and are retried"
        );
    }
    // A set: `offsets` and `archived` each hold up to a window of offsets.
    let archived_set: std::collections::HashSet<u64> = archived.iter().copied().collect();
    let rest: Vec<u64> = offsets
        .iter()
        .copied()
        .filter(|o| !archived_set.contains(o))
        .collect();
    let (moved, written_state) = {
        let mut g = sp.lock();
        let mut moved = g.state.finish_dead_letters(&archived, true);
        moved |= g.state.finish_dead_letters(&rest, false);
        if !rest.is_empty() {
            g.retry_dead_letters_at = Some(Instant::now() + DEAD_LETTER_RETRY);
        }
        (moved, sp.persist(&ctx.kv, &mut g))
    };
    if moved {
        sp.changed.notify_waiters();
    }
    if !rest.is_empty() {
        ctx.groups.reschedule(sp);
    }
    let offset = written_state.map_err(|e| crate::error::storage_code(&e, "share state"))?;
    if refused.is_some() {
        return Err(ErrorCode::TOPIC_AUTHORIZATION_FAILED);
    }
    match error {
        Some(e) => Err(crate::error::storage_error_code(&e)),
        None => Ok(offset),
    }
}

fn missing(dlq_name: &str) -> Written {
    Written {
        archived: Vec::new(),
        sync: None,
        error: Some(warren_storage::Error::UnknownTopic(dlq_name.to_string())),
        copied: 0,
    }
}

/// Reads the claimed records from `source` and appends them to `target`.
/// Blocking (file reads and writes).
fn copy(
    source: &Partition,
    target: &Arc<Partition>,
    topic: &str,
    partition: u32,
    claims: &[DeadLetter],
) -> Written {
    let mut out = Written {
        archived: Vec::new(),
        sync: None,
        error: None,
        copied: 0,
    };
    let limit = target.log.config().batch_limit() as usize;
    let partition_text = partition.to_string();
    let mut builder = RecordBatchBuilder::new(Compression::None);
    // Offsets in `builder`, archived once it is appended.
    let mut pending: Vec<u64> = Vec::new();
    let mut i = 0;
    while let Some(first) = claims.get(i) {
        let batches = match source.log.read_batches(Offset(first.offset), READ_BYTES) {
            Ok(b) => b,
            Err(warren_storage::Error::OffsetOutOfRange { .. }) => {
                tracing::error!(
                    topic,
                    partition,
                    offset = first.offset,
                    "record deleted by retention before it could be dead-lettered: archived"
                );
                out.archived.push(first.offset);
                i += 1;
                continue;
            }
            Err(e) => {
                out.error = Some(e);
                break;
            }
        };
        let Some(next) = batches.last().map(|b| b.header().next_offset()) else {
            out.archived.push(first.offset);
            i += 1;
            continue;
        };
        let next = u64::try_from(next).unwrap_or(0).max(first.offset + 1);
        for batch in &batches {
            if batch.header().is_control() {
                continue;
            }
            let records = match claimed_records(batch, claims, limit) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(topic, partition, error = %e, "undecodable batch while dead-lettering: its records are archived");
                    continue;
                }
            };
            for r in records {
                let Some(r) = r.fits else {
                    tracing::error!(
                        topic, partition, offset = r.offset, dead_letter_topic = %target.topic,
                        "record too large for the dead-letter topic: archived without a copy"
                    );
                    if let Ok(offset) = u64::try_from(r.offset) {
                        out.archived.push(offset);
                    }
                    continue;
                };
                let Ok(offset) = u64::try_from(r.offset) else {
                    continue;
                };
                let Ok(at) = claims.binary_search_by_key(&offset, |c| c.offset) else {
                    continue;
                };
                let Some(claim) = claims.get(at) else {
                    continue;
                };
                let mut headers = r.headers;
                headers.extend([
                    Header::new("x-origin-topic", topic.to_string()),
                    Header::new("x-origin-partition", partition_text.clone()),
                    Header::new("x-origin-offset", offset.to_string()),
                    Header::new("x-delivery-count", claim.delivery_count.to_string()),
                    Header::new("x-death-reason", claim.reason.as_str()),
                ]);
                let size = RECORD_OVERHEAD_BYTES
                    + r.key.as_ref().map_or(0, |k| k.len())
                    + r.value.as_ref().map_or(0, |v| v.len())
                    + headers
                        .iter()
                        .map(|h| h.key.len() + h.value.as_ref().map_or(0, |v| v.len()))
                        .sum::<usize>();
                if !builder.is_empty() && builder.estimated_bytes() + size > limit {
                    let full =
                        std::mem::replace(&mut builder, RecordBatchBuilder::new(Compression::None));
                    if !append(target, full, &mut pending, &mut out) {
                        return out;
                    }
                }
                builder.append(r.timestamp, r.key.as_deref(), r.value.as_deref(), &headers);
                pending.push(offset);
            }
        }
        // Claimed offsets the batches did not hold (control records): nothing
        // to copy.
        while let Some(c) = claims.get(i) {
            if c.offset >= next {
                break;
            }
            if !pending.contains(&c.offset) && !out.archived.contains(&c.offset) {
                out.archived.push(c.offset);
            }
            i += 1;
        }
    }
    if !builder.is_empty() && out.error.is_none() {
        append(target, builder, &mut pending, &mut out);
    }
    out
}

/// A claimed record read for copying: whole when it `fits` the dead-letter
/// topic's `max.message.bytes`, else only its offset.
struct Claimed {
    offset: i64,
    fits: Option<Record>,
}

/// The records of `batch` that `claims` names, read as a stream
/// ([`RecordBatch::visit_clipped`]): unclaimed records are skipped without
/// being kept, and no field is kept beyond `limit` bytes (a record with a
/// longer one could never be written to the dead-letter topic), so a small
/// zstd batch of huge values costs at most `limit` per field, not its
/// decompressed size.
///
/// # Errors
/// A batch that does not decode.
fn claimed_records(
    batch: &RecordBatch,
    claims: &[DeadLetter],
    limit: usize,
) -> Result<Vec<Claimed>, warren_protocol::Error> {
    let clip = ClipLimits {
        max_decompressed_bytes: DEFAULT_MAX_DECOMPRESSED_BYTES,
        max_field_bytes: limit,
        max_headers: usize::MAX,
    };
    let mut out = Vec::new();
    batch.visit_clipped(&clip, |r| {
        let claimed = u64::try_from(r.offset)
            .is_ok_and(|o| claims.binary_search_by_key(&o, |c| c.offset).is_ok());
        if !claimed {
            return ControlFlow::Continue(());
        }
        let cut = r.key.as_ref().is_some_and(Clipped::is_truncated)
            || r.value.as_ref().is_some_and(Clipped::is_truncated)
            || r.headers_count > r.headers.len()
            || r.headers.iter().any(|h| {
                h.key.len() < h.key_len || h.value.as_ref().is_some_and(Clipped::is_truncated)
            });
        let fits = (!cut).then(|| Record {
            offset: r.offset,
            timestamp: r.timestamp,
            key: r.key.map(|k| k.bytes),
            value: r.value.map(|v| v.bytes),
            headers: r
                .headers
                .into_iter()
                .map(|h| Header {
                    key: h.key,
                    value: h.value.map(|v| v.bytes),
                })
                .collect(),
        });
        out.push(Claimed {
            offset: r.offset,
            fits,
        });
        ControlFlow::Continue(())
    })?;
    Ok(out)
}

/// Appends one dead-letter batch; moves its offsets to `archived` on success.
/// Returns false on a failure that stops the copy.
fn append(
    target: &Arc<Partition>,
    builder: RecordBatchBuilder,
    pending: &mut Vec<u64>,
    out: &mut Written,
) -> bool {
    let single = builder.len() == 1;
    let result = builder
        .build()
        .map_err(warren_storage::Error::InvalidBatch)
        .and_then(|batch| target.append(&batch));
    match result {
        Ok(info) => {
            out.sync = Some((Arc::clone(target), info.log_end_offset));
            out.copied += pending.len() as u64;
            out.archived.append(pending);
            true
        }
        Err(warren_storage::Error::BatchTooLarge { .. }) if single => {
            tracing::error!(
                dead_letter_topic = %target.topic, offsets = ?pending,
                "record too large for the dead-letter topic: archived without a copy"
            );
            out.archived.append(pending);
            true
        }
        Err(e) => {
            pending.clear();
            out.error = Some(e);
            false
        }
    }
}
