//! `warren dump-log PATH [--no-records]`: prints a segment file batch by batch, like
//! Kafka's `kafka-dump-log`.
//!
//! A segment `.log` file is RecordBatches back to back (see
//! `warren_protocol::record_batch` for the layout). The file is read sequentially
//! through a [`BufReader`], one batch in memory at a time, so a 1 GiB segment costs
//! one batch of memory, not 1 GiB. Output:
//!
//! ```text
//! Dumping /data/orders-0/00000000000000000000.log
//! batch position: 0 base_offset: 0 last_offset: 1 count: 2 size: 95 codec: none max_timestamp: 1700000000001 crc: valid
//! | offset: 0 timestamp: 1700000000000 key: "k0" headers: ["trace": "abc"] value: "hello"
//! | offset: 1 timestamp: 1700000000001 key: null headers: [] value: 0x00ff10
//! Summary: 1 batches, 2 records, 95 bytes
//! ```
//!
//! Keys, values and header values print as a quoted, escaped string when they are
//! valid UTF-8, as `0x` and lowercase hex otherwise, and as `null` when absent.
//! `count` is the header's records_count, `size` the whole batch in bytes.
//!
//! The dump stops at the first batch it cannot trust and returns a [`CorruptLog`]
//! naming the file and the batch's byte position; everything before it has been
//! printed. Unlike Kafka's tool it does not go on after a CRC mismatch: the CRC does
//! not cover batch_length, so after a mismatch the next batch's position is a guess.
//! Records of a batch whose CRC fails are not decoded.
//!
//! Thread safety: nothing is shared; [`run`] reads one file on the calling thread.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use bytes::Bytes;
use warren_protocol::record_batch::{LOG_OVERHEAD, peek_batch_len};
use warren_protocol::{BatchHeader, Compression, Record, RecordBatch};

/// Arguments of `warren dump-log`.
#[derive(Debug, clap::Args)]
pub struct DumpLogArgs {
    /// Segment file to read, e.g. `00000000000000000000.log`.
    pub path: PathBuf,
    /// Print only the batch lines, without decoding records.
    #[arg(long)]
    pub no_records: bool,
}

/// The file holds something no valid segment holds. The binary exits with 2.
#[derive(Debug)]
pub struct CorruptLog {
    pub path: PathBuf,
    /// Byte position in the file of the batch that could not be read.
    pub position: u64,
    pub problem: Problem,
}

/// What is wrong with the batch at [`CorruptLog::position`].
#[derive(Debug)]
pub enum Problem {
    /// The file ends inside the batch (a torn write or a cut file).
    Truncated { needed: u64, available: u64 },
    /// The header is not a valid batch header (bad magic, length, codec...).
    BadHeader(warren_protocol::Error),
    /// The stored CRC-32C does not match the batch bytes.
    ChecksumMismatch { stored: u32, computed: u32 },
    /// The CRC matches but the records do not decode.
    BadRecords(warren_protocol::Error),
}

impl fmt::Display for CorruptLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (path, position) = (self.path.display(), self.position);
        match &self.problem {
            Problem::Truncated { needed, available } => write!(
                f,
                "{path}: torn/truncated batch at position {position}: \
                 needs {needed} bytes, the file has {available} left"
            ),
            Problem::BadHeader(err) => {
                write!(f, "{path}: bad batch header at position {position}: {err}")
            }
            Problem::ChecksumMismatch { stored, computed } => write!(
                f,
                "{path}: CRC mismatch in batch at position {position}: \
                 stored {stored:#010x}, computed {computed:#010x}"
            ),
            Problem::BadRecords(err) => {
                write!(
                    f,
                    "{path}: malformed records in batch at position {position}: {err}"
                )
            }
        }
    }
}

impl std::error::Error for CorruptLog {}

/// Runs `dump-log`, printing to stdout.
///
/// # Errors
/// [`CorruptLog`] when the file is damaged; an I/O error (with the file or stream it
/// concerns) otherwise. Batches before the damage are printed either way.
pub fn run(args: &DumpLogArgs) -> anyhow::Result<()> {
    let file =
        File::open(&args.path).with_context(|| format!("opening {}", args.path.display()))?;
    let file_len = file
        .metadata()
        .with_context(|| format!("reading metadata of {}", args.path.display()))?
        .len();
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let result = dump(
        &args.path,
        BufReader::new(file),
        file_len,
        !args.no_records,
        &mut out,
    );
    // Flush what was printed before reporting a problem, so stdout comes first.
    let flushed = out.flush().context("writing to stdout");
    result?;
    flushed
}

/// Prints the `file_len` bytes of `reader` batch by batch to `out`.
fn dump(
    path: &Path,
    mut reader: impl Read,
    file_len: u64,
    with_records: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let write_err = "writing to stdout";
    writeln!(out, "Dumping {}", path.display()).context(write_err)?;
    let corrupt = |position, problem| CorruptLog {
        path: path.to_path_buf(),
        position,
        problem,
    };
    let (mut position, mut batches, mut records) = (0u64, 0u64, 0u64);
    while position < file_len {
        let available = file_len - position;
        let batch = read_batch(&mut reader, available)
            .with_context(|| format!("reading {} at position {position}", path.display()))?
            .map_err(|problem| corrupt(position, problem))?;
        let header = *batch.header();
        let crc = batch.verify_crc();
        write_batch_line(out, position, &header, &crc).context(write_err)?;
        if let Err(warren_protocol::Error::ChecksumMismatch { expected, got }) = crc {
            let problem = Problem::ChecksumMismatch {
                stored: expected,
                computed: got,
            };
            return Err(corrupt(position, problem).into());
        }
        if with_records {
            let decoded = batch
                .records()
                .map_err(|err| corrupt(position, Problem::BadRecords(err)))?;
            for record in &decoded {
                write_record_line(out, record).context(write_err)?;
            }
        }
        batches += 1;
        records += u64::try_from(header.records_count).unwrap_or(0);
        position += header.total_len() as u64;
    }
    writeln!(
        out,
        "Summary: {batches} batches, {records} records, {position} bytes"
    )
    .context(write_err)?;
    Ok(())
}

/// Reads the next batch from `reader`, of which `available` bytes are left.
///
/// The outer `Result` is an I/O failure; the inner one a batch that is not there
/// or not valid. Allocates at most `available` bytes: a batch_length beyond the end
/// of the file is refused before anything is read.
fn read_batch(reader: &mut impl Read, available: u64) -> io::Result<Result<RecordBatch, Problem>> {
    let truncated = |needed: usize| Problem::Truncated {
        needed: needed as u64,
        available,
    };
    let mut head = [0u8; LOG_OVERHEAD];
    if available < LOG_OVERHEAD as u64 {
        return Ok(Err(truncated(LOG_OVERHEAD)));
    }
    if let Err(err) = reader.read_exact(&mut head) {
        // The file shrank under us: a truncation, not an I/O failure.
        return match err.kind() {
            io::ErrorKind::UnexpectedEof => Ok(Err(truncated(LOG_OVERHEAD))),
            _ => Err(err),
        };
    }
    let total = match peek_batch_len(&head) {
        Ok(Some(total)) => total,
        // Unreachable with 12 bytes in hand; treated as a short read to stay panic-free.
        Ok(None) => return Ok(Err(truncated(LOG_OVERHEAD))),
        Err(err) => return Ok(Err(Problem::BadHeader(err))),
    };
    if total as u64 > available {
        return Ok(Err(truncated(total)));
    }
    let mut buf = Vec::with_capacity(total);
    buf.extend_from_slice(&head);
    let rest = (total - LOG_OVERHEAD) as u64;
    reader.by_ref().take(rest).read_to_end(&mut buf)?;
    if buf.len() < total {
        return Ok(Err(truncated(total)));
    }
    Ok(RecordBatch::new(Bytes::from(buf)).map_err(|err| match err {
        warren_protocol::Error::Truncated { .. } => truncated(total),
        other => Problem::BadHeader(other),
    }))
}

fn write_batch_line(
    out: &mut impl Write,
    position: u64,
    header: &BatchHeader,
    crc: &warren_protocol::Result<()>,
) -> io::Result<()> {
    // BatchHeader::parse already rejected unknown codecs.
    let codec = match header.compression() {
        Ok(Compression::None) => "none",
        Ok(Compression::Zstd) => "zstd",
        Err(_) => "unknown",
    };
    write!(
        out,
        "batch position: {position} base_offset: {} last_offset: {} count: {} size: {} \
         codec: {codec} max_timestamp: {} crc: ",
        header.base_offset,
        header.last_offset(),
        header.records_count,
        header.total_len(),
        header.max_timestamp,
    )?;
    match crc {
        Ok(()) => writeln!(out, "valid"),
        Err(warren_protocol::Error::ChecksumMismatch { expected, got }) => {
            writeln!(out, "MISMATCH stored {expected:#010x} computed {got:#010x}")
        }
        Err(other) => writeln!(out, "error {other}"),
    }
}

fn write_record_line(out: &mut impl Write, record: &Record) -> io::Result<()> {
    write!(
        out,
        "| offset: {} timestamp: {} key: {} headers: [",
        record.offset,
        record.timestamp,
        ShowBytes(record.key.as_deref()),
    )?;
    for (i, header) in record.headers.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        write!(
            out,
            "{sep}{:?}: {}",
            header.key,
            ShowBytes(header.value.as_deref())
        )?;
    }
    writeln!(out, "] value: {}", ShowBytes(record.value.as_deref()))
}

/// A nullable byte field for humans: `null`, a quoted escaped UTF-8 string, or
/// `0x` and lowercase hex when the bytes are not UTF-8.
struct ShowBytes<'a>(Option<&'a [u8]>);

impl fmt::Display for ShowBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(bytes) = self.0 else {
            return f.write_str("null");
        };
        match std::str::from_utf8(bytes) {
            // Debug quotes and escapes, so a value never breaks the line or looks like
            // `null` or hex.
            Ok(text) => write!(f, "{text:?}"),
            Err(_) => {
                f.write_str("0x")?;
                bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_bytes_prints_null_for_absent_field() {
        assert_eq!(ShowBytes(None).to_string(), "null");
    }

    #[test]
    fn show_bytes_quotes_and_escapes_utf8() {
        assert_eq!(ShowBytes(Some(b"a \"b\"\n")).to_string(), r#""a \"b\"\n""#);
        assert_eq!(ShowBytes(Some(b"")).to_string(), r#""""#);
        assert_eq!(
            ShowBytes(Some("héllo".as_bytes())).to_string(),
            r#""héllo""#
        );
    }

    #[test]
    fn show_bytes_prints_non_utf8_as_lowercase_hex() {
        assert_eq!(
            ShowBytes(Some(&[0x00, 0xff, 0x10, 0xab])).to_string(),
            "0x00ff10ab"
        );
    }
}
