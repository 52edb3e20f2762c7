//! A byte range of a segment file, handed to the network layer for `sendfile(2)`.
//!
//! A [`FileSlice`] always starts and ends on batch boundaries. It holds the file
//! open, so a slice stays readable even if retention deletes its segment meanwhile
//! (the inode lives until the last descriptor closes).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::error::{IoContext, Result};
use crate::offset::{FilePosition, Offset};

/// Whole batches `[position, position + len)` of one segment file.
#[derive(Debug, Clone)]
pub struct FileSlice {
    /// The segment file, open for reading.
    pub file: Arc<File>,
    /// Its path, for error messages.
    pub path: Arc<PathBuf>,
    /// Base offset of the first batch in the slice.
    pub first_offset: Offset,
    /// Offset after the last batch in the slice.
    pub next_offset: Offset,
    /// Byte position of the first batch.
    pub position: FilePosition,
    /// Length in bytes.
    pub len: u32,
}

impl FileSlice {
    /// Appends the slice's bytes to `buf`: the copy helper for callers that
    /// cannot `sendfile` (TLS, tests, tools).
    ///
    /// # Errors
    /// I/O errors, including a file shorter than the slice.
    pub fn read_into(&self, buf: &mut BytesMut) -> Result<()> {
        let start = buf.len();
        buf.resize(start + self.len as usize, 0);
        let dst = buf.get_mut(start..).unwrap_or_default();
        let result = self
            .file
            .read_exact_at(dst, u64::from(self.position.0))
            .ctx("read segment", &self.path);
        if result.is_err() {
            buf.truncate(start);
        }
        result
    }

    /// The slice's bytes in a new buffer.
    ///
    /// # Errors
    /// As [`read_into`](Self::read_into).
    pub fn to_bytes(&self) -> Result<Bytes> {
        let mut buf = BytesMut::with_capacity(self.len as usize);
        self.read_into(&mut buf)?;
        Ok(buf.freeze())
    }
}
