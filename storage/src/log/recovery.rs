//! Open-time recovery: which segments to trust, which to CRC-check and cut.
//!
//! The recovery point (`recovery-point`, see [`crate::checkpoint`]) says below
//! which offset every segment is on disk, and whether the log was closed
//! cleanly. A segment that ends at or below it (or every segment, after a clean
//! close) is *trusted*: only the tail after its last index entry is walked
//! (headers only) and its indexes sanity-checked. Every other segment is
//! recovered: each batch CRC-checked, both indexes rebuilt, the file cut at
//! the first torn or corrupt batch. A trusted segment that fails its checks
//! is recovered too.
//!
//! Afterwards everything recovered is flushed, and the recovery point is
//! rewritten as not clean at the recovered log end unless the clean one still
//! holds, so that the next crash scans only what this process writes.
//!
//! Runs before the log is shared: single-threaded, no locks.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::checkpoint::Checkpoint;
use crate::config::LogConfig;
use crate::error::{Error, IoContext, Result};
use crate::file_names::{RECOVERY_POINT_FILE, SegmentFile, TMP_SUFFIX, parse_segment_file};
use crate::log::RecoveryReport;
use crate::metrics::StorageMetrics;
use crate::offset::Offset;
use crate::segment::Segment;

/// What [`recover`] hands the new log.
pub(super) struct Recovered {
    pub(super) segments: BTreeMap<Offset, Arc<Segment>>,
    /// The last segment: the one appends go to.
    pub(super) active: Arc<Segment>,
    pub(super) log_start: Offset,
    pub(super) log_end: Offset,
    /// The recovery offset now in the checkpoint file.
    pub(super) checkpointed: Offset,
    /// The checkpoint on disk still says "clean" (nothing to scan next time).
    pub(super) clean: bool,
    pub(super) report: RecoveryReport,
}

/// Opens every segment in `dir`, recovering those the recovery point does not
/// cover (see the module docs); creates the first segment of an empty log.
///
/// # Errors
/// I/O errors, and `CorruptLog` when segments overlap or a segment file is
/// misnamed.
pub(super) fn recover(
    dir: &Path,
    name: &Arc<str>,
    config: &LogConfig,
    metrics: &StorageMetrics,
) -> Result<Recovered> {
    let checkpoint = match Checkpoint::read(dir) {
        Ok(cp) => cp,
        Err(e) => {
            tracing::warn!(partition = %name, error = %e, "unreadable recovery point, scanning every segment");
            None
        }
    };
    let bases = list_segments(dir, name)?;
    let clean = checkpoint.is_some_and(|c| c.clean);
    let recovery_point = checkpoint.map_or(Offset(0), |c| c.recovery_offset);
    let mut report = RecoveryReport {
        clean_shutdown: clean,
        ..RecoveryReport::default()
    };
    let mut segments = BTreeMap::new();
    let mut needs_sync = Vec::new();
    for (i, base) in bases.iter().enumerate() {
        let next_base = bases.get(i + 1).copied();
        let (segment, index_missing) = Segment::open(dir, name.clone(), *base, config)?;
        let trusted = match next_base {
            None => clean,
            Some(next) => clean || next <= recovery_point,
        };
        let mut recovered = false;
        let mut outcome = None;
        if trusted {
            let tail = segment.load_tail()?;
            let tail_ok = tail.invalid.is_none()
                && !index_missing
                && segment.indexes_look_sane(tail.next_offset)
                && (next_base.is_some() || tail.next_offset == recovery_point);
            if tail_ok {
                outcome = Some(tail);
            } else {
                tracing::warn!(partition = %name, segment = %base, "flushed segment fails its checks, recovering it");
                report.indexes_rebuilt += 1;
            }
        }
        let outcome = match outcome {
            Some(o) => o,
            None => {
                recovered = true;
                report.segments_recovered += 1;
                segment.recover(true)?
            }
        };
        if let Some((position, reason)) = &outcome.invalid {
            let dropped = outcome.file_bytes.saturating_sub(outcome.valid_bytes);
            report.truncated_bytes += dropped;
            metrics.recovery_truncated_bytes.increment(dropped);
            tracing::warn!(
                partition = %name,
                path = %segment.log_path().display(),
                position,
                %reason,
                truncated_bytes = dropped,
                first_dropped_offset = %outcome.next_offset,
                "truncated log at the first invalid batch"
            );
        }
        if let Some(next) = next_base {
            if outcome.next_offset > next {
                return Err(Error::CorruptLog {
                    partition: name.to_string(),
                    path: segment.log_path().to_path_buf(),
                    position: outcome.valid_bytes,
                    reason: format!(
                        "segment ends at offset {} but the next segment starts at {next}",
                        outcome.next_offset
                    ),
                });
            }
            if outcome.next_offset < next && outcome.invalid.is_some() {
                tracing::error!(partition = %name, from = %outcome.next_offset, to = %next,
                    "offsets lost to corruption in a flushed segment; later segments kept");
            }
            segment.seal()?;
        } else if let Err(e) = segment.preallocate_indexes(config) {
            // On a full disk the log must still open for reads: keep the
            // index at its size; appends roll (and get DiskFull) until space
            // is freed.
            if !e.is_retriable() {
                return Err(e);
            }
            tracing::warn!(partition = %name, error = %e, "cannot preallocate the active index");
        }
        let segment = Arc::new(segment);
        if recovered {
            needs_sync.push(segment.clone());
        }
        segments.insert(*base, segment);
    }
    if segments.is_empty() {
        let segment = Arc::new(Segment::create(dir, name.clone(), recovery_point, config)?);
        segments.insert(recovery_point, segment);
    }
    let active = segments
        .values()
        .next_back()
        .cloned()
        .ok_or_else(|| Error::Closed(name.to_string()))?;
    let log_start = segments.keys().next().copied().unwrap_or_default();
    let log_end = active.next_offset();
    // What a previous process left in the page cache may not be on disk yet:
    // make it durable before anyone is told it is.
    for segment in &needs_sync {
        segment.flush()?;
    }
    // A clean checkpoint holds only if the log ends exactly where it says;
    // otherwise (open cut the log, or found more) rewrite it as not clean.
    let clean = clean && log_end == recovery_point;
    let mut checkpointed = recovery_point;
    if !clean {
        Checkpoint {
            recovery_offset: log_end,
            clean: false,
        }
        .write(dir)?;
        checkpointed = log_end;
    }
    if report.segments_recovered > 0 || report.truncated_bytes > 0 {
        tracing::info!(partition = %name, ?report, %log_end, "log recovered");
    }
    Ok(Recovered {
        segments,
        active,
        log_start,
        log_end,
        checkpointed,
        clean,
        report,
    })
}

/// Lists the base offsets of the segments in `dir`, removing leftovers that are
/// safe to remove (temp files, indexes without a log) and logging anything else
/// that does not belong.
fn list_segments(dir: &Path, name: &str) -> Result<Vec<Offset>> {
    let mut logs = Vec::new();
    let mut indexes = Vec::new();
    for entry in std::fs::read_dir(dir).ctx("list partition directory", dir)? {
        let entry = entry.ctx("list partition directory", dir)?;
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            tracing::warn!(partition = name, path = %entry.path().display(), "ignoring stray file with a non-UTF-8 name");
            continue;
        };
        match parse_segment_file(file_name) {
            Some((base, SegmentFile::Log)) => logs.push(base),
            Some((base, _)) => indexes.push((base, entry.path())),
            None if file_name == RECOVERY_POINT_FILE => {}
            None if file_name.ends_with(&format!(".{TMP_SUFFIX}")) => {
                tracing::info!(partition = name, path = %entry.path().display(), "removing leftover temp file");
                let path = entry.path();
                std::fs::remove_file(&path).ctx("remove temp file", &path)?;
            }
            None => {
                tracing::warn!(partition = name, path = %entry.path().display(), "ignoring stray file in partition directory");
            }
        }
    }
    logs.sort();
    for (base, path) in indexes {
        if logs.binary_search(&base).is_err() {
            tracing::warn!(partition = name, path = %path.display(), "removing index without a segment");
            std::fs::remove_file(&path).ctx("remove orphan index", &path)?;
        }
    }
    Ok(logs)
}

#[cfg(test)]
#[expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::config::Durability;
    use crate::file_names::segment_file;
    use crate::log::PartitionLog;
    use crate::log::test_support::{all_batches, batch, config, crash};

    fn open(dir: &Path) -> PartitionLog {
        PartitionLog::open(dir, "t-0", config(Durability::None, 1024)).unwrap()
    }

    /// 8 batches of 2 records (offsets 0..16), several segments.
    fn fill(log: &PartitionLog) {
        for i in 0..8 {
            log.append(&batch(i, 2, 150)).unwrap();
        }
        assert!(log.segments().len() > 2);
    }

    #[test]
    fn an_empty_directory_opens_an_empty_log_at_offset_zero() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path());
        assert_eq!(log.log_start_offset(), Offset(0));
        assert_eq!(log.log_end_offset(), Offset(0));
        assert_eq!(log.segments().len(), 1);
        assert!(!log.recovery_report().clean_shutdown);
        assert_eq!(
            Checkpoint::read(dir.path()).unwrap(),
            Some(Checkpoint {
                recovery_offset: Offset(0),
                clean: false
            }),
            "the checkpoint exists before the first append"
        );
    }

    #[test]
    fn a_clean_close_reopens_without_scanning() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path());
        fill(&log);
        let before = all_batches(&log);
        log.close().unwrap();
        drop(log);
        let log = open(dir.path());
        let report = log.recovery_report();
        assert!(report.clean_shutdown);
        assert_eq!(report.segments_recovered, 0);
        assert_eq!(report.truncated_bytes, 0);
        assert_eq!(all_batches(&log), before);
    }

    #[test]
    fn a_crash_recovers_only_the_segments_after_the_recovery_point() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path());
        fill(&log);
        let before = all_batches(&log);
        let segments = log.segments().len();
        crash(log);
        let recovery_point = Checkpoint::read(dir.path()).unwrap().unwrap();
        assert!(!recovery_point.clean);
        let log = open(dir.path());
        let report = log.recovery_report().clone();
        assert!(!report.clean_shutdown);
        // The roll flushes moved the recovery point to the active segment.
        assert_eq!(report.segments_recovered, 1, "{report:?} of {segments}");
        assert_eq!(all_batches(&log), before);
        assert_eq!(log.log_end_offset(), Offset(16));
    }

    #[test]
    fn a_torn_tail_is_cut_at_the_last_whole_batch() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path());
        fill(&log);
        let before = all_batches(&log);
        let active = log.segments().last().unwrap().log_path().to_path_buf();
        crash(log);
        // Half a batch, as a crash in the middle of a write leaves it.
        let half = &batch(99, 2, 150)[..100];
        std::fs::OpenOptions::new()
            .append(true)
            .open(&active)
            .unwrap()
            .write_all(half)
            .unwrap();
        let log = open(dir.path());
        assert_eq!(log.recovery_report().truncated_bytes, 100);
        assert_eq!(all_batches(&log), before);
        assert_eq!(
            log.append(&batch(9, 1, 10)).unwrap().base_offset,
            Offset(16)
        );
    }

    #[test]
    fn a_corrupt_batch_in_the_unflushed_tail_cuts_the_log_there() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), "t-0", config(Durability::None, 1 << 20)).unwrap();
        for i in 0..4 {
            log.append(&batch(i, 2, 50)).unwrap();
        }
        let before = all_batches(&log);
        let path = log.segments()[0].log_path().to_path_buf();
        crash(log);
        let mut bytes = std::fs::read(&path).unwrap();
        let third = before[0].len() + before[1].len();
        bytes[third + 70] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let log = PartitionLog::open(dir.path(), "t-0", config(Durability::None, 1 << 20)).unwrap();
        assert_eq!(all_batches(&log), before[..2]);
        assert_eq!(log.log_end_offset(), Offset(4));
    }

    #[test]
    fn leftover_temp_files_and_orphan_indexes_are_removed_strays_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path());
        fill(&log);
        log.close().unwrap();
        drop(log);
        let orphan = segment_file(dir.path(), Offset(1_000), SegmentFile::Index);
        let tmp = dir.path().join(format!("recovery-point.{TMP_SUFFIX}"));
        let stray = dir.path().join("notes.txt");
        for path in [&orphan, &tmp, &stray] {
            std::fs::write(path, b"x").unwrap();
        }
        let log = open(dir.path());
        assert!(!orphan.exists());
        assert!(!tmp.exists());
        assert!(stray.exists(), "not ours: left alone");
        assert_eq!(log.log_end_offset(), Offset(16));
    }

    #[test]
    fn a_missing_index_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path());
        fill(&log);
        let before = all_batches(&log);
        let first = log.segments()[0].base_offset();
        log.close().unwrap();
        drop(log);
        std::fs::remove_file(segment_file(dir.path(), first, SegmentFile::Index)).unwrap();
        let log = open(dir.path());
        assert_eq!(log.recovery_report().indexes_rebuilt, 1);
        assert_eq!(all_batches(&log), before);
    }

    #[test]
    fn a_segment_named_below_its_predecessors_end_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path());
        fill(&log);
        let second = log.segments()[1].base_offset();
        log.close().unwrap();
        drop(log);
        for kind in [SegmentFile::Log, SegmentFile::Index, SegmentFile::TimeIndex] {
            std::fs::rename(
                segment_file(dir.path(), second, kind),
                segment_file(dir.path(), Offset(second.0 - 1), kind),
            )
            .unwrap();
        }
        std::fs::remove_file(dir.path().join(RECOVERY_POINT_FILE)).unwrap();
        let opened = PartitionLog::open(dir.path(), "t-0", config(Durability::None, 1024));
        assert!(
            matches!(opened, Err(Error::CorruptLog { .. })),
            "{opened:?}"
        );
    }
}
