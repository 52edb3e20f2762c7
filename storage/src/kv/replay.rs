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
