//! One share-partition's state: which offsets of a partition a share group has
//! done, which are locked for a member, and how often each was delivered
//! (Kafka's KIP-932 `SharePartition`, without its batching of states).
//!
//! ```text
//!   done (acknowledged or archived)   window: one Entry per offset        never delivered
//! ─────────────────────────────────┬──────────────────────────────────┬──────────────────▶ offset
//!                          start_offset (SPSO)                 end_offset (SPEO)
//! ```
//!
//! Invariants, kept by every method:
//! - every offset below `start_offset` is done; the first entry of the window is
//!   not done (the start advances over a done prefix at once);
//! - every entry in the window has been delivered at least once (an offset
//!   enters the window only by being acquired), so its delivery count is >= 1;
//! - the window holds at most [`MAX_IN_FLIGHT_RECORDS`] entries, which bounds the
//!   memory of a share-partition (about 40 bytes an entry, 80 KiB at most) and
//!   the size of its encoding;
//! - delivery counts never go down: one more per acquisition.
//!
//! States: `Available` (may be acquired), `Acquired` by a member until a
//! deadline, `Acknowledged` (done), `Archived` (done: dead-lettered or dropped),
//! and `Archiving` (must go to the dead-letter topic first; never delivered or
//! acknowledged again; `claimed` while a writer works on it).
//!
//! # Encoding
//! The durable form, the value of the share-partition's key in the broker's
//! metadata store. Acquired entries are written as Available (a lock does not
//! survive a restart) with their delivery count; everything else as it is. All
//! integers big-endian; the store's batches carry the CRC.
//! ```text
//! version       u8    = 1
//! start_offset  u64   SPSO: every offset below is done
//! range_count   u32
//! ranges        range_count times, covering the window from start_offset on,
//!               back to back (end_offset = start_offset + sum of lengths):
//!   state          u8    0 available, 1 acknowledged, 2 archived,
//!                        3 archiving (rejected), 4 archiving (max-delivery-attempts)
//!   delivery_count u16
//!   length         u32   offsets in the range, >= 1
//! ```
//! Adjacent entries with the same state and count share a range, so a window
//! of records delivered once and not yet acknowledged is one range. Decoding
//! checks the version, every length (the window may not exceed
//! [`MAX_IN_FLIGHT_RECORDS`]) and state byte, and refuses trailing bytes: a
//! malformed value is a [`CorruptState`] error, never a panic.
//!
//! Not thread-safe by itself: the broker keeps it behind its share-partition's
//! mutex.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use tokio::time::Instant;
use warren_protocol::api::share::{AckKind, AcquiredRecords};

/// Most offsets a share-partition's window may hold (acquired, released or
/// acknowledged but behind an unacknowledged one): Kafka's
/// `group.share.partition.max.record.locks` upper default. Not configurable.
/// Acquisition stops at `start_offset + MAX_IN_FLIGHT_RECORDS` until the oldest
/// records are done.
pub const MAX_IN_FLIGHT_RECORDS: u64 = 2000;

/// The encoding's version byte.
const VERSION: u8 = 1;
/// version + start_offset + range_count.
const HEADER_BYTES: usize = 1 + 8 + 4;
/// state + delivery_count + length.
const RANGE_BYTES: usize = 1 + 2 + 4;

/// Why a record goes to the dead-letter topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeathReason {
    /// A consumer rejected it.
    Rejected,
    /// Released or expired after `max.delivery.attempts` deliveries.
    MaxDeliveryAttempts,
}

impl DeathReason {
    /// The `x-death-reason` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            DeathReason::Rejected => "rejected",
            DeathReason::MaxDeliveryAttempts => "max-delivery-attempts",
        }
    }
}

/// The state of one offset in the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordState {
    /// May be acquired.
    Available,
    /// Locked for `member` until `deadline`.
    Acquired { member: Arc<str>, deadline: Instant },
    /// Done.
    Acknowledged,
    /// Done without being acknowledged (dead-lettered, or dropped).
    Archived,
    /// To be written to the dead-letter topic, then archived. `claimed` while
    /// a writer has it (in memory only).
    Archiving { reason: DeathReason, claimed: bool },
}

impl RecordState {
    fn is_done(&self) -> bool {
        matches!(self, RecordState::Acknowledged | RecordState::Archived)
    }

    fn code(&self) -> u8 {
        match self {
            RecordState::Available | RecordState::Acquired { .. } => 0,
            RecordState::Acknowledged => 1,
            RecordState::Archived => 2,
            RecordState::Archiving {
                reason: DeathReason::Rejected,
                ..
            } => 3,
            RecordState::Archiving {
                reason: DeathReason::MaxDeliveryAttempts,
                ..
            } => 4,
        }
    }

    fn from_code(code: u8) -> Option<RecordState> {
        Some(match code {
            0 => RecordState::Available,
            1 => RecordState::Acknowledged,
            2 => RecordState::Archived,
            3 => RecordState::Archiving {
                reason: DeathReason::Rejected,
                claimed: false,
            },
            4 => RecordState::Archiving {
                reason: DeathReason::MaxDeliveryAttempts,
                claimed: false,
            },
            _ => return None,
        })
    }
}

/// One offset of the window.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    state: RecordState,
    delivery_count: u16,
}

/// A record to dead-letter, claimed by [`ShareState::claim_dead_letters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadLetter {
    /// The record's offset in the source partition.
    pub offset: u64,
    /// Its deliveries so far (`x-delivery-count`).
    pub delivery_count: u16,
    /// Why it goes (`x-death-reason`).
    pub reason: DeathReason,
}

/// What [`ShareState::acknowledge`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AckOutcome {
    /// Offsets that changed state.
    pub changed: u64,
    /// Some offset was not acquired by the member (it was left alone).
    pub invalid: bool,
    /// Some record became available again, or the window moved: a waiting
    /// fetch may now acquire.
    pub freed: bool,
    /// Some record now waits for the dead-letter topic.
    pub dead_letters: bool,
}

/// What [`ShareState::expire`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpireOutcome {
    /// Locks that ran out.
    pub expired: u64,
    /// Some of them now wait for the dead-letter topic.
    pub dead_letters: bool,
}

/// A malformed encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt share-partition state at byte {position}: {reason}")]
pub struct CorruptState {
    /// Where in the value the problem is.
    pub position: usize,
    /// What is wrong.
    pub reason: String,
}

/// A share-partition's state; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareState {
    start_offset: u64,
    /// `entries[i]` is offset `start_offset + i`.
    entries: VecDeque<Entry>,
    /// Changed since the last [`mark_clean`](Self::mark_clean).
    dirty: bool,
}

impl ShareState {
    /// A share-partition that starts at `start_offset` (nothing delivered yet).
    pub fn new(start_offset: u64) -> ShareState {
        ShareState {
            start_offset,
            entries: VecDeque::new(),
            dirty: true,
        }
    }

    /// SPSO: every offset below is done.
    pub fn start_offset(&self) -> u64 {
        self.start_offset
    }

    /// SPEO: the first offset never delivered.
    pub fn end_offset(&self) -> u64 {
        self.start_offset + self.entries.len() as u64
    }

    /// Records acquired and not yet acknowledged, released or expired. Walks
    /// the window (at most [`MAX_IN_FLIGHT_RECORDS`] entries): for metrics.
    pub fn in_flight(&self) -> u64 {
        self.entries
            .iter()
            .filter(|e| matches!(e.state, RecordState::Acquired { .. }))
            .count() as u64
    }

    /// The members holding a lock on some record of the window, sorted,
    /// without duplicates.
    pub fn lock_holders(&self) -> Vec<Arc<str>> {
        let mut holders: Vec<Arc<str>> = self
            .entries
            .iter()
            .filter_map(|e| match &e.state {
                RecordState::Acquired { member, .. } => Some(Arc::clone(member)),
                _ => None,
            })
            .collect();
        holders.sort_unstable();
        holders.dedup();
        holders
    }

    /// Whether something changed since the state was last written.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Records that the current state was written.
    pub fn mark_clean(&mut self) {
        self.dirty = false;
    }

    fn entry(&self, offset: u64) -> Option<&Entry> {
        let i = offset.checked_sub(self.start_offset)?;
        self.entries.get(usize::try_from(i).ok()?)
    }

    fn entry_mut(&mut self, offset: u64) -> Option<&mut Entry> {
        let i = offset.checked_sub(self.start_offset)?;
        self.entries.get_mut(usize::try_from(i).ok()?)
    }

    /// Moves the start over the done prefix. Returns whether it moved.
    fn advance(&mut self) -> bool {
        let mut moved = false;
        while self.entries.front().is_some_and(|e| e.state.is_done()) {
            self.entries.pop_front();
            self.start_offset += 1;
            moved = true;
        }
        if moved {
            self.dirty = true;
        }
        moved
    }

    /// Moves the start up to `log_start` when retention deleted records the
    /// group had not finished (they can be neither delivered nor
    /// dead-lettered). Returns how many not-done records were skipped.
    pub fn skip_to(&mut self, log_start: u64) -> u64 {
        if log_start <= self.start_offset {
            return 0;
        }
        let mut skipped = 0;
        while self.start_offset < log_start {
            match self.entries.pop_front() {
                Some(e) => skipped += u64::from(!e.state.is_done()),
                None => {
                    skipped += log_start - self.start_offset;
                    self.start_offset = log_start;
                    break;
                }
            }
            self.start_offset += 1;
        }
        self.dirty = true;
        self.advance();
        skipped
    }

    /// Starts over at `offset` with an empty window (the log lost records the
    /// state had seen: an unsynced tail after a crash).
    pub fn reset_to(&mut self, offset: u64) {
        self.start_offset = offset;
        self.entries.clear();
        self.dirty = true;
    }

    /// The lowest offset at or after `from` that can be acquired now: an
    /// Available one in the window, or the end of the window when it is below
    /// `high_watermark` and the window has room.
    pub fn next_acquirable(&self, from: u64, high_watermark: u64) -> Option<u64> {
        let from = from.max(self.start_offset);
        let end = self.end_offset();
        let skip = usize::try_from(from - self.start_offset).unwrap_or(usize::MAX);
        if let Some(i) = self
            .entries
            .iter()
            .skip(skip)
            .position(|e| e.state == RecordState::Available)
        {
            return Some(from + i as u64);
        }
        let next = from.max(end);
        (next == end && next < high_watermark && self.has_room()).then_some(next)
    }

    fn has_room(&self) -> bool {
        (self.entries.len() as u64) < MAX_IN_FLIGHT_RECORDS
    }

    /// Acquires up to `max` records in `[from, until)` for `member`: Available
    /// ones in the window, then new ones at its end while it has room (the
    /// caller makes sure `until` is at most the high watermark). Each gets one
    /// more delivery and the lock `deadline`. Returns the acquired offsets as
    /// ranges of equal delivery count, ascending.
    pub fn acquire(
        &mut self,
        from: u64,
        until: u64,
        max: u64,
        member: &Arc<str>,
        deadline: Instant,
    ) -> Vec<AcquiredRecords> {
        let mut out: Vec<AcquiredRecords> = Vec::new();
        let mut taken = 0u64;
        let mut offset = from.max(self.start_offset);
        while offset < until && taken < max {
            let count = if offset < self.end_offset() {
                let Some(e) = self.entry_mut(offset) else {
                    break;
                };
                if e.state != RecordState::Available {
                    offset += 1;
                    continue;
                }
                e.delivery_count = e.delivery_count.saturating_add(1);
                e.state = RecordState::Acquired {
                    member: Arc::clone(member),
                    deadline,
                };
                e.delivery_count
            } else {
                // The window grows one offset at a time, from its end.
                if offset != self.end_offset() || !self.has_room() {
                    break;
                }
                self.entries.push_back(Entry {
                    state: RecordState::Acquired {
                        member: Arc::clone(member),
                        deadline,
                    },
                    delivery_count: 1,
                });
                1
            };
            match out.last_mut() {
                Some(r) if r.last_offset + 1 == offset && r.delivery_count == count => {
                    r.last_offset = offset;
                }
                _ => out.push(AcquiredRecords {
                    first_offset: offset,
                    last_offset: offset,
                    delivery_count: count,
                }),
            }
            taken += 1;
            offset += 1;
        }
        if taken > 0 {
            self.dirty = true;
        }
        out
    }

    /// Applies `member`'s acknowledgement of `first..=last`: offsets it holds
    /// change (accept: done; release: available again, or dead-lettered after
    /// `max_attempts` deliveries; reject: dead-lettered), any other offset is
    /// left alone and flags the outcome `invalid`.
    pub fn acknowledge(
        &mut self,
        member: &str,
        first: u64,
        last: u64,
        kind: AckKind,
        max_attempts: u16,
    ) -> AckOutcome {
        let mut out = AckOutcome::default();
        if first > last {
            out.invalid = true;
            return out;
        }
        let end = self.end_offset();
        if first < self.start_offset || last >= end {
            out.invalid = true;
        }
        let lo = first.max(self.start_offset);
        let hi = last.min(end.saturating_sub(1));
        let mut offset = lo;
        while offset <= hi && lo < end {
            let Some(e) = self.entry_mut(offset) else {
                break;
            };
            match &e.state {
                RecordState::Acquired { member: m, .. } if &**m == member => {
                    e.state = match kind {
                        AckKind::Accept => RecordState::Acknowledged,
                        AckKind::Release if e.delivery_count >= max_attempts => {
                            out.dead_letters = true;
                            RecordState::Archiving {
                                reason: DeathReason::MaxDeliveryAttempts,
                                claimed: false,
                            }
                        }
                        AckKind::Release => {
                            out.freed = true;
                            RecordState::Available
                        }
                        AckKind::Reject => {
                            out.dead_letters = true;
                            RecordState::Archiving {
                                reason: DeathReason::Rejected,
                                claimed: false,
                            }
                        }
                    };
                    out.changed += 1;
                }
                _ => out.invalid = true,
            }
            offset += 1;
        }
        if out.changed > 0 {
            self.dirty = true;
            out.freed |= self.advance();
        }
        out
    }

    /// Applies a ShareAck's ranges for one partition, in request order, as
    /// [`acknowledge`](Self::acknowledge) applied to each would, but in time
    /// linear in the window plus `n log n` in the ranges, however they
    /// overlap: the part of a range an earlier range of the request already
    /// covered is skipped and flags the outcome `invalid` (the earlier range
    /// changed those offsets or found them not acquired, so acknowledging
    /// them again would find them not acquired either). Without this, `n`
    /// ranges each spanning the window cost `n x window` steps.
    pub fn acknowledge_batches(
        &mut self,
        member: &str,
        batches: impl IntoIterator<Item = (u64, u64, AckKind)>,
        max_attempts: u16,
    ) -> AckOutcome {
        let mut out = AckOutcome::default();
        // Ranges seen so far, merged: start -> end (inclusive), disjoint and
        // not adjacent, so their ends ascend with their starts.
        let mut covered: BTreeMap<u64, u64> = BTreeMap::new();
        for (first, last, kind) in batches {
            if first > last {
                out.invalid = true;
                continue;
            }
            // Earlier ranges overlapping or touching first..=last, ascending.
            let mut touching: Vec<(u64, u64)> = covered
                .range(..=last.saturating_add(1))
                .rev()
                .take_while(|&(_, &end)| end.saturating_add(1) >= first)
                .map(|(&s, &e)| (s, e))
                .collect();
            touching.reverse();
            // The parts of first..=last no earlier range covered; `None`
            // once the rest of the range is covered.
            let mut pieces = Vec::new();
            let mut from = Some(first);
            let mut merged = (first, last);
            for &(s, e) in &touching {
                if s <= last && e >= first {
                    out.invalid = true;
                    if let Some(f) = from {
                        if s > f {
                            pieces.push((f, s - 1));
                        }
                        from = if e >= f { e.checked_add(1) } else { Some(f) };
                    }
                }
                merged = (merged.0.min(s), merged.1.max(e));
                covered.remove(&s);
            }
            if let Some(f) = from.filter(|&f| f <= last) {
                pieces.push((f, last));
            }
            covered.insert(merged.0, merged.1);
            for (lo, hi) in pieces {
                let o = self.acknowledge(member, lo, hi, kind, max_attempts);
                out.changed += o.changed;
                out.invalid |= o.invalid;
                out.freed |= o.freed;
                out.dead_letters |= o.dead_letters;
            }
        }
        out
    }

    /// Ends every lock whose deadline is at or before `now`: the record is
    /// available again, or waits for the dead-letter topic when it has had
    /// `max_attempts` deliveries (its count already includes the delivery
    /// whose lock expired).
    pub fn expire(&mut self, now: Instant, max_attempts: u16) -> ExpireOutcome {
        let mut out = ExpireOutcome::default();
        for e in &mut self.entries {
            if let RecordState::Acquired { deadline, .. } = &e.state
                && *deadline <= now
            {
                out.expired += 1;
                e.state = if e.delivery_count >= max_attempts {
                    out.dead_letters = true;
                    RecordState::Archiving {
                        reason: DeathReason::MaxDeliveryAttempts,
                        claimed: false,
                    }
                } else {
                    RecordState::Available
                };
            }
        }
        if out.expired > 0 {
            self.dirty = true;
        }
        out
    }

    /// Turns Available records that already had `max_attempts` deliveries
    /// into dead letters: after a restart, a record whose last delivery was
    /// its last allowed one (its lock did not survive). Returns how many.
    pub fn archive_exhausted(&mut self, max_attempts: u16) -> u64 {
        let mut n = 0;
        for e in &mut self.entries {
            if e.state == RecordState::Available && e.delivery_count >= max_attempts {
                e.state = RecordState::Archiving {
                    reason: DeathReason::MaxDeliveryAttempts,
                    claimed: false,
                };
                n += 1;
            }
        }
        if n > 0 {
            self.dirty = true;
        }
        n
    }

    /// The earliest lock deadline in the window.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.entries
            .iter()
            .filter_map(|e| match &e.state {
                RecordState::Acquired { deadline, .. } => Some(*deadline),
                _ => None,
            })
            .min()
    }

    /// Whether some record waits for the dead-letter topic and no writer has
    /// claimed it.
    pub fn has_unclaimed_dead_letters(&self) -> bool {
        self.entries
            .iter()
            .any(|e| matches!(e.state, RecordState::Archiving { claimed: false, .. }))
    }

    /// Claims every unclaimed record waiting for the dead-letter topic, in
    /// offset order; the caller writes them and then calls
    /// [`finish_dead_letters`](Self::finish_dead_letters).
    pub fn claim_dead_letters(&mut self) -> Vec<DeadLetter> {
        let start = self.start_offset;
        let mut out = Vec::new();
        for (i, e) in self.entries.iter_mut().enumerate() {
            if let RecordState::Archiving { reason, claimed } = &mut e.state
                && !*claimed
            {
                *claimed = true;
                out.push(DeadLetter {
                    offset: start + i as u64,
                    delivery_count: e.delivery_count,
                    reason: *reason,
                });
            }
        }
        out
    }

    /// Ends a writer's claim on `offsets`: archived (done) if `archived`,
    /// else unclaimed, for a later retry. Returns whether the window moved.
    pub fn finish_dead_letters(&mut self, offsets: &[u64], archived: bool) -> bool {
        for offset in offsets {
            if let Some(e) = self.entry_mut(*offset)
                && let RecordState::Archiving { claimed, .. } = &mut e.state
            {
                if archived {
                    e.state = RecordState::Archived;
                    self.dirty = true;
                } else {
                    *claimed = false;
                }
            }
        }
        self.advance()
    }

    /// The state and delivery count of `offset` (done offsets below the
    /// start are reported as `Acknowledged`; offsets past the end as
    /// `Available` with count 0).
    pub fn state_of(&self, offset: u64) -> (RecordState, u16) {
        if offset < self.start_offset {
            return (RecordState::Acknowledged, 0);
        }
        match self.entry(offset) {
            Some(e) => (e.state.clone(), e.delivery_count),
            None => (RecordState::Available, 0),
        }
    }

    /// The durable form; see the module docs.
    pub fn encode(&self) -> Vec<u8> {
        let mut ranges: Vec<(u8, u16, u32)> = Vec::new();
        for e in &self.entries {
            let code = e.state.code();
            match ranges.last_mut() {
                Some((c, n, len)) if *c == code && *n == e.delivery_count => *len += 1,
                _ => ranges.push((code, e.delivery_count, 1)),
            }
        }
        let mut out = Vec::with_capacity(HEADER_BYTES + ranges.len() * RANGE_BYTES);
        out.push(VERSION);
        out.extend_from_slice(&self.start_offset.to_be_bytes());
        out.extend_from_slice(&(ranges.len() as u32).to_be_bytes());
        for (code, count, len) in ranges {
            out.push(code);
            out.extend_from_slice(&count.to_be_bytes());
            out.extend_from_slice(&len.to_be_bytes());
        }
        out
    }

    /// Reads the durable form. The result is clean (not dirty) and holds no
    /// lock; its done prefix, if the writer left one, is skipped.
    ///
    /// # Errors
    /// [`CorruptState`] naming the byte position and the problem.
    pub fn decode(bytes: &[u8]) -> Result<ShareState, CorruptState> {
        let mut r = Reader { bytes, position: 0 };
        let version = r.u8()?;
        if version != VERSION {
            return Err(r.error(format!("unknown version {version}")));
        }
        let start_offset = r.u64()?;
        let range_count = r.u32()?;
        if (range_count as usize).saturating_mul(RANGE_BYTES) != r.remaining() {
            return Err(r.error(format!(
                "{range_count} ranges need {} bytes, {} left",
                (range_count as usize).saturating_mul(RANGE_BYTES),
                r.remaining()
            )));
        }
        let mut entries = VecDeque::new();
        for _ in 0..range_count {
            let code = r.u8()?;
            let state = RecordState::from_code(code)
                .ok_or_else(|| r.error(format!("unknown record state {code}")))?;
            let delivery_count = r.u16()?;
            let len = u64::from(r.u32()?);
            if len == 0 {
                return Err(r.error("empty range".into()));
            }
            if entries.len() as u64 + len > MAX_IN_FLIGHT_RECORDS {
                return Err(r.error(format!(
                    "window of more than {MAX_IN_FLIGHT_RECORDS} offsets"
                )));
            }
            for _ in 0..len {
                entries.push_back(Entry {
                    state: state.clone(),
                    delivery_count,
                });
            }
        }
        if start_offset.checked_add(entries.len() as u64).is_none() {
            return Err(r.error("window ends past u64::MAX".into()));
        }
        let mut state = ShareState {
            start_offset,
            entries,
            dirty: false,
        };
        state.advance();
        Ok(state)
    }
}

/// Bounds-checked big-endian reads for [`ShareState::decode`].
struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl Reader<'_> {
    fn error(&self, reason: String) -> CorruptState {
        CorruptState {
            position: self.position,
            reason,
        }
    }

    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.position)
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], CorruptState> {
        let field = self
            .bytes
            .get(self.position..)
            .and_then(|rest| rest.first_chunk::<N>())
            .copied()
            .ok_or_else(|| self.error(format!("truncated: {N} bytes needed")))?;
        self.position += N;
        Ok(field)
    }

    fn u8(&mut self) -> Result<u8, CorruptState> {
        Ok(u8::from_be_bytes(self.take()?))
    }

    fn u16(&mut self) -> Result<u16, CorruptState> {
        Ok(u16::from_be_bytes(self.take()?))
    }

    fn u32(&mut self) -> Result<u32, CorruptState> {
        Ok(u32::from_be_bytes(self.take()?))
    }

    fn u64(&mut self) -> Result<u64, CorruptState> {
        Ok(u64::from_be_bytes(self.take()?))
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
    use std::collections::BTreeMap;
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;

    fn member(m: &str) -> Arc<str> {
        Arc::from(m)
    }

    fn ranges(v: &[AcquiredRecords]) -> Vec<(u64, u64, u16)> {
        v.iter()
            .map(|r| (r.first_offset, r.last_offset, r.delivery_count))
            .collect()
    }

    fn later(s: u64) -> Instant {
        Instant::now() + Duration::from_secs(s)
    }

    #[test]
    fn acquire_takes_new_records_up_to_the_limit_and_the_high_watermark() {
        let mut s = ShareState::new(10);
        let a = member("a");
        assert_eq!(
            s.next_acquirable(0, 10),
            None,
            "nothing below the high watermark"
        );
        assert_eq!(s.next_acquirable(0, 20), Some(10));
        let got = s.acquire(10, 20, 4, &a, later(30));
        assert_eq!(ranges(&got), [(10, 13, 1)]);
        assert_eq!((s.start_offset(), s.end_offset()), (10, 14));
        let got = s.acquire(14, 16, 100, &a, later(30));
        assert_eq!(ranges(&got), [(14, 15, 1)]);
        assert_eq!(s.next_acquirable(0, 16), None);
    }

    #[test]
    fn accept_is_done_and_the_start_advances_over_the_done_prefix() {
        let mut s = ShareState::new(0);
        let a = member("a");
        s.acquire(0, 10, 10, &a, later(30));
        let out = s.acknowledge("a", 2, 4, AckKind::Accept, 5);
        assert_eq!(out.changed, 3);
        assert!(!out.invalid && !out.freed);
        assert_eq!(s.start_offset(), 0, "0 and 1 are still acquired");
        let out = s.acknowledge("a", 0, 1, AckKind::Accept, 5);
        assert!(out.freed, "the window moved");
        assert_eq!(s.start_offset(), 5);
        assert_eq!(s.state_of(3).0, RecordState::Acknowledged);
        // Acknowledged twice: invalid, nothing changes.
        let out = s.acknowledge("a", 3, 3, AckKind::Release, 5);
        assert!(out.invalid);
        assert_eq!(out.changed, 0);
    }

    #[test]
    fn release_makes_records_available_with_their_count_and_they_come_first() {
        let mut s = ShareState::new(0);
        let (a, b) = (member("a"), member("b"));
        s.acquire(0, 10, 10, &a, later(30));
        s.acknowledge("a", 3, 4, AckKind::Release, 5);
        assert_eq!(s.next_acquirable(0, 100), Some(3));
        let got = s.acquire(3, 100, 5, &b, later(30));
        assert_eq!(ranges(&got), [(3, 4, 2), (10, 12, 1)]);
        assert_eq!(s.state_of(4).1, 2);
    }

    #[test]
    fn another_members_records_and_unknown_offsets_are_invalid_and_untouched() {
        let mut s = ShareState::new(0);
        s.acquire(0, 4, 4, &member("a"), later(30));
        let out = s.acknowledge("b", 0, 3, AckKind::Accept, 5);
        assert!(out.invalid);
        assert_eq!(out.changed, 0);
        // Partly valid: 2..=3 change, 4..=9 were never acquired.
        let out = s.acknowledge("a", 2, 9, AckKind::Accept, 5);
        assert!(out.invalid);
        assert_eq!(out.changed, 2);
        assert!(s.acknowledge("a", 5, 2, AckKind::Accept, 5).invalid);
        assert!(s.acknowledge("a", 0, u64::MAX, AckKind::Accept, 5).invalid);
        assert_eq!(s.start_offset(), 4);
    }

    #[test]
    fn reject_and_the_last_release_wait_for_the_dead_letter_topic() {
        let mut s = ShareState::new(0);
        let a = member("a");
        s.acquire(0, 2, 2, &a, later(30));
        let out = s.acknowledge("a", 0, 0, AckKind::Reject, 5);
        assert!(out.dead_letters);
        for attempt in 1..=3u16 {
            let got = s.acquire(1, 2, 1, &a, later(30));
            if attempt > 1 {
                assert_eq!(ranges(&got), [(1, 1, attempt)]);
            }
            s.acknowledge("a", 1, 1, AckKind::Release, 3);
        }
        let claims = s.claim_dead_letters();
        assert_eq!(
            claims,
            [
                DeadLetter {
                    offset: 0,
                    delivery_count: 1,
                    reason: DeathReason::Rejected
                },
                DeadLetter {
                    offset: 1,
                    delivery_count: 3,
                    reason: DeathReason::MaxDeliveryAttempts
                }
            ]
        );
        assert!(s.claim_dead_letters().is_empty(), "claimed once");
        assert_eq!(s.next_acquirable(0, 2), None, "never delivered again");
        assert!(!s.finish_dead_letters(&[0, 1], false));
        assert_eq!(s.claim_dead_letters().len(), 2, "unclaimed for a retry");
        assert!(s.finish_dead_letters(&[0, 1], true));
        assert_eq!(s.start_offset(), 2);
    }

    #[test]
    fn expired_locks_are_available_again_or_dead_letters_at_the_limit() {
        let mut s = ShareState::new(0);
        let now = Instant::now();
        s.acquire(0, 3, 3, &member("a"), now + Duration::from_secs(1));
        s.acquire(3, 4, 1, &member("b"), now + Duration::from_secs(5));
        assert_eq!(s.next_deadline(), Some(now + Duration::from_secs(1)));
        assert_eq!(s.expire(now, 5).expired, 0);
        let out = s.expire(now + Duration::from_secs(1), 5);
        assert_eq!(out.expired, 3);
        assert!(!out.dead_letters);
        assert_eq!(s.next_deadline(), Some(now + Duration::from_secs(5)));
        assert!(
            s.acknowledge("a", 0, 0, AckKind::Accept, 5).invalid,
            "lock lost"
        );
        let out = s.expire(now + Duration::from_secs(9), 1);
        assert!(out.dead_letters, "offset 3 had its one delivery");
        assert_eq!(s.claim_dead_letters().len(), 1);
    }

    #[test]
    fn the_window_is_bounded() {
        let mut s = ShareState::new(0);
        let a = member("a");
        let got = s.acquire(0, u64::MAX, u64::MAX, &a, later(30));
        assert_eq!(ranges(&got), [(0, MAX_IN_FLIGHT_RECORDS - 1, 1)]);
        assert_eq!(s.next_acquirable(0, u64::MAX), None, "full");
        s.acknowledge("a", 1, 10, AckKind::Accept, 5);
        assert_eq!(
            s.next_acquirable(0, u64::MAX),
            None,
            "offset 0 holds the window"
        );
        s.acknowledge("a", 0, 0, AckKind::Accept, 5);
        assert_eq!(s.next_acquirable(0, u64::MAX), Some(MAX_IN_FLIGHT_RECORDS));
        let got = s.acquire(0, u64::MAX, u64::MAX, &a, later(30));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].last_offset - got[0].first_offset + 1, 11);
    }

    #[test]
    fn skip_to_drops_what_retention_deleted() {
        let mut s = ShareState::new(0);
        s.acquire(0, 5, 5, &member("a"), later(30));
        s.acknowledge("a", 0, 1, AckKind::Accept, 5);
        assert_eq!(s.skip_to(4), 2, "offsets 2 and 3 were not done");
        assert_eq!((s.start_offset(), s.end_offset()), (4, 5));
        assert_eq!(s.skip_to(10), 6);
        assert_eq!((s.start_offset(), s.end_offset()), (10, 10));
        assert_eq!(s.skip_to(3), 0);
    }

    #[test]
    fn encoding_round_trips_and_locks_do_not_survive() {
        let mut s = ShareState::new(1_000_000);
        let a = member("a");
        s.acquire(0, u64::MAX, 10, &a, later(30));
        s.acknowledge("a", 1_000_002, 1_000_003, AckKind::Accept, 5);
        s.acknowledge("a", 1_000_004, 1_000_004, AckKind::Release, 5);
        s.acknowledge("a", 1_000_005, 1_000_005, AckKind::Reject, 5);
        s.acquire(1_000_004, u64::MAX, 1, &a, later(30));
        let bytes = s.encode();
        // 5 ranges: 0-1 (available, 1), 2-3 acknowledged, 4 (available, 2),
        // 5 archiving, 6-9 (available, 1).
        assert_eq!(bytes.len(), HEADER_BYTES + 5 * RANGE_BYTES);
        let back = ShareState::decode(&bytes).unwrap();
        assert!(!back.is_dirty());
        assert_eq!(
            (back.start_offset(), back.end_offset()),
            (1_000_000, 1_000_010)
        );
        assert_eq!(back.state_of(1_000_000), (RecordState::Available, 1));
        assert_eq!(back.state_of(1_000_004), (RecordState::Available, 2));
        assert_eq!(
            back.state_of(1_000_005).0,
            RecordState::Archiving {
                reason: DeathReason::Rejected,
                claimed: false
            }
        );
        assert_eq!(back.encode(), bytes);
        // An empty window is 13 bytes.
        assert_eq!(ShareState::new(7).encode().len(), HEADER_BYTES);
    }

    #[test]
    fn corrupt_encodings_are_errors_not_panics() {
        let mut s = ShareState::new(5);
        s.acquire(0, 50, 50, &member("a"), later(30));
        s.acknowledge("a", 6, 9, AckKind::Accept, 5);
        let good = s.encode();
        for cut in 0..good.len() {
            assert!(ShareState::decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = good.clone();
        long.push(0);
        assert!(ShareState::decode(&long).is_err());
        let mut bad_version = good.clone();
        bad_version[0] = 9;
        assert!(ShareState::decode(&bad_version).is_err());
        let mut bad_state = good.clone();
        bad_state[HEADER_BYTES] = 7;
        let err = ShareState::decode(&bad_state).unwrap_err();
        assert!(err.reason.contains("state"), "{err}");
        let mut huge = ShareState::new(0).encode();
        huge[HEADER_BYTES - 1] = 1;
        huge.extend_from_slice(&[0, 0, 1, 0, 0, 0x10, 0]);
        assert!(ShareState::decode(&huge).is_err(), "window too large");
        let mut empty_range = ShareState::new(0).encode();
        empty_range[HEADER_BYTES - 1] = 1;
        empty_range.extend_from_slice(&[0, 0, 1, 0, 0, 0, 0]);
        assert!(ShareState::decode(&empty_range).is_err());
        // Any flipped byte decodes or fails, never panics.
        for i in 0..good.len() {
            for flip in [1u8, 0x80, 0xff] {
                let mut b = good.clone();
                b[i] ^= flip;
                let _ = ShareState::decode(&b);
            }
        }
    }

    /// One step of the model test.
    #[derive(Debug, Clone)]
    enum Op {
        Produce(u64),
        Acquire {
            member: u8,
            max: u64,
        },
        Ack {
            member: u8,
            first: u64,
            len: u64,
            kind: u8,
        },
        Expire,
        DeadLetter {
            ok: bool,
        },
        RoundTrip,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            2 => (1u64..50).prop_map(Op::Produce),
            4 => (0u8..3, 1u64..40).prop_map(|(member, max)| Op::Acquire { member, max }),
            4 => (0u8..3, 0u64..120, 1u64..10, 1u8..4)
                .prop_map(|(member, first, len, kind)| Op::Ack { member, first, len, kind }),
            1 => Just(Op::Expire),
            1 => any::<bool>().prop_map(|ok| Op::DeadLetter { ok }),
            1 => Just(Op::RoundTrip),
        ]
    }

    /// The model: per offset, (done, holder, delivery count, dead letter).
    #[derive(Debug, Default, Clone)]
    struct Model {
        done: BTreeMap<u64, bool>,
        holder: BTreeMap<u64, u8>,
        count: BTreeMap<u64, u16>,
        dead: BTreeMap<u64, bool>,
    }

    fn batch() -> impl Strategy<Value = (u64, u64, AckKind)> {
        (0u64..70, 0u64..30, 1u8..4, any::<bool>()).prop_map(|(first, len, kind, huge)| {
            let last = if huge { u64::MAX } else { first + len };
            // Now and then first > last: an invalid range.
            let (first, last) = if len == 29 {
                (last, first)
            } else {
                (first, last)
            };
            (first, last, AckKind::try_from(kind).unwrap())
        })
    }

    proptest! {
        /// One ShareAck's ranges, however they overlap, do what acknowledging
        /// each in turn does: same outcome, same state.
        #[test]
        fn acknowledging_many_ranges_at_once_matches_one_at_a_time(
            acquired in proptest::collection::vec((0u8..2, 1u64..30), 1..6),
            acks in proptest::collection::vec(batch(), 0..40),
        ) {
            let members = [member("a"), member("b")];
            let mut s = ShareState::new(0);
            for (who, max) in acquired {
                s.acquire(0, 60, max, &members[who as usize], later(60));
            }
            let mut one_by_one = ShareState::decode(&s.encode()).unwrap();
            let mut at_once = ShareState::decode(&s.encode()).unwrap();
            // Locks do not survive the encoding: acquire again, same order.
            let deadline = later(60);
            for st in [&mut one_by_one, &mut at_once] {
                st.acquire(0, 60, 40, &members[0], deadline);
            }
            let mut want = AckOutcome::default();
            for &(first, last, kind) in &acks {
                let o = one_by_one.acknowledge("a", first, last, kind, 3);
                want.changed += o.changed;
                want.invalid |= o.invalid;
                want.freed |= o.freed;
                want.dead_letters |= o.dead_letters;
            }
            let got = at_once.acknowledge_batches("a", acks.iter().copied(), 3);
            prop_assert_eq!(got, want);
            prop_assert_eq!(at_once.encode(), one_by_one.encode());
            for o in 0..70 {
                prop_assert_eq!(at_once.state_of(o), one_by_one.state_of(o));
            }
        }

        /// Random produce/acquire/ack/expire/dead-letter sequences against a
        /// BTreeMap model: acquisitions never hand out a record that is held,
        /// done or dead; counts grow by one per delivery; an ack changes only
        /// records the member holds; the start never passes a record that is
        /// not done; the encoding round-trips at every step.
        #[test]
        fn the_state_machine_agrees_with_a_model(ops in proptest::collection::vec(op(), 1..80)) {
            const MAX_ATTEMPTS: u16 = 3;
            let members: Vec<Arc<str>> = ["a", "b", "c"].iter().map(|m| member(m)).collect();
            let mut s = ShareState::new(0);
            let mut m = Model::default();
            let mut hw = 0u64;
            let far = later(3600);
            for op in ops {
                match op {
                    Op::Produce(n) => hw += n,
                    Op::Acquire { member: who, max } => {
                        let got = s.acquire(0, hw, max, &members[who as usize], far);
                        let n: u64 = got.iter().map(|r| r.last_offset - r.first_offset + 1).sum();
                        prop_assert!(n <= max);
                        for r in &got {
                            prop_assert!(r.first_offset <= r.last_offset && r.last_offset < hw);
                            for o in r.first_offset..=r.last_offset {
                                prop_assert!(!m.done.get(&o).copied().unwrap_or(false), "{} done", o);
                                prop_assert!(!m.holder.contains_key(&o), "{} held", o);
                                prop_assert!(!m.dead.get(&o).copied().unwrap_or(false), "{} dead", o);
                                let c = m.count.entry(o).or_insert(0);
                                *c += 1;
                                prop_assert_eq!(r.delivery_count, *c);
                                m.holder.insert(o, who);
                            }
                        }
                        prop_assert!(s.end_offset() - s.start_offset() <= MAX_IN_FLIGHT_RECORDS);
                    }
                    Op::Ack { member: who, first, len, kind } => {
                        let kind = AckKind::try_from(kind).unwrap();
                        let last = first + len - 1;
                        let out = s.acknowledge(&members[who as usize], first, last, kind, MAX_ATTEMPTS);
                        let mut changed = 0;
                        let mut invalid = false;
                        for o in first..=last {
                            if m.holder.get(&o) == Some(&who) {
                                m.holder.remove(&o);
                                changed += 1;
                                match kind {
                                    AckKind::Accept => { m.done.insert(o, true); }
                                    AckKind::Release if m.count[&o] >= MAX_ATTEMPTS => { m.dead.insert(o, true); }
                                    AckKind::Release => {}
                                    AckKind::Reject => { m.dead.insert(o, true); }
                                }
                            } else {
                                invalid = true;
                            }
                        }
                        prop_assert_eq!(out.changed, changed);
                        prop_assert_eq!(out.invalid, invalid);
                    }
                    Op::Expire => {
                        let out = s.expire(far, MAX_ATTEMPTS);
                        prop_assert_eq!(out.expired, m.holder.len() as u64);
                        for (o, _) in std::mem::take(&mut m.holder) {
                            if m.count[&o] >= MAX_ATTEMPTS {
                                m.dead.insert(o, true);
                            }
                        }
                    }
                    Op::DeadLetter { ok } => {
                        let claims = s.claim_dead_letters();
                        let want: Vec<u64> = m.dead.iter().filter(|(_, d)| **d).map(|(o, _)| *o).collect();
                        let got: Vec<u64> = claims.iter().map(|c| c.offset).collect();
                        prop_assert_eq!(&got, &want);
                        s.finish_dead_letters(&got, ok);
                        if ok {
                            for o in got {
                                m.dead.insert(o, false);
                                m.done.insert(o, true);
                            }
                        }
                    }
                    Op::RoundTrip => {
                        let back = ShareState::decode(&s.encode()).unwrap();
                        prop_assert_eq!(back.start_offset(), s.start_offset());
                        prop_assert_eq!(back.end_offset(), s.end_offset());
                        // Locks do not survive: the model drops them too.
                        s = back;
                        m.holder.clear();
                    }
                }
                // The start never passes a record that is not done.
                for o in 0..s.start_offset() {
                    prop_assert!(m.done.get(&o).copied().unwrap_or(false), "start passed {}", o);
                }
                prop_assert!(!m.done.get(&s.start_offset()).copied().unwrap_or(false));
            }
        }
    }
}
