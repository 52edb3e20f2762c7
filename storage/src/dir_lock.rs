//! The `flock(2)` that keeps two owners (two brokers, or a broker and
//! `warren dump-log --repair`) from opening the same directory.
//!
//! A lock is taken with a short, bounded retry. flock locks belong to the open
//! file description, and a process that forks copies its descriptors into the
//! child until the child calls `exec` (Rust opens files close-on-exec, but the
//! copy lives until then). So when a process closes a directory and reopens it
//! while another of its threads is starting a child process, the old lock can
//! outlive the close by the length of that fork-to-exec window — milliseconds
//! on a loaded machine. A genuine second owner still gets `DataDirLocked`, just
//! [`LOCK_RETRY_MS`] later.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Error, IoContext, Result};

/// How long a lock that is held elsewhere is retried before `DataDirLocked`.
pub const LOCK_RETRY_MS: u64 = 1_000;

/// Opens (creating) `dir/file_name` and takes its exclusive flock; the lock is
/// held until the returned file is closed.
///
/// # Errors
/// [`Error::DataDirLocked`] naming `dir` if another owner still holds it after
/// [`LOCK_RETRY_MS`]; I/O errors naming the lock file.
pub fn lock_exclusive(dir: &Path, file_name: &str, what: &'static str) -> Result<File> {
    let lock_path = dir.join(file_name);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .ctx("open lock file", &lock_path)?;
    let deadline = Instant::now() + Duration::from_millis(LOCK_RETRY_MS);
    loop {
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(file),
            Err(rustix::io::Errno::WOULDBLOCK) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(Error::DataDirLocked {
                    path: dir.to_path_buf(),
                });
            }
            Err(e) => return Err(Error::io(what, &lock_path, e.into())),
        }
    }
}
