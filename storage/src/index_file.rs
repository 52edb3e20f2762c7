//! A memory-mapped file of fixed-size entries: the machinery under
//! [`crate::offset_index::OffsetIndex`] and [`crate::time_index::TimeIndex`]
//! (Kafka's `AbstractIndex`).
//!
//! The active segment's index is preallocated to `max_index_bytes` (with
//! `fallocate`, so a full disk fails here with an error instead of a `SIGBUS` on a
//! later write to the map) and trimmed to its valid entries when the segment rolls
//! or the log closes. The number of valid entries of a trimmed file is its length
//! divided by the entry size; a preallocated file left by a crash has a zeroed tail,
//! which the owners' sanity checks reject (every valid entry is non-zero), so it is
//! rebuilt from the log.
//!
//! Not thread-safe: the segment wraps each index in an `RwLock` (lookups take the
//! read lock for a binary search; the single writer takes the write lock to add an
//! entry).

use std::cmp::Ordering;
use std::fs::{File, OpenOptions};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use memmap2::MmapMut;

use crate::error::{Error, IoContext, Result};
use crate::offset::{Offset, RelativeOffset};

/// The entry type of an index file: its size and how to decode it.
///
/// ### To ensure correctness:
/// - `decode` must accept any `BYTES` bytes without panicking (the file may hold
///   garbage until the owner's sanity check rejects it).
/// - `relative_offset` must increase strictly from entry to entry in a valid index.
pub trait IndexEntry: Copy {
    /// Bytes per entry.
    const BYTES: usize;
    /// Decodes one entry from exactly `BYTES` bytes (big-endian).
    fn decode(bytes: &[u8]) -> Self;
    /// The offset, relative to the segment's base, that the entry refers to.
    fn relative_offset(&self) -> RelativeOffset;
}

/// One segment's index of `E` entries: what the offset and time indexes share
/// (open, size management, truncation). Each adds its own lookups.
pub struct Index<E> {
    pub(crate) base_offset: Offset,
    pub(crate) file: IndexFile,
    entry: PhantomData<E>,
}

impl<E> std::fmt::Debug for Index<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("base_offset", &self.base_offset)
            .field("file", &self.file)
            .finish()
    }
}

impl<E: IndexEntry> Index<E> {
    /// Opens or creates the index of the segment based at `base_offset`.
    ///
    /// # Errors
    /// I/O errors, or `CorruptIndex` for a length that is not whole entries.
    pub fn open(path: &Path, base_offset: Offset) -> Result<Self> {
        Ok(Index {
            base_offset,
            file: IndexFile::open(path, E::BYTES)?,
            entry: PhantomData,
        })
    }

    /// Number of entries.
    pub fn entries(&self) -> usize {
        self.file.entries()
    }

    /// True when another entry needs a resize (the segment rolls instead).
    pub fn is_full(&self) -> bool {
        self.file.is_full()
    }

    /// Entry `i`, decoded.
    pub(crate) fn raw_entry(&self, i: usize) -> Option<E> {
        self.file.entry(i).map(E::decode)
    }

    /// The greatest entry index whose entry compares `Less` or `Equal` under `cmp`.
    pub(crate) fn largest_le(&self, cmp: impl Fn(E) -> Ordering) -> Option<usize> {
        self.file.largest_le(|bytes| cmp(E::decode(bytes)))
    }

    /// Removes every entry with offset `>= offset`.
    pub fn truncate_to(&mut self, offset: Offset) {
        let keep = match offset.relative_to(self.base_offset) {
            None => 0,
            Some(rel) => self
                .largest_le(|e| e.relative_offset().cmp(&rel).then(Ordering::Greater))
                .map_or(0, |i| i + 1),
        };
        self.file.truncate_entries(keep);
    }

    /// Removes every entry (before a rebuild).
    pub fn reset(&mut self) {
        self.file.truncate_entries(0);
    }

    /// Preallocates the file for `bytes` of entries (the active segment).
    ///
    /// # Errors
    /// I/O errors; `DiskFull`.
    pub fn resize(&mut self, bytes: u64) -> Result<()> {
        self.file.resize(bytes)
    }

    /// Shrinks the file to its valid entries.
    ///
    /// # Errors
    /// I/O errors.
    pub fn trim(&mut self) -> Result<()> {
        self.file.trim()
    }

    /// Flushes the map and the file to disk.
    ///
    /// # Errors
    /// I/O errors.
    pub fn flush(&self) -> Result<()> {
        self.file.flush()
    }

    /// `CorruptIndex` for this file with `reason`.
    pub(crate) fn corrupt(&self, reason: String) -> Error {
        Error::CorruptIndex {
            path: self.file.path().to_path_buf(),
            reason,
        }
    }
}

pub(crate) struct IndexFile {
    path: PathBuf,
    file: File,
    mmap: Option<MmapMut>,
    entry_bytes: usize,
    entries: usize,
}

impl std::fmt::Debug for IndexFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexFile")
            .field("path", &self.path)
            .field("entries", &self.entries)
            .finish()
    }
}

impl IndexFile {
    /// Opens (creating if missing) the index at `path`. Every whole entry in the
    /// file counts as valid; the owner sanity-checks them.
    ///
    /// # Errors
    /// I/O errors; `CorruptIndex` when the length is not a multiple of the entry size.
    pub(crate) fn open(path: &Path, entry_bytes: usize) -> Result<IndexFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .ctx("open index", path)?;
        let len = file.metadata().ctx("stat index", path)?.len();
        let len = usize::try_from(len).map_err(|_| Error::CorruptIndex {
            path: path.to_path_buf(),
            reason: format!("{len} bytes is too large"),
        })?;
        if len % entry_bytes != 0 {
            return Err(Error::CorruptIndex {
                path: path.to_path_buf(),
                reason: format!("length {len} is not a multiple of the {entry_bytes}-byte entry"),
            });
        }
        let mut index = IndexFile {
            path: path.to_path_buf(),
            file,
            mmap: None,
            entry_bytes,
            entries: len / entry_bytes,
        };
        index.remap(len)?;
        Ok(index)
    }

    /// Path of the file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Number of valid entries.
    pub(crate) fn entries(&self) -> usize {
        self.entries
    }

    fn capacity_entries(&self) -> usize {
        self.mmap.as_ref().map_or(0, |m| m.len() / self.entry_bytes)
    }

    /// True when no entry can be added without [`resize`](Self::resize).
    pub(crate) fn is_full(&self) -> bool {
        self.entries >= self.capacity_entries()
    }

    /// Entry `i`'s bytes, if `i` is a valid entry.
    pub(crate) fn entry(&self, i: usize) -> Option<&[u8]> {
        if i >= self.entries {
            return None;
        }
        let start = i * self.entry_bytes;
        self.mmap.as_ref()?.get(start..start + self.entry_bytes)
    }

    /// Appends one entry. The caller keeps entries ordered.
    ///
    /// # Errors
    /// `CorruptIndex` when the index is full (the caller rolls before that).
    pub(crate) fn push(&mut self, entry: &[u8]) -> Result<()> {
        debug_assert_eq!(entry.len(), self.entry_bytes);
        let start = self.entries * self.entry_bytes;
        let slot = self
            .mmap
            .as_mut()
            .and_then(|m| m.get_mut(start..start + entry.len()))
            .ok_or_else(|| Error::CorruptIndex {
                path: self.path.clone(),
                reason: "index is full".into(),
            })?;
        slot.copy_from_slice(entry);
        self.entries += 1;
        Ok(())
    }

    /// Forgets every entry from `n` on.
    pub(crate) fn truncate_entries(&mut self, n: usize) {
        self.entries = self.entries.min(n);
    }

    /// The greatest `i` whose entry compares `Less` or `Equal` to the target under
    /// `cmp`, which must be monotonic over the entries. `None` when every entry is
    /// greater.
    pub(crate) fn largest_le(&self, cmp: impl Fn(&[u8]) -> Ordering) -> Option<usize> {
        // Binary search over the whole range. Kafka warms only the last 8 KiB of an
        // index to keep lookups near the tail in cache; at 8-byte entries a whole
        // 1 GiB segment's index is 2 MiB, which stays resident anyway.
        let (mut lo, mut hi) = (0usize, self.entries);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.entry(mid).map(&cmp) {
                Some(Ordering::Greater) | None => hi = mid,
                Some(_) => lo = mid + 1,
            }
        }
        lo.checked_sub(1)
    }

    /// Sets the file's (and map's) size to `capacity_bytes` rounded down to whole
    /// entries, never below the valid entries. Growing preallocates the blocks.
    ///
    /// # Errors
    /// I/O errors; [`Error::DiskFull`] when the blocks cannot be reserved.
    pub(crate) fn resize(&mut self, capacity_bytes: u64) -> Result<()> {
        let want = usize::try_from(capacity_bytes).unwrap_or(usize::MAX) / self.entry_bytes
            * self.entry_bytes;
        let len = want.max(self.entries * self.entry_bytes);
        let current = self.mmap.as_ref().map_or(0, |m| m.len());
        if len == current {
            return Ok(());
        }
        // Unmap before changing the file length: a mapping past EOF would fault.
        if let Some(m) = self.mmap.take() {
            m.flush().ctx("msync index", &self.path)?;
        }
        let resized = if len > current {
            preallocate(&self.file, &self.path, len as u64)
        } else {
            self.file
                .set_len(len as u64)
                .ctx("truncate index", &self.path)
        };
        match resized {
            Ok(()) => self.remap(len),
            Err(e) => {
                // Leave the index usable at its old size (e.g. a failed roll on a full disk).
                self.remap(current)?;
                Err(e)
            }
        }
    }

    /// Shrinks the file to its valid entries (on roll and close).
    ///
    /// # Errors
    /// I/O errors.
    pub(crate) fn trim(&mut self) -> Result<()> {
        self.resize((self.entries * self.entry_bytes) as u64)
    }

    /// Writes the mapped pages and the file's metadata to disk.
    ///
    /// # Errors
    /// I/O errors.
    pub(crate) fn flush(&self) -> Result<()> {
        if let Some(m) = &self.mmap {
            m.flush().ctx("msync index", &self.path)?;
        }
        self.file.sync_all().ctx("fsync index", &self.path)
    }

    fn remap(&mut self, len: usize) -> Result<()> {
        self.mmap = None;
        if len == 0 {
            return Ok(());
        }
        #[expect(unsafe_code, reason = "memory-mapping the index file (memmap2)")]
        // SAFETY: the map is only valid while the file is not truncated below its
        // length. Only this struct changes the file's length, and it drops the map
        // before it does (see `resize`); the data directory lock keeps other Warren
        // processes out. Bytes read through the map are validated like any disk input.
        let mmap = unsafe { MmapMut::map_mut(&self.file) }.ctx("mmap index", &self.path)?;
        self.mmap = Some(mmap);
        Ok(())
    }
}

/// Extends `file` to `len` bytes with its blocks reserved, so later writes through
/// a map cannot hit ENOSPC (which would be a SIGBUS). Falls back to `set_len` on
/// filesystems without `fallocate`.
pub(crate) fn preallocate(file: &File, path: &Path, len: u64) -> Result<()> {
    match rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), 0, len) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::OPNOTSUPP || e == rustix::io::Errno::NOSYS => {
            file.set_len(len).ctx("extend index", path)
        }
        Err(e) => Err(Error::io("preallocate index", path, e.into())),
    }
}
