//! One segment: a `.log` file of batches back to back, plus its offset and time
//! indexes (Kafka's `LogSegment`).
//!
//! ```text
//! 00000000000000368769.log: [batch][batch][batch]...   each batch is the RecordBatch
//!                                                      of warren_protocol::record_batch,
//!                                                      base_offset assigned on append
//!                                                      (kept as sent on a follower's
//!                                                      append_replicated)
//! ```
//!
//! Invariants:
//! - Batches are whole and contiguous from position 0 to `size`; offsets increase.
//! - `size` and `next_offset` are *published* (Release) only after a batch is fully
//!   written and indexed, so a reader that loads them (Acquire) never sees a partial
//!   batch.
//! - Index entries point at batch starts below `size`, or at a batch being written by
//!   the current append; readers bound every scan by the `size` they loaded.
//!
//! Thread-safety: any number of readers may call the read methods concurrently
//! with one writer. Mutating methods (`append`, `recover`, `seal`,
//! `truncate_to`, `preallocate_indexes`, `delete_files`) are `pub(crate)` and
//! called only by [`crate::PartitionLog`] with its writer lock held: "the
//! caller is expected to hold `writer`".
//!
//! Truncation ([`crate::PartitionLog::truncate_to`]) cuts the file at a batch
//! boundary and drops the index entries at and above the cut; it publishes
//! the smaller end before it cuts, so a reader either sees the old end and
//! gets a short read (an I/O error) or sees the new end.

use std::fs::{File, OpenOptions};
use std::io::IoSlice;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use warren_protocol::record_batch::{self, BATCH_HEADER_LEN, BatchHeader, RecordBatch};

use crate::checkpoint::sync_dir;
use crate::config::LogConfig;
use crate::error::{Error, IoContext, Result};
use crate::file_names::{SegmentFile, segment_file};
use crate::file_slice::{FileSlice, append_file_range};
use crate::offset::{FilePosition, Offset};
use crate::offset_index::OffsetIndex;
use crate::time_index::TimeIndex;

/// Bytes read per `pread` while walking batch headers: enough for the batches
/// between two index entries (4 KiB apart by default) in one call.
const HEADER_WINDOW_BYTES: usize = 16 << 10;
/// Bytes read per `pread` while recovering (CRC-checking every batch).
const RECOVERY_WINDOW_BYTES: usize = 4 << 20;

/// What a scan of a segment found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanOutcome {
    /// Bytes of whole, valid batches from position 0.
    pub valid_bytes: u64,
    /// Offset after the last valid batch.
    pub next_offset: Offset,
    /// Largest batch max_timestamp seen (-1 if none).
    pub max_timestamp: i64,
    /// Valid batches scanned.
    pub batches: u64,
    /// Where and why the scan stopped early, if it did.
    pub invalid: Option<(u64, String)>,
    /// Length of the file when the scan began.
    pub file_bytes: u64,
}

/// One segment of a partition log.
#[derive(Debug)]
pub struct Segment {
    base_offset: Offset,
    partition: Arc<str>,
    log_path: Arc<PathBuf>,
    log: Arc<File>,
    offset_index: RwLock<OffsetIndex>,
    time_index: RwLock<TimeIndex>,
    index_interval_bytes: u32,
    /// Published bytes of whole batches.
    size: AtomicU32,
    /// Published offset after the last batch.
    next_offset: AtomicU64,
    /// Largest batch max_timestamp, -1 when empty.
    max_timestamp: AtomicI64,
    /// Wall-clock ms of the first append to this segment in this process (or of
    /// the open, for a non-empty segment): the clock for `segment_ms` rolls.
    /// Producer timestamps are not used, so a producer with a skewed clock cannot
    /// force a roll per batch.
    rolling_base_ms: AtomicI64,
    /// Writer only: batch bytes since the last index entry.
    bytes_since_index_entry: AtomicU32,
}

fn read_lock<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    // A poisoned lock means a writer panicked mid-update of an index; the index is
    // plain data that the sanity checks validate, so keep serving.
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write_lock<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Segment {
    /// Creates the files of a new, empty, active segment (indexes preallocated).
    ///
    /// # Errors
    /// I/O errors, `DiskFull`; on error no file is left behind.
    pub(crate) fn create(
        dir: &Path,
        partition: Arc<str>,
        base_offset: Offset,
        config: &LogConfig,
    ) -> Result<Segment> {
        let log_path = segment_file(dir, base_offset, SegmentFile::Log);
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&log_path)
            .ctx("create segment", &log_path)?;
        let built = (|| {
            let segment = Segment::from_files(dir, partition, base_offset, log, config)?;
            segment.preallocate_indexes(config)?;
            // The new files' directory entries must be durable before anything
            // acknowledged as durable lives in them.
            sync_dir(dir)?;
            Ok(segment)
        })();
        if built.is_err() {
            for kind in [SegmentFile::Log, SegmentFile::Index, SegmentFile::TimeIndex] {
                let _ = std::fs::remove_file(segment_file(dir, base_offset, kind));
            }
        }
        built
    }

    /// Opens an existing segment's files. Indexes that are missing are created
    /// empty; the caller decides whether to trust, walk or recover the segment.
    ///
    /// Returns the segment and whether an index file was missing.
    ///
    /// # Errors
    /// I/O errors. A corrupt index is not an error here: it is replaced by an
    /// empty one and reported as missing, so the caller rebuilds it.
    pub(crate) fn open(
        dir: &Path,
        partition: Arc<str>,
        base_offset: Offset,
        config: &LogConfig,
    ) -> Result<(Segment, bool)> {
        let log_path = segment_file(dir, base_offset, SegmentFile::Log);
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log_path)
            .ctx("open segment", &log_path)?;
        let mut rebuild = false;
        for kind in [SegmentFile::Index, SegmentFile::TimeIndex] {
            let path = segment_file(dir, base_offset, kind);
            if !path.exists() {
                rebuild = true;
            }
        }
        let segment = match Segment::from_files(dir, partition.clone(), base_offset, log, config) {
            Ok(s) => s,
            Err(Error::CorruptIndex { path, reason }) => {
                tracing::warn!(partition = %partition, path = %path.display(), %reason,
                    "index unusable, rebuilding from the log");
                for kind in [SegmentFile::Index, SegmentFile::TimeIndex] {
                    let p = segment_file(dir, base_offset, kind);
                    std::fs::remove_file(&p).ctx("remove corrupt index", &p)?;
                }
                rebuild = true;
                let log = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&log_path)
                    .ctx("open segment", &log_path)?;
                Segment::from_files(dir, partition, base_offset, log, config)?
            }
            Err(e) => return Err(e),
        };
        let len = segment.log.metadata().ctx("stat segment", &log_path)?.len();
        let size = u32::try_from(len).map_err(|_| Error::CorruptLog {
            partition: segment.partition.to_string(),
            path: log_path.clone(),
            position: len,
            reason: format!("segment of {len} bytes exceeds the 4 GiB position range"),
        })?;
        segment.size.store(size, Ordering::Release);
        Ok((segment, rebuild))
    }

    fn from_files(
        dir: &Path,
        partition: Arc<str>,
        base_offset: Offset,
        log: File,
        config: &LogConfig,
    ) -> Result<Segment> {
        let offset_index = OffsetIndex::open(
            &segment_file(dir, base_offset, SegmentFile::Index),
            base_offset,
        )?;
        let time_index = TimeIndex::open(
            &segment_file(dir, base_offset, SegmentFile::TimeIndex),
            base_offset,
        )?;
        Ok(Segment {
            base_offset,
            partition,
            log_path: Arc::new(segment_file(dir, base_offset, SegmentFile::Log)),
            log: Arc::new(log),
            offset_index: RwLock::new(offset_index),
            time_index: RwLock::new(time_index),
            index_interval_bytes: config.index_interval_bytes,
            size: AtomicU32::new(0),
            next_offset: AtomicU64::new(base_offset.0),
            max_timestamp: AtomicI64::new(-1),
            rolling_base_ms: AtomicI64::new(-1),
            bytes_since_index_entry: AtomicU32::new(0),
        })
    }

    /// The segment's first offset (its file name).
    pub fn base_offset(&self) -> Offset {
        self.base_offset
    }

    /// Offset after the last batch.
    pub fn next_offset(&self) -> Offset {
        Offset(self.next_offset.load(Ordering::Acquire))
    }

    /// Bytes of whole batches.
    pub fn size(&self) -> u32 {
        self.size.load(Ordering::Acquire)
    }

    /// Largest batch timestamp, -1 when empty.
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp.load(Ordering::Acquire)
    }

    /// Wall-clock ms since when this segment has held data (-1 when empty): the
    /// clock for `segment_ms`.
    pub fn rolling_base_ms(&self) -> i64 {
        self.rolling_base_ms.load(Ordering::Acquire)
    }

    /// Path of the `.log` file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// True when either index has no room for another entry.
    pub(crate) fn indexes_full(&self) -> bool {
        read_lock(&self.offset_index).is_full() || read_lock(&self.time_index).is_full()
    }

    fn corrupt(&self, position: u64, reason: impl Into<String>) -> Error {
        Error::CorruptLog {
            partition: self.partition.to_string(),
            path: self.log_path.to_path_buf(),
            position,
            reason: reason.into(),
        }
    }

    /// Appends a batch whose header is already validated, with `base_offset` as its
    /// new base offset. On error the segment is exactly as before.
    ///
    /// The caller holds the log's writer lock.
    ///
    /// # Errors
    /// I/O errors, `DiskFull`.
    pub(crate) fn append(
        &self,
        base_offset: Offset,
        batch: &[u8],
        header: &BatchHeader,
        now_ms: i64,
    ) -> Result<()> {
        let position = self.size.load(Ordering::Acquire);
        let len = u32::try_from(batch.len()).map_err(|_| Error::BatchTooLarge {
            bytes: batch.len(),
            limit: u32::MAX,
        })?;
        // The batch goes to disk as the producer sent it except for base_offset: a
        // vectored write of the new 8 bytes and the rest, so no copy of the batch.
        let new_base = (base_offset.0 as i64).to_be_bytes();
        let rest = batch.get(8..).unwrap_or_default();
        if let Err(e) = write_all_at(&self.log, &[&new_base, rest], u64::from(position)) {
            // Undo a partial write so the segment ends on a batch boundary.
            let _ = self.log.set_len(u64::from(position));
            return Err(Error::io("write segment", &self.log_path, e));
        }
        let max_timestamp_before = self.max_timestamp.load(Ordering::Acquire);
        if let Err(e) = self.index_batch(
            base_offset,
            FilePosition(position),
            len,
            max_timestamp_before,
        ) {
            let _ = self.log.set_len(u64::from(position));
            write_lock(&self.offset_index).truncate_to(base_offset);
            write_lock(&self.time_index).truncate_to(base_offset);
            return Err(e);
        }
        self.max_timestamp
            .fetch_max(header.max_timestamp, Ordering::AcqRel);
        if position == 0 {
            self.rolling_base_ms.store(now_ms, Ordering::Release);
        }
        self.size.store(position + len, Ordering::Release);
        self.next_offset.store(
            base_offset.0 + u64::from(header.offset_count()),
            Ordering::Release,
        );
        Ok(())
    }

    /// Byte position of the batch that starts at `offset`: where a truncation
    /// to `offset` cuts this segment. `None` when `offset` is at or past the
    /// segment's end (nothing to cut). `offset` must not be below the base
    /// offset.
    ///
    /// # Errors
    /// [`Error::NotBatchBoundary`] when `offset` lies inside a batch;
    /// `CorruptLog` for a bad header on the way.
    pub(crate) fn batch_start(&self, offset: Offset) -> Result<Option<u64>> {
        if offset >= self.next_offset() {
            return Ok(None);
        }
        if offset <= self.base_offset {
            return Ok(Some(0));
        }
        let limit = u64::from(self.size());
        let Some((position, header)) = self.translate(offset, limit)? else {
            return Err(self.corrupt(
                limit,
                format!("no batch holds offset {offset}, below the segment's end"),
            ));
        };
        if header.base_offset != offset.0 as i64 {
            return Err(Error::NotBatchBoundary {
                offset: offset.0,
                batch_base_offset: u64::try_from(header.base_offset).unwrap_or(0),
                batch_next_offset: u64::try_from(header.next_offset()).unwrap_or(0),
            });
        }
        Ok(Some(position))
    }

    /// Removes every batch at and above `offset`, which starts at `position`
    /// ([`batch_start`](Self::batch_start)): publishes the new end first (so no
    /// new read reaches past it), drops the index entries at and above
    /// `offset`, cuts the file, then recomputes the largest timestamp from the
    /// last index entry on (as [`load_tail`](Self::load_tail)). Not synced: the
    /// caller fsyncs. A read that loaded the old size before the cut gets a
    /// short read (an I/O error), never bytes of a later batch.
    ///
    /// The caller holds the log's writer lock. Returns the bytes removed.
    ///
    /// # Errors
    /// I/O errors; the segment may then end anywhere between `position` and its
    /// old size, and the caller must fence the log.
    pub(crate) fn truncate_to(&self, offset: Offset, position: u64) -> Result<u64> {
        let old_size = u64::from(self.size());
        let new_size = u32::try_from(position)
            .ok()
            .filter(|p| u64::from(*p) <= old_size)
            .ok_or_else(|| {
                self.corrupt(position, format!("cut beyond the {old_size}-byte segment"))
            })?;
        self.size.store(new_size, Ordering::Release);
        self.next_offset.store(offset.0, Ordering::Release);
        write_lock(&self.offset_index).truncate_to(offset);
        write_lock(&self.time_index).truncate_to(offset);
        self.log
            .set_len(position)
            .ctx("truncate segment", &self.log_path)?;
        let tail = self.load_tail()?;
        if let Some((at, reason)) = tail.invalid {
            return Err(self.corrupt(at, reason));
        }
        Ok(old_size - position)
    }

    /// Adds index entries for the batch about to sit at `position`, if an index
    /// interval has passed. Shared by append and recovery so both index alike.
    fn index_batch(
        &self,
        base_offset: Offset,
        position: FilePosition,
        len: u32,
        max_timestamp_before: i64,
    ) -> Result<()> {
        let since = self.bytes_since_index_entry.load(Ordering::Relaxed);
        if position.0 > 0 && since >= self.index_interval_bytes {
            write_lock(&self.offset_index).append(base_offset, position)?;
            write_lock(&self.time_index).maybe_append(max_timestamp_before, base_offset)?;
            self.bytes_since_index_entry.store(len, Ordering::Relaxed);
        } else {
            self.bytes_since_index_entry
                .store(since.saturating_add(len), Ordering::Relaxed);
        }
        Ok(())
    }

    /// Reads and validates the batch header at `position`, which must lie wholly
    /// below `limit`.
    fn header_at(
        &self,
        window: &mut FileWindow<'_>,
        position: u64,
        limit: u64,
    ) -> Result<BatchHeader> {
        let bytes = window.get(position, BATCH_HEADER_LEN)?.ok_or_else(|| {
            self.corrupt(position, "batch header runs past the end of the segment")
        })?;
        let header =
            BatchHeader::parse(bytes).map_err(|e| self.corrupt(position, e.to_string()))?;
        if position + header.total_len() as u64 > limit {
            return Err(self.corrupt(
                position,
                format!(
                    "batch of {} bytes runs past the end of the segment ({limit} bytes)",
                    header.total_len()
                ),
            ));
        }
        if header.base_offset < self.base_offset.0 as i64 {
            return Err(self.corrupt(
                position,
                format!(
                    "batch base offset {} is below the segment's {}",
                    header.base_offset, self.base_offset
                ),
            ));
        }
        Ok(header)
    }

    /// Position and header of the first batch whose last offset is `>= target`,
    /// looking only below `limit` bytes; `None` if there is none.
    ///
    /// # Errors
    /// `CorruptLog` naming the position of a bad header.
    fn translate(&self, target: Offset, limit: u64) -> Result<Option<(u64, BatchHeader)>> {
        let (_, start) = read_lock(&self.offset_index).lookup(target);
        let mut window = FileWindow::new(&self.log, &self.log_path, limit, HEADER_WINDOW_BYTES);
        let mut position = u64::from(start.0);
        while position < limit {
            let header = self.header_at(&mut window, position, limit)?;
            if header.last_offset() >= target.0 as i64 {
                return Ok(Some((position, header)));
            }
            position += header.total_len() as u64;
        }
        Ok(None)
    }

    /// Whole batches from the one containing `from`, up to `max_bytes` in total but
    /// at least one batch. `None` when the segment holds nothing at or after `from`.
    ///
    /// Headers are checked where the range is found: from the index entry to the
    /// first batch, and from the index entry nearest the budget to the last. The
    /// batches in between are not read (a fetch must not read what it sends with
    /// `sendfile`); consumers check each batch's CRC, as Kafka's do, and
    /// [`PartitionLog::read_batches`](crate::PartitionLog::read_batches) checks
    /// everything.
    ///
    /// Only batches that end at or before `upto` (an exclusive offset bound, such
    /// as a high watermark on a batch boundary) are included.
    ///
    /// # Errors
    /// `CorruptLog` naming the position of a bad header it walks.
    pub fn read(&self, from: Offset, max_bytes: u32, upto: Offset) -> Result<Option<FileSlice>> {
        let limit = u64::from(self.size());
        let upto = i64::try_from(upto.0).unwrap_or(i64::MAX);
        let Some((start, first)) = self.translate(from, limit)? else {
            return Ok(None);
        };
        if first.next_offset() > upto {
            return Ok(None);
        }
        let mut end = start + first.total_len() as u64;
        let mut next_offset = first.next_offset();
        let budget_end = start.saturating_add(u64::from(max_bytes)).min(limit);
        if end < budget_end {
            // Jump close to the budget with the index (its entries are batch starts),
            // then walk the last few headers.
            let (jump_offset, jump) =
                read_lock(&self.offset_index).lookup_by_position(FilePosition(budget_end as u32));
            if u64::from(jump.0) > end && jump_offset.0 as i64 <= upto {
                end = u64::from(jump.0);
                next_offset = jump_offset.0 as i64;
            }
            let mut window = FileWindow::new(&self.log, &self.log_path, limit, HEADER_WINDOW_BYTES);
            while end < budget_end {
                let header = self.header_at(&mut window, end, limit)?;
                let batch_end = end + header.total_len() as u64;
                if batch_end > budget_end || header.next_offset() > upto {
                    break;
                }
                end = batch_end;
                next_offset = header.next_offset();
            }
        }
        Ok(Some(FileSlice {
            file: self.log.clone(),
            path: self.log_path.clone(),
            first_offset: Offset(first.base_offset as u64),
            next_offset: Offset(next_offset as u64),
            position: FilePosition(start as u32),
            len: (end - start) as u32,
        }))
    }

    /// Scans batches from the last offset-index entry to the end of the file
    /// (headers only) and publishes the segment's end. Cheap: about one index
    /// interval of headers. Used for segments that were cleanly flushed.
    ///
    /// # Errors
    /// I/O errors. A bad header is reported in the outcome, not as an error.
    pub(crate) fn load_tail(&self) -> Result<ScanOutcome> {
        let start = read_lock(&self.offset_index).last_entry();
        let time_max = read_lock(&self.time_index)
            .last_entry()
            .map_or(-1, |(t, _)| t);
        let (offset, position) = start.unwrap_or((self.base_offset, FilePosition(0)));
        let mut outcome = self.scan(offset, u64::from(position.0), false, false)?;
        outcome.max_timestamp = outcome.max_timestamp.max(time_max);
        let since = outcome.valid_bytes.saturating_sub(u64::from(position.0));
        self.bytes_since_index_entry
            .store(u32::try_from(since).unwrap_or(u32::MAX), Ordering::Relaxed);
        self.publish(&outcome);
        Ok(outcome)
    }

    /// Validates every batch from position 0 (CRC included when `check_crc`),
    /// rebuilds both indexes, and truncates the file after the last valid batch.
    ///
    /// Returns what was kept; `invalid` says where and why the rest was cut.
    ///
    /// # Errors
    /// I/O errors.
    pub(crate) fn recover(&self, check_crc: bool) -> Result<ScanOutcome> {
        write_lock(&self.offset_index).reset();
        write_lock(&self.time_index).reset();
        self.bytes_since_index_entry.store(0, Ordering::Relaxed);
        self.max_timestamp.store(-1, Ordering::Release);
        // Indexes may have been trimmed; give them room to be rebuilt.
        let entries_needed =
            u64::from(self.size()) / u64::from(self.index_interval_bytes.max(1)) + 2;
        write_lock(&self.offset_index).resize(entries_needed * 8)?;
        write_lock(&self.time_index).resize(entries_needed * 12)?;
        let outcome = self.scan(self.base_offset, 0, check_crc, true)?;
        if outcome.invalid.is_some() {
            self.log
                .set_len(outcome.valid_bytes)
                .ctx("truncate segment", &self.log_path)?;
        }
        self.publish(&outcome);
        Ok(outcome)
    }

    fn publish(&self, outcome: &ScanOutcome) {
        if outcome.valid_bytes > 0 {
            self.rolling_base_ms.store(now_ms(), Ordering::Release);
        }
        self.size
            .store(outcome.valid_bytes as u32, Ordering::Release);
        self.next_offset
            .store(outcome.next_offset.0, Ordering::Release);
        self.max_timestamp
            .store(outcome.max_timestamp, Ordering::Release);
    }

    /// Walks batches from `position` (the start of the batch at `offset`) to the end
    /// of the file, stopping at the first invalid one. With `index`, adds index
    /// entries as append would.
    fn scan(
        &self,
        offset: Offset,
        position: u64,
        check_crc: bool,
        index: bool,
    ) -> Result<ScanOutcome> {
        let file_len = self
            .log
            .metadata()
            .ctx("stat segment", &self.log_path)?
            .len();
        let window_bytes = if check_crc {
            RECOVERY_WINDOW_BYTES
        } else {
            HEADER_WINDOW_BYTES
        };
        let mut window = FileWindow::new(&self.log, &self.log_path, file_len, window_bytes);
        let mut out = ScanOutcome {
            valid_bytes: position,
            next_offset: offset,
            max_timestamp: -1,
            batches: 0,
            invalid: None,
            file_bytes: file_len,
        };
        let mut expected = offset.0 as i64;
        let mut pos = position;
        while pos < file_len {
            let header = match self.header_at(&mut window, pos, file_len) {
                Ok(h) => h,
                Err(Error::CorruptLog { reason, .. }) => {
                    out.invalid = Some((pos, reason));
                    break;
                }
                Err(e) => return Err(e),
            };
            // Offsets are contiguous inside a segment (no compaction yet), and the
            // CRC does not cover base_offset: anything else is damage. A first
            // batch that does not match the file name is a misnamed or foreign
            // file, not a torn tail: refuse it rather than cut the whole file.
            if pos == 0 && header.base_offset != expected {
                return Err(self.corrupt(
                    0,
                    format!(
                        "first batch has base offset {} but the file name says {}: \
                         a misnamed or foreign segment file",
                        header.base_offset, self.base_offset
                    ),
                ));
            }
            if header.base_offset != expected {
                out.invalid = Some((
                    pos,
                    format!(
                        "batch base offset {} where {expected} was expected",
                        header.base_offset
                    ),
                ));
                break;
            }
            let total = header.total_len();
            if check_crc {
                let bytes = window.get(pos, total)?.unwrap_or_default();
                let got = record_batch::compute_crc(bytes);
                if got != header.crc {
                    out.invalid = Some((
                        pos,
                        format!(
                            "CRC-32C mismatch: stored {:#010x}, computed {got:#010x}",
                            header.crc
                        ),
                    ));
                    break;
                }
            }
            if index
                && let Err(e) = self.index_batch(
                    Offset(header.base_offset as u64),
                    FilePosition(pos as u32),
                    total as u32,
                    out.max_timestamp,
                )
            {
                out.invalid = Some((pos, format!("cannot index batch: {e}")));
                break;
            }
            out.max_timestamp = out.max_timestamp.max(header.max_timestamp);
            out.batches += 1;
            pos += total as u64;
            expected = header.next_offset();
            out.valid_bytes = pos;
            out.next_offset = Offset(expected as u64);
        }
        Ok(out)
    }

    /// Offset of the first batch whose max timestamp is `>= target`, starting from
    /// the time index's hint; `None` if no batch here qualifies.
    ///
    /// # Errors
    /// `CorruptLog` for a bad header on the way.
    pub fn find_batch_by_timestamp(&self, target: i64) -> Result<Option<(u64, BatchHeader)>> {
        let hint = read_lock(&self.time_index).lookup(target);
        let (_, start) = read_lock(&self.offset_index).lookup(hint);
        let limit = u64::from(self.size());
        let mut window = FileWindow::new(&self.log, &self.log_path, limit, HEADER_WINDOW_BYTES);
        let mut position = u64::from(start.0);
        while position < limit {
            let header = self.header_at(&mut window, position, limit)?;
            if header.max_timestamp >= target {
                return Ok(Some((position, header)));
            }
            position += header.total_len() as u64;
        }
        Ok(None)
    }

    /// Reads the one batch at `position` and checks its CRC.
    ///
    /// # Errors
    /// `CorruptLog` or I/O errors.
    pub fn batch_at(&self, position: u64) -> Result<RecordBatch> {
        let limit = u64::from(self.size());
        let mut window = FileWindow::new(&self.log, &self.log_path, limit, HEADER_WINDOW_BYTES);
        let header = self.header_at(&mut window, position, limit)?;
        let mut buf = Vec::with_capacity(header.total_len());
        append_file_range(
            &self.log,
            &self.log_path,
            &mut buf,
            header.total_len(),
            position,
        )?;
        let batch =
            RecordBatch::new(buf.into()).map_err(|e| self.corrupt(position, e.to_string()))?;
        batch
            .verify_crc()
            .map_err(|e| self.corrupt(position, e.to_string()))?;
        Ok(batch)
    }

    /// Makes the indexes of the active segment ready for appends: preallocated to
    /// `max_index_bytes`.
    ///
    /// # Errors
    /// I/O errors, `DiskFull`.
    pub(crate) fn preallocate_indexes(&self, config: &LogConfig) -> Result<()> {
        write_lock(&self.offset_index).resize(u64::from(config.max_index_bytes))?;
        write_lock(&self.time_index).resize(u64::from(config.max_index_bytes) / 8 * 12)
    }

    /// Trims both indexes to their valid entries (the segment stops being active).
    ///
    /// # Errors
    /// I/O errors.
    pub(crate) fn seal(&self) -> Result<()> {
        write_lock(&self.offset_index).trim()?;
        write_lock(&self.time_index).trim()
    }

    /// `fdatasync` of the log file only: the group-commit path.
    ///
    /// # Errors
    /// I/O errors.
    pub(crate) fn sync_log(&self) -> Result<()> {
        #[cfg(any(test, feature = "fault-injection"))]
        crate::fault_injection::before_sync(&self.log_path)
            .ctx("fdatasync segment", &self.log_path)?;
        self.log
            .sync_data()
            .ctx("fdatasync segment", &self.log_path)
    }

    /// Flushes the log and both indexes to disk.
    ///
    /// # Errors
    /// I/O errors.
    pub(crate) fn flush(&self) -> Result<()> {
        self.sync_log()?;
        read_lock(&self.offset_index).flush()?;
        read_lock(&self.time_index).flush()
    }

    /// Sanity-checks the indexes against the log; `false` means rebuild them.
    pub(crate) fn indexes_look_sane(&self, next_offset: Offset) -> bool {
        let oi = read_lock(&self.offset_index).sanity_check(u64::from(self.size()));
        let ti = read_lock(&self.time_index).sanity_check(next_offset);
        if let Err(e) = oi.and(ti) {
            tracing::warn!(partition = %self.partition, error = %e, "index fails its sanity check, rebuilding");
            return false;
        }
        true
    }

    /// Deletes the segment's files. Open [`FileSlice`]s keep reading the old inode.
    ///
    /// # Errors
    /// I/O errors other than "not found".
    pub(crate) fn delete_files(&self, dir: &Path) -> Result<()> {
        for kind in [SegmentFile::Log, SegmentFile::Index, SegmentFile::TimeIndex] {
            let path = segment_file(dir, self.base_offset, kind);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("delete segment file", &path, e)),
            }
        }
        Ok(())
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Writes all of `parts` at `position` with `pwritev`, looping on short writes.
fn write_all_at(file: &File, parts: &[&[u8]], mut position: u64) -> std::io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
    let mut slices = slices.as_mut_slice();
    while !slices.is_empty() {
        let n = rustix::io::pwritev(file, slices, position)?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        position += n as u64;
        IoSlice::advance_slices(&mut slices, n);
    }
    Ok(())
}

/// A read-ahead window over a file for walking batches with few syscalls.
///
/// The first read is small (a lookup usually needs one header near the index
/// entry); each miss doubles the read, up to `max_chunk`. Measured: a fixed
/// 16 KiB first read made a random `read` cost 3.6 µs, as much as the 16 KiB pread.
struct FileWindow<'a> {
    file: &'a File,
    path: &'a Path,
    file_len: u64,
    chunk: usize,
    max_chunk: usize,
    buf: Vec<u8>,
    start: u64,
}

/// First read of a header walk: a header and a few small batches.
const FIRST_WINDOW_BYTES: usize = 1024;

impl<'a> FileWindow<'a> {
    fn new(file: &'a File, path: &'a Path, file_len: u64, max_chunk: usize) -> Self {
        FileWindow {
            file,
            path,
            file_len,
            chunk: FIRST_WINDOW_BYTES.min(max_chunk),
            max_chunk,
            buf: Vec::new(),
            start: 0,
        }
    }

    /// Bytes `[position, position + n)`, or `None` if they run past the file length.
    fn get(&mut self, position: u64, n: usize) -> Result<Option<&[u8]>> {
        let end = position.saturating_add(n as u64);
        if end > self.file_len {
            return Ok(None);
        }
        let have = position >= self.start && end <= self.start + self.buf.len() as u64;
        if !have {
            let want = (n.max(self.chunk) as u64).min(self.file_len - position) as usize;
            self.chunk = (self.chunk * 2).min(self.max_chunk);
            self.buf.clear();
            append_file_range(self.file, self.path, &mut self.buf, want, position)?;
            self.start = position;
        }
        let from = (position - self.start) as usize;
        Ok(self.buf.get(from..from + n))
    }
}
