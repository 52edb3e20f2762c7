//! The `recovery-point` file of a partition: the offset below which every segment
//! is known to be on disk, and whether the log was closed cleanly.
//!
//! ```text
//! +--------------+------------+----------+-----------------------+-------------+
//! | magic "WRPT" | version u8 | flags u8 | recovery_offset: u64  | crc32c: u32 |
//! +--------------+------------+----------+-----------------------+-------------+
//!   18 bytes, big-endian; version 1; flags bit 0 = clean shutdown;
//!   the CRC-32C covers bytes 0..14
//! ```
//!
//! Written atomically: a temp file, `fsync`, rename over the old file, `fsync` of
//! the directory. A missing file means "scan everything"; a corrupt one is reported
//! and treated the same way, so the worst a bad checkpoint costs is a longer open.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::error::{Error, IoContext, Result};
use crate::file_names::{RECOVERY_POINT_FILE, tmp_path};
use crate::offset::Offset;

const MAGIC: &[u8; 4] = b"WRPT";
const VERSION: u8 = 1;
const LEN: usize = 18;
const FLAG_CLEAN: u8 = 1;

/// A partition's recovery point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// Every batch below this offset is on disk; recovery scans only from here.
    pub recovery_offset: Offset,
    /// The log was closed cleanly at exactly `recovery_offset`: nothing to scan.
    pub clean: bool,
}

impl Checkpoint {
    fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[..4].copy_from_slice(MAGIC);
        b[4] = VERSION;
        b[5] = if self.clean { FLAG_CLEAN } else { 0 };
        b[6..14].copy_from_slice(&self.recovery_offset.0.to_be_bytes());
        let crc = crc32c::crc32c(&b[..14]);
        b[14..].copy_from_slice(&crc.to_be_bytes());
        b
    }

    fn decode(bytes: &[u8], path: &Path) -> Result<Checkpoint> {
        let corrupt = |reason: String| Error::CorruptFile {
            path: path.to_path_buf(),
            reason,
        };
        let b: &[u8; LEN] = bytes
            .try_into()
            .map_err(|_| corrupt(format!("{} bytes, expected {LEN}", bytes.len())))?;
        if &b[..4] != MAGIC {
            return Err(corrupt("bad magic".into()));
        }
        if b[4] != VERSION {
            return Err(corrupt(format!("unknown version {}", b[4])));
        }
        let stored = u32::from_be_bytes([b[14], b[15], b[16], b[17]]);
        let got = crc32c::crc32c(&b[..14]);
        if stored != got {
            return Err(corrupt(format!(
                "CRC-32C mismatch: stored {stored:#010x}, computed {got:#010x}"
            )));
        }
        let mut offset = [0u8; 8];
        offset.copy_from_slice(&b[6..14]);
        Ok(Checkpoint {
            recovery_offset: Offset(u64::from_be_bytes(offset)),
            clean: b[5] & FLAG_CLEAN != 0,
        })
    }

    /// Reads `dir/recovery-point`; `Ok(None)` if it does not exist.
    ///
    /// # Errors
    /// I/O errors; `CorruptFile` if it cannot be parsed.
    pub fn read(dir: &Path) -> Result<Option<Checkpoint>> {
        let path = dir.join(RECOVERY_POINT_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => Checkpoint::decode(&bytes, &path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("read checkpoint", &path, e)),
        }
    }

    /// Replaces `dir/recovery-point` atomically and durably.
    ///
    /// # Errors
    /// I/O errors, `DiskFull`; the old file is then left in place.
    pub fn write(&self, dir: &Path) -> Result<()> {
        write_atomically(&dir.join(RECOVERY_POINT_FILE), &self.encode())
    }
}

/// Writes `bytes` to `path` so that a crash leaves either the old or the new
/// content: temp file, `fsync`, rename, `fsync` of the directory.
///
/// # Errors
/// I/O errors, `DiskFull`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    let written = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .ctx("create", &tmp)?;
        f.write_all(bytes).ctx("write", &tmp)?;
        f.sync_all().ctx("fsync", &tmp)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path).ctx("rename", path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// `fsync` of a directory, making creations, renames and deletions in it durable.
///
/// # Errors
/// I/O errors.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx("fsync directory", dir)
}

#[cfg(test)]
#[expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_detects_corruption() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Checkpoint::read(dir.path()).unwrap(), None);
        let cp = Checkpoint {
            recovery_offset: Offset(123_456),
            clean: true,
        };
        cp.write(dir.path()).unwrap();
        assert_eq!(Checkpoint::read(dir.path()).unwrap(), Some(cp));
        let path = dir.path().join(RECOVERY_POINT_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[8] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            Checkpoint::read(dir.path()),
            Err(Error::CorruptFile { .. })
        ));
        std::fs::write(&path, b"short").unwrap();
        assert!(Checkpoint::read(dir.path()).is_err());
    }
}
