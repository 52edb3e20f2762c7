//! The key-value store's snapshot files: the whole map as of one log offset.
//!
//! # Snapshot format
//! ```text
//! offset  size  field
//! 0       4     magic            "WKVS"
//! 4       1     version u8       = 1
//! 5       8     snapshot_offset  u64  the map holds every batch below this log
//!                                       offset and nothing above; equals the
//!                                       offset in the file name
//! 13      8     entry_count      u64
//! 21      ...   entry_count entries, keys strictly ascending (bytewise):
//!                 key_len u32 | key | value_len u32 | value
//! end-4   4     crc32c u32       CRC-32C of every byte before it (0..end-4)
//! ```
//! All integers big-endian. The whole file is read and its CRC checked before
//! any entry is parsed; a bad magic, version, checksum, length or order is a
//! [`Error::CorruptFile`] naming the file and the byte position.
//!
//! Written atomically (temp file, fsync, rename, fsync of the directory; see the
//! store's "Crash safety" 3). Pure file functions: no locks, safe from any
//! thread; the store serializes compactions.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::checkpoint::sync_dir;
use crate::error::{Error, IoContext, Result};
use crate::file_names::{TMP_SUFFIX, parse_kv_snapshot_file, tmp_path};
use crate::offset::Offset;

/// Buffer of the snapshot writer.
const SNAPSHOT_WRITE_BUFFER: usize = 1 << 20;

const SNAPSHOT_MAGIC: &[u8; 4] = b"WKVS";
const SNAPSHOT_VERSION: u8 = 1;
/// magic + version + snapshot_offset + entry_count.
const SNAPSHOT_HEADER_LEN: usize = 21;
/// The trailing CRC-32C.
const SNAPSHOT_TRAILER_LEN: usize = 4;
/// The smallest entry: two empty length-prefixed fields.
const MIN_ENTRY_LEN: usize = 8;

/// The snapshot files in `dir`, oldest first, after removing leftover temp files
/// of interrupted compactions.
pub(super) fn list_snapshots(dir: &Path) -> Result<Vec<(Offset, PathBuf)>> {
    let mut snapshots = Vec::new();
    for entry in std::fs::read_dir(dir).ctx("list kv directory", dir)? {
        let entry = entry.ctx("list kv directory", dir)?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if let Some(offset) = parse_kv_snapshot_file(&name) {
            snapshots.push((offset, path));
        } else if name
            .strip_suffix(TMP_SUFFIX)
            .and_then(|n| n.strip_suffix('.'))
            .and_then(parse_kv_snapshot_file)
            .is_some()
        {
            tracing::info!(path = %path.display(), "removing the temp file of an interrupted snapshot");
            std::fs::remove_file(&path).ctx("remove temp snapshot", &path)?;
        }
    }
    snapshots.sort();
    Ok(snapshots)
}

/// Deletes the snapshot files below `offset`; returns how many.
pub(super) fn remove_snapshots_before(dir: &Path, offset: Offset) -> Result<usize> {
    let mut removed = 0;
    for (older, path) in list_snapshots(dir)? {
        if older < offset {
            std::fs::remove_file(&path).ctx("remove old snapshot", &path)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// A writer that keeps the CRC-32C and length of what went through it.
struct CrcWriter<W> {
    inner: W,
    crc: u32,
    bytes: u64,
}

impl<W: Write> CrcWriter<W> {
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.inner.write_all(bytes)?;
        self.crc = crc32c::crc32c_append(self.crc, bytes);
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    fn put_len(&mut self, len: usize) -> std::io::Result<()> {
        let len = u32::try_from(len).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "key or value longer than 4 GiB",
            )
        })?;
        self.put(&len.to_be_bytes())
    }
}

/// Writes `map` as the snapshot at `offset` to `path` atomically (see "Crash
/// safety" 3); returns the file's size.
pub(super) fn write_snapshot(
    path: &Path,
    offset: Offset,
    map: &BTreeMap<Bytes, Bytes>,
) -> Result<u64> {
    let tmp = tmp_path(path);
    let written = (|| -> Result<u64> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .ctx("create snapshot", &tmp)?;
        let mut w = CrcWriter {
            inner: BufWriter::with_capacity(SNAPSHOT_WRITE_BUFFER, file),
            crc: 0,
            bytes: 0,
        };
        (|| {
            w.put(SNAPSHOT_MAGIC)?;
            w.put(&[SNAPSHOT_VERSION])?;
            w.put(&offset.0.to_be_bytes())?;
            w.put(&(map.len() as u64).to_be_bytes())?;
            for (key, value) in map {
                w.put_len(key.len())?;
                w.put(key)?;
                w.put_len(value.len())?;
                w.put(value)?;
            }
            let crc = w.crc;
            w.put(&crc.to_be_bytes())?;
            w.inner.flush()
        })()
        .ctx("write snapshot", &tmp)?;
        let bytes = w.bytes;
        let file = w
            .inner
            .into_inner()
            .map_err(|e| Error::io("write snapshot", &tmp, e.into_error()))?;
        file.sync_all().ctx("fsync snapshot", &tmp)?;
        Ok(bytes)
    })();
    let bytes = match written {
        Ok(bytes) => bytes,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, path).ctx("rename snapshot", path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))?;
    Ok(bytes)
}

/// Reads and checks the snapshot at `path`, whose name says `offset`.
pub(super) fn read_snapshot(path: &Path, offset: Offset) -> Result<BTreeMap<Bytes, Bytes>> {
    let bytes = std::fs::read(path).ctx("read snapshot", path)?;
    decode_snapshot(&bytes, path, offset)
}

/// A bounds-checked reader over snapshot bytes.
struct Cursor<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.position.checked_add(n)?;
        let taken = self.bytes.get(self.position..end)?;
        self.position = end;
        Some(taken)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
    }
}

/// Parses a snapshot; see the format in the module docs.
fn decode_snapshot(
    bytes: &[u8],
    path: &Path,
    name_offset: Offset,
) -> Result<BTreeMap<Bytes, Bytes>> {
    let corrupt = |position: usize, reason: String| Error::CorruptFile {
        path: path.to_path_buf(),
        reason: format!("at byte {position}: {reason}"),
    };
    let Some((body, trailer)) = bytes
        .len()
        .checked_sub(SNAPSHOT_TRAILER_LEN)
        .filter(|n| *n >= SNAPSHOT_HEADER_LEN)
        .and_then(|n| bytes.split_at_checked(n))
    else {
        return Err(corrupt(
            bytes.len(),
            format!(
                "file of {} bytes is shorter than a snapshot's header and checksum ({} bytes)",
                bytes.len(),
                SNAPSHOT_HEADER_LEN + SNAPSHOT_TRAILER_LEN
            ),
        ));
    };
    let mut header = Cursor {
        bytes: body,
        position: 0,
    };
    if header.take(4) != Some(SNAPSHOT_MAGIC.as_slice()) {
        return Err(corrupt(0, "bad magic (not a kv snapshot)".into()));
    }
    match header.take(1) {
        Some([SNAPSHOT_VERSION]) => {}
        other => {
            return Err(corrupt(
                4,
                format!("unknown version {:?}", other.and_then(|v| v.first())),
            ));
        }
    }
    let stored = <[u8; 4]>::try_from(trailer)
        .map(u32::from_be_bytes)
        .map_err(|_| corrupt(body.len(), "short checksum".into()))?;
    let computed = crc32c::crc32c(body);
    if stored != computed {
        return Err(corrupt(
            body.len(),
            format!(
                "CRC-32C mismatch over bytes 0..{}: stored {stored:#010x}, computed {computed:#010x}",
                body.len()
            ),
        ));
    }
    let (Some(offset), Some(count)) = (header.u64(), header.u64()) else {
        return Err(corrupt(5, "short header".into()));
    };
    if offset != name_offset.0 {
        return Err(corrupt(
            5,
            format!("snapshot_offset {offset} differs from the file name's {name_offset}"),
        ));
    }
    let room = body.len().saturating_sub(SNAPSHOT_HEADER_LEN) / MIN_ENTRY_LEN;
    if count > room as u64 {
        return Err(corrupt(
            13,
            format!("entry_count {count} cannot fit in {} bytes", body.len()),
        ));
    }
    let mut entries: Vec<(Bytes, Bytes)> = Vec::with_capacity(count as usize);
    let mut cursor = header;
    for i in 0..count {
        let at = cursor.position;
        let entry = (|| {
            let key_len = cursor.u32()? as usize;
            let key = cursor.take(key_len)?;
            let value_len = cursor.u32()? as usize;
            let value = cursor.take(value_len)?;
            Some((key, value))
        })();
        let Some((key, value)) = entry else {
            return Err(corrupt(
                at,
                format!("entry {i} of {count} runs past the end"),
            ));
        };
        if entries
            .last()
            .is_some_and(|(previous, _)| previous.as_ref() >= key)
        {
            return Err(corrupt(
                at,
                format!("entry {i}: keys are not in ascending order"),
            ));
        }
        entries.push((Bytes::copy_from_slice(key), Bytes::copy_from_slice(value)));
    }
    if cursor.position != body.len() {
        return Err(corrupt(
            cursor.position,
            format!(
                "{} bytes after the last entry",
                body.len() - cursor.position
            ),
        ));
    }
    // Sorted input: BTreeMap builds it in one pass.
    Ok(entries.into_iter().collect())
}

#[cfg(test)]
#[expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
mod tests {
    use super::*;
    use crate::file_names::kv_snapshot_file;

    fn sample() -> BTreeMap<Bytes, Bytes> {
        (0..50u32)
            .map(|i| {
                (
                    Bytes::from(format!("group/{i:03}")),
                    Bytes::from(vec![i as u8; (i % 7) as usize]),
                )
            })
            .collect()
    }

    #[test]
    fn snapshot_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = kv_snapshot_file(dir.path(), Offset(77));
        let map = sample();
        let bytes = write_snapshot(&path, Offset(77), &map).unwrap();
        assert_eq!(bytes, std::fs::metadata(&path).unwrap().len());
        assert!(!tmp_path(&path).exists());
        assert_eq!(read_snapshot(&path, Offset(77)).unwrap(), map);
        let empty = kv_snapshot_file(dir.path(), Offset(0));
        write_snapshot(&empty, Offset(0), &BTreeMap::new()).unwrap();
        assert!(read_snapshot(&empty, Offset(0)).unwrap().is_empty());
    }

    #[test]
    fn every_flipped_byte_and_every_cut_is_reported_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = kv_snapshot_file(dir.path(), Offset(9));
        write_snapshot(&path, Offset(9), &sample()).unwrap();
        let good = std::fs::read(&path).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x20;
            match decode_snapshot(&bad, &path, Offset(9)) {
                Err(Error::CorruptFile { path: p, reason }) => {
                    assert_eq!(p, path);
                    assert!(reason.starts_with("at byte "), "{reason}");
                }
                other => panic!("flip at {i}: {other:?}"),
            }
        }
        for len in 0..good.len() {
            assert!(
                matches!(
                    decode_snapshot(&good[..len], &path, Offset(9)),
                    Err(Error::CorruptFile { .. })
                ),
                "cut at {len}"
            );
        }
        assert!(
            decode_snapshot(&good, &path, Offset(10)).is_err(),
            "name mismatch"
        );
    }

    #[test]
    fn a_checksummed_but_malformed_body_is_an_error_not_a_panic() {
        let path = Path::new("/x/snapshot.kv");
        let seal = |body: Vec<u8>| {
            let mut b = body;
            let crc = crc32c::crc32c(&b);
            b.extend_from_slice(&crc.to_be_bytes());
            b
        };
        let header = |count: u64| {
            let mut b = SNAPSHOT_MAGIC.to_vec();
            b.push(SNAPSHOT_VERSION);
            b.extend_from_slice(&1u64.to_be_bytes());
            b.extend_from_slice(&count.to_be_bytes());
            b
        };
        // A count far beyond the file.
        assert!(decode_snapshot(&seal(header(u64::MAX)), path, Offset(1)).is_err());
        // A key length past the end.
        let mut b = header(1);
        b.extend_from_slice(&u32::MAX.to_be_bytes());
        b.extend_from_slice(&[0; 8]);
        assert!(decode_snapshot(&seal(b), path, Offset(1)).is_err());
        // Keys out of order.
        let mut b = header(2);
        for key in [b"b", b"a"] {
            b.extend_from_slice(&1u32.to_be_bytes());
            b.extend_from_slice(key);
            b.extend_from_slice(&0u32.to_be_bytes());
        }
        assert!(decode_snapshot(&seal(b), path, Offset(1)).is_err());
        // Trailing bytes.
        let mut b = header(0);
        b.push(0);
        assert!(decode_snapshot(&seal(b), path, Offset(1)).is_err());
    }
}
