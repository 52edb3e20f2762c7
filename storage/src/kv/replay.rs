//! Opening the store: pick the snapshot to start from and replay the log from
//! its offset (see the store's "Crash safety" 5). Runs once, before the store
//! is shared.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::file_names::KV_LOCK_FILE;
use crate::kv::KvOpenReport;
use crate::kv::snapshot::read_snapshot;
use crate::log::PartitionLog;
use crate::offset::Offset;

/// Bytes read from the log per call while replaying at open.
const REPLAY_READ_BYTES: u32 = 1 << 20;

/// Takes the directory's flock, so two stores never share a directory.
pub(super) fn lock_dir(dir: &Path) -> Result<File> {
    crate::dir_lock::lock_exclusive(dir, KV_LOCK_FILE, "lock kv directory")
}

/// The state replay starts from.
pub(super) struct Base {
    pub(super) offset: Offset,
    pub(super) path: Option<PathBuf>,
    pub(super) map: BTreeMap<Bytes, Bytes>,
}

/// Picks the newest snapshot that checks and that the log can continue from;
/// see "Crash safety" 5.
pub(super) fn choose_snapshot(
    dir: &Path,
    log_dir: &Path,
    snapshots: &[(Offset, PathBuf)],
    log: &PartitionLog,
    report: &mut KvOpenReport,
) -> Result<Base> {
    let log_start = log.log_start_offset();
    let log_end = log.log_end_offset();
    let mut newest_corrupt: Option<(PathBuf, String)> = None;
    let mut too_old: Option<(PathBuf, Offset)> = None;
    for (offset, path) in snapshots.iter().rev() {
        let map = match read_snapshot(path, *offset) {
            Ok(map) => map,
            Err(Error::CorruptFile { path, reason }) => {
                tracing::error!(path = %path.display(), %reason, "corrupt kv snapshot, trying an older one");
                report.corrupt_snapshots.push(path.clone());
                newest_corrupt.get_or_insert((path, reason));
                continue;
            }
            Err(e) => return Err(e),
        };
        if *offset > log_end {
            return Err(Error::CorruptFile {
                path: log_dir.to_path_buf(),
                reason: format!(
                    "the log ends at offset {log_end}, below snapshot {} (offset {offset}): \
                     records the log had fsynced are missing",
                    path.display()
                ),
            });
        }
        if *offset < log_start {
            too_old = Some((path.clone(), *offset));
            break;
        }
        report.snapshot = Some(path.clone());
        report.snapshot_offset = *offset;
        report.snapshot_entries = map.len();
        return Ok(Base {
            offset: *offset,
            path: Some(path.clone()),
            map,
        });
    }
    if too_old.is_none() && log_start == Offset(0) {
        // The empty map at offset 0 is the oldest snapshot of all.
        return Ok(Base {
            offset: Offset(0),
            path: None,
            map: BTreeMap::new(),
        });
    }
    if let Some((path, reason)) = newest_corrupt {
        return Err(Error::CorruptFile {
            path,
            reason: format!(
                "{reason}; no older snapshot can replace it: the log starts at offset \
                 {log_start}, after every older snapshot"
            ),
        });
    }
    Err(match too_old {
        Some((path, offset)) => Error::CorruptFile {
            path,
            reason: format!(
                "snapshot is as of offset {offset} but the log starts at {log_start}: \
                 the records between are lost"
            ),
        },
        None => Error::CorruptFile {
            path: dir.to_path_buf(),
            reason: format!(
                "no snapshot, and the log starts at offset {log_start}: the records below it are lost"
            ),
        },
    })
}

/// Applies the log's batches from `from` to its end to `map`.
pub(super) fn replay(
    log: &PartitionLog,
    log_dir: &Path,
    from: Offset,
    map: &mut BTreeMap<Bytes, Bytes>,
    report: &mut KvOpenReport,
) -> Result<()> {
    let corrupt = |reason: String| Error::CorruptFile {
        path: log_dir.to_path_buf(),
        reason,
    };
    let end = log.log_end_offset();
    let mut next = from;
    while next < end {
        let batches = log.read_batches(next, REPLAY_READ_BYTES)?;
        if batches.is_empty() {
            return Err(corrupt(format!(
                "no batch at offset {next} below the log end {end}"
            )));
        }
        for batch in batches {
            let header = batch.header();
            let base = u64::try_from(header.base_offset).unwrap_or(u64::MAX);
            let batch_next = u64::try_from(header.next_offset()).unwrap_or(0);
            // Contiguity: the first batch holds `next` (it starts there unless a
            // snapshot offset fell inside a batch), and each follows the last.
            if base > next.0 || batch_next <= next.0 {
                return Err(corrupt(format!(
                    "expected a batch holding offset {next}, found offsets {base}..{batch_next}: \
                     the log has a gap"
                )));
            }
            let records = batch
                .records()
                .map_err(|e| corrupt(format!("batch at offset {base} does not decode: {e}")))?;
            for record in records {
                let offset = u64::try_from(record.offset).unwrap_or(0);
                if offset < next.0 {
                    continue;
                }
                let Some(key) = record.key else {
                    return Err(corrupt(format!("record at offset {offset} has no key")));
                };
                // Copy out of the batch buffer: a slice would keep the whole
                // read buffer alive for as long as the key lives.
                match record.value {
                    Some(value) => {
                        let value = Bytes::copy_from_slice(&value);
                        if let Some(slot) = map.get_mut(key.as_ref()) {
                            *slot = value;
                        } else {
                            map.insert(Bytes::copy_from_slice(&key), value);
                        }
                    }
                    None => {
                        map.remove(key.as_ref());
                    }
                }
                report.records_replayed += 1;
            }
            report.batches_replayed += 1;
            report.bytes_replayed += batch.as_bytes().len() as u64;
            next = Offset(batch_next);
        }
    }
    Ok(())
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use crate::file_names::kv_snapshot_file;
    use crate::kv::snapshot::write_snapshot;
    use crate::kv::{KvConfig, KvOp, encode_batch};

    fn log(dir: &Path) -> PartitionLog {
        PartitionLog::open(dir, "kv-test", KvConfig::default().log_config()).unwrap()
    }

    fn append(log: &PartitionLog, ops: &[KvOp<'_>]) {
        log.append(&encode_batch(ops, 1 << 20).unwrap()).unwrap();
    }

    fn map(entries: &[(&str, &str)]) -> BTreeMap<Bytes, Bytes> {
        entries
            .iter()
            .map(|(k, v)| (Bytes::from(k.to_string()), Bytes::from(v.to_string())))
            .collect()
    }

    /// Offsets 0..2: a=1 b=2; 2..4: a=3, delete b; 4: c=4.
    fn filled(dir: &Path) -> PartitionLog {
        let log = log(dir);
        append(&log, &[KvOp::Put(b"a", b"1"), KvOp::Put(b"b", b"2")]);
        append(&log, &[KvOp::Put(b"a", b"3"), KvOp::Delete(b"b")]);
        append(&log, &[KvOp::Put(b"c", b"4")]);
        log
    }

    #[test]
    fn replay_applies_puts_and_tombstones_in_log_order() {
        let dir = tempfile::tempdir().unwrap();
        let log = filled(dir.path());
        let mut m = BTreeMap::new();
        let mut report = KvOpenReport::default();
        replay(&log, dir.path(), Offset(0), &mut m, &mut report).unwrap();
        assert_eq!(m, map(&[("a", "3"), ("c", "4")]));
        assert_eq!(report.batches_replayed, 3);
        assert_eq!(report.records_replayed, 5);
    }

    #[test]
    fn replay_from_inside_a_batch_skips_the_records_below_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        let log = filled(dir.path());
        // A snapshot as of offset 3 already holds a=3 and b=2; replay must not
        // put a back, only delete b (offset 3) and put c.
        let mut m = map(&[("a", "snapshot"), ("b", "2")]);
        let mut report = KvOpenReport::default();
        replay(&log, dir.path(), Offset(3), &mut m, &mut report).unwrap();
        assert_eq!(m, map(&[("a", "snapshot"), ("c", "4")]));
        assert_eq!(report.records_replayed, 2);
    }

    #[test]
    fn choose_snapshot_takes_the_newest_valid_one_and_reports_corrupt_ones() {
        let dir = tempfile::tempdir().unwrap();
        let log_dir = dir.path().join("log");
        let log = filled(&log_dir);
        let older = kv_snapshot_file(dir.path(), Offset(2));
        write_snapshot(&older, Offset(2), &map(&[("a", "1"), ("b", "2")])).unwrap();
        let newest = kv_snapshot_file(dir.path(), Offset(4));
        write_snapshot(&newest, Offset(4), &map(&[("a", "3")])).unwrap();
        std::fs::write(&newest, b"not a snapshot").unwrap();
        let snapshots = vec![(Offset(2), older.clone()), (Offset(4), newest.clone())];
        let mut report = KvOpenReport::default();
        let base = choose_snapshot(dir.path(), &log_dir, &snapshots, &log, &mut report).unwrap();
        assert_eq!(base.offset, Offset(2));
        assert_eq!(base.path, Some(older));
        assert_eq!(base.map.len(), 2);
        assert_eq!(report.corrupt_snapshots, vec![newest]);
        assert_eq!(report.snapshot_offset, Offset(2));
    }

    #[test]
    fn a_snapshot_beyond_the_log_end_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let log_dir = dir.path().join("log");
        let log = filled(&log_dir);
        let ahead = kv_snapshot_file(dir.path(), Offset(9));
        write_snapshot(&ahead, Offset(9), &BTreeMap::new()).unwrap();
        let mut report = KvOpenReport::default();
        let chosen = choose_snapshot(
            dir.path(),
            &log_dir,
            &[(Offset(9), ahead)],
            &log,
            &mut report,
        );
        match chosen {
            Err(Error::CorruptFile { path, .. }) => assert_eq!(path, log_dir),
            other => panic!("{:?}", other.map(|b| b.offset)),
        }
    }

    #[test]
    fn no_snapshot_and_a_log_from_offset_zero_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        let log_dir = dir.path().join("log");
        let log = filled(&log_dir);
        let mut report = KvOpenReport::default();
        let base = choose_snapshot(dir.path(), &log_dir, &[], &log, &mut report).unwrap();
        assert_eq!(base.offset, Offset(0));
        assert!(base.path.is_none() && base.map.is_empty());
    }
}
