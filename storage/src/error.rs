//! Errors from the storage engine.
//!
//! I/O errors carry what we were doing and to which file; `ENOSPC`/`EDQUOT` become
//! the retriable [`Error::DiskFull`]; corruption names the partition, file and byte
//! position so an operator can find it with `warren dump-log`.

use std::io;
use std::path::{Path, PathBuf};

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the storage engine can report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O call failed; `op` says what we were doing ("write", "fsync", ...).
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The filesystem is full (ENOSPC or a quota). Retriable: the log is left
    /// exactly as before the failed call, and succeeds again once space is freed.
    #[error("disk full: {op} {}", path.display())]
    DiskFull { op: &'static str, path: PathBuf },
    /// A segment holds bytes that are not a valid batch where one must be.
    #[error("corrupt log {partition}: {} at position {position}: {reason}", path.display())]
    CorruptLog {
        partition: String,
        path: PathBuf,
        position: u64,
        reason: String,
    },
    /// An index file is unusable (rebuilt on open; reported if found later).
    #[error("corrupt index {}: {reason}", path.display())]
    CorruptIndex { path: PathBuf, reason: String },
    /// A read, or a truncation, asked for an offset outside `[log_start, log_end]`.
    #[error("offset {requested} is out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        requested: u64,
        log_start: u64,
        log_end: u64,
    },
    /// An appended batch is malformed or fails its CRC; nothing was written.
    #[error("invalid batch: {0}")]
    InvalidBatch(#[from] warren_protocol::Error),
    /// A replicated batch ([`PartitionLog::append_replicated`](crate::PartitionLog::append_replicated))
    /// does not start at the log end: `got > expected` is a gap, `got < expected`
    /// an overlap. Nothing was written.
    #[error("batch base offset {got} does not start at the log end offset {expected}")]
    OffsetMismatch { expected: u64, got: i64 },
    /// A truncation ([`PartitionLog::truncate_to`](crate::PartitionLog::truncate_to))
    /// asked to cut inside a batch; a log is cut only between batches. Nothing
    /// was changed.
    #[error(
        "offset {offset} is inside the batch holding offsets {batch_base_offset}..{batch_next_offset}: \
         a log is truncated only at a batch boundary"
    )]
    NotBatchBoundary {
        offset: u64,
        batch_base_offset: u64,
        batch_next_offset: u64,
    },
    /// A batch larger than a whole segment can never be appended.
    #[error(
        "batch of {bytes} bytes is larger than the log accepts ({limit} bytes: max_message_bytes or segment_bytes)"
    )]
    BatchTooLarge { bytes: usize, limit: u32 },
    /// A configuration value or combination is invalid.
    #[error("invalid log config: {0}")]
    Config(String),
    /// A topic name is not `[A-Za-z0-9._-]{1,242}` (or is `.` / `..`).
    #[error("invalid topic name {0:?}: use 1-242 of A-Z a-z 0-9 . _ -")]
    InvalidTopicName(String),
    /// The topic already exists.
    #[error("topic {0} already exists")]
    TopicExists(String),
    /// No such topic.
    #[error("unknown topic {0}")]
    UnknownTopic(String),
    /// A file the engine owns holds bytes it cannot parse.
    #[error("corrupt file {}: {reason}", path.display())]
    CorruptFile { path: PathBuf, reason: String },
    /// Another process holds the data directory's lock.
    #[error("data directory {} is in use by another process", path.display())]
    DataDirLocked { path: PathBuf },
    /// The log was closed; no more appends.
    #[error("log {0} is closed")]
    Closed(String),
    /// An fsync of this log failed. The kernel may have dropped the unsynced
    /// pages, so the log refuses appends and syncs until it is reopened, which
    /// recovers (CRC-checks) what is really on disk. Not retriable in place.
    #[error("log {0} failed an fsync and refuses writes until it is reopened")]
    Failed(String),
}

impl Error {
    /// True when retrying the same call later may succeed (disk full).
    pub fn is_retriable(&self) -> bool {
        matches!(self, Error::DiskFull { .. })
    }

    /// Wraps an I/O error with the operation and path, mapping "no space" to
    /// [`Error::DiskFull`].
    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> Error {
        if is_disk_full(&source) {
            Error::DiskFull {
                op,
                path: path.to_path_buf(),
            }
        } else {
            Error::Io {
                op,
                path: path.to_path_buf(),
                source,
            }
        }
    }
}

fn is_disk_full(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    ) || matches!(
        err.raw_os_error(),
        Some(28 /* ENOSPC */) | Some(122 /* EDQUOT */)
    )
}

/// Adds the operation and path to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn ctx(self, op: &'static str, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, op: &'static str, path: &Path) -> Result<T> {
        self.map_err(|e| Error::io(op, path, e))
    }
}
