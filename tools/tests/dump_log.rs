//! End-to-end tests of `warren dump-log`: run the real binary on segment files built
//! with `RecordBatchBuilder`, some damaged on purpose.

use std::error::Error;
use std::path::Path;
use std::process::{Command, Output};

use warren_protocol::record_batch::set_base_offset;
use warren_protocol::{Compression, Header, RecordBatchBuilder};

type TestResult = Result<(), Box<dyn Error>>;

const SEGMENT: &str = "00000000000000000000.log";
const T0: i64 = 1_700_000_000_000;

/// One record to append: timestamp, key, value, headers.
type Rec<'a> = (i64, Option<&'a [u8]>, Option<&'a [u8]>, Vec<Header>);

/// Encodes one batch with `base_offset`.
fn batch(
    base_offset: i64,
    compression: Compression,
    records: &[Rec<'_>],
) -> Result<Vec<u8>, Box<dyn Error>> {
    let mut builder = RecordBatchBuilder::new(compression);
    for (timestamp, key, value, headers) in records {
        builder.append(*timestamp, *key, *value, headers);
    }
    let mut bytes = builder.build()?.to_vec();
    set_base_offset(&mut bytes, base_offset)?;
    Ok(bytes)
}

/// Four small uncompressed batches of one record each, base offsets 0..4.
fn simple_batches() -> Result<Vec<Vec<u8>>, Box<dyn Error>> {
    (0..4)
        .map(|i| {
            let value = format!("value-{i}");
            batch(
                i,
                Compression::None,
                &[(T0 + i, Some(b"k"), Some(value.as_bytes()), vec![])],
            )
        })
        .collect()
}

fn dump_log(path: &Path, extra: &[&str]) -> Result<Output, Box<dyn Error>> {
    Ok(Command::new(env!("CARGO_BIN_EXE_warren"))
        .arg("dump-log")
        .arg(path)
        .args(extra)
        .env("RUST_BACKTRACE", "1")
        .output()?)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts stderr is exactly one `Error: ...` line and returns it.
fn single_error_line(output: &Output) -> String {
    let err = stderr(output);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "stderr should be one line, got:\n{err}");
    let line = lines.first().copied().unwrap_or_default();
    assert!(line.starts_with("Error: "), "stderr: {line}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "stderr: {err}"
    );
    line.to_owned()
}

#[test]
fn clean_file_prints_every_batch_and_record() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join(SEGMENT);
    let b0 = batch(
        0,
        Compression::None,
        &[
            (
                T0,
                Some(b"k0"),
                Some(b"hello"),
                vec![Header::new("trace", "abc")],
            ),
            (T0 + 1, None, Some(&[0x00, 0xff, 0x10]), vec![]),
        ],
    )?;
    let b1 = batch(
        2,
        Compression::Zstd,
        &[
            (T0 + 10, Some(b"k2"), Some(b"zstd value"), vec![]),
            (T0 + 12, Some(b"k3"), None, vec![]),
            (
                T0 + 11,
                Some(&[0xff, 0xfe]),
                Some(b"with \"quotes\"\n"),
                vec![],
            ),
        ],
    )?;
    let b2 = batch(
        5,
        Compression::None,
        &[(
            T0 + 20,
            Some(b"k5"),
            Some(b""),
            vec![
                Header::new("bin", vec![0x80u8, 0x01]),
                Header {
                    key: "none".into(),
                    value: None,
                },
            ],
        )],
    )?;
    let (p1, p2) = (b0.len(), b0.len() + b1.len());
    let total = p2 + b2.len();
    std::fs::write(&path, [b0.as_slice(), &b1, &b2].concat())?;

    let output = dump_log(&path, &[])?;

    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    assert_eq!(stderr(&output), "");
    let expected = format!(
        "Dumping {path}\n\
         batch position: 0 base_offset: 0 last_offset: 1 count: 2 size: {s0} codec: none max_timestamp: {m0} crc: valid\n\
         | offset: 0 timestamp: {t0} key: \"k0\" headers: [\"trace\": \"abc\"] value: \"hello\"\n\
         | offset: 1 timestamp: {t1} key: null headers: [] value: 0x00ff10\n\
         batch position: {p1} base_offset: 2 last_offset: 4 count: 3 size: {s1} codec: zstd max_timestamp: {m1} crc: valid\n\
         | offset: 2 timestamp: {t10} key: \"k2\" headers: [] value: \"zstd value\"\n\
         | offset: 3 timestamp: {m1} key: \"k3\" headers: [] value: null\n\
         | offset: 4 timestamp: {t11} key: 0xfffe headers: [] value: \"with \\\"quotes\\\"\\n\"\n\
         batch position: {p2} base_offset: 5 last_offset: 5 count: 1 size: {s2} codec: none max_timestamp: {m2} crc: valid\n\
         | offset: 5 timestamp: {m2} key: \"k5\" headers: [\"bin\": 0x8001, \"none\": null] value: \"\"\n\
         Summary: 3 batches, 6 records, {total} bytes\n",
        path = path.display(),
        s0 = b0.len(),
        s1 = b1.len(),
        s2 = b2.len(),
        t0 = T0,
        t1 = T0 + 1,
        m0 = T0 + 1,
        t10 = T0 + 10,
        t11 = T0 + 11,
        m1 = T0 + 12,
        m2 = T0 + 20,
    );
    assert_eq!(stdout(&output), expected);
    Ok(())
}

#[test]
fn no_records_flag_prints_only_batch_lines() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join(SEGMENT);
    std::fs::write(&path, simple_batches()?.concat())?;

    let output = dump_log(&path, &["--no-records"])?;

    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    let out = stdout(&output);
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("batch position: "))
            .count(),
        4
    );
    assert!(!out.contains("| offset:"), "stdout:\n{out}");
    assert!(
        out.contains("Summary: 4 batches, 4 records,"),
        "stdout:\n{out}"
    );
    Ok(())
}

#[test]
fn crc_mismatch_stops_after_earlier_batches_and_exits_2() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join(SEGMENT);
    let mut batches = simple_batches()?;
    // Flip the last byte of the third batch: inside its records, covered by the CRC.
    if let Some(byte) = batches.get_mut(2).and_then(|b| b.last_mut()) {
        *byte ^= 0x01;
    }
    let bad_position = batches.iter().take(2).map(Vec::len).sum::<usize>();
    std::fs::write(&path, batches.concat())?;

    let output = dump_log(&path, &[])?;

    assert_eq!(output.status.code(), Some(2));
    let out = stdout(&output);
    assert!(
        out.contains("batch position: 0 base_offset: 0 "),
        "stdout:\n{out}"
    );
    assert!(out.contains("value: \"value-0\""), "stdout:\n{out}");
    assert!(out.contains("value: \"value-1\""), "stdout:\n{out}");
    let bad_line = out
        .lines()
        .find(|l| l.starts_with(&format!("batch position: {bad_position} ")))
        .ok_or("no line for the damaged batch")?;
    assert!(bad_line.contains("crc: MISMATCH stored 0x"), "{bad_line}");
    assert!(
        !out.contains("value-2") && !out.contains("value-3"),
        "stdout:\n{out}"
    );
    assert!(!out.contains("Summary"), "stdout:\n{out}");
    let err = single_error_line(&output);
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(
        err.contains(&format!("CRC mismatch in batch at position {bad_position}")),
        "{err}"
    );
    Ok(())
}

#[test]
fn batch_cut_in_the_middle_is_reported_as_torn_and_exits_2() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join(SEGMENT);
    let batches = simple_batches()?;
    let mut bytes = batches.concat();
    let last_position = bytes.len() - batches.last().map_or(0, Vec::len);
    bytes.truncate(last_position + 30);
    std::fs::write(&path, bytes)?;

    let output = dump_log(&path, &[])?;

    assert_eq!(output.status.code(), Some(2));
    let out = stdout(&output);
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("batch position: "))
            .count(),
        3
    );
    assert!(out.contains("value: \"value-2\""), "stdout:\n{out}");
    let err = single_error_line(&output);
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(
        err.contains(&format!("torn/truncated batch at position {last_position}")),
        "{err}"
    );
    Ok(())
}

#[test]
fn trailing_bytes_shorter_than_a_length_prefix_are_reported_as_torn() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join(SEGMENT);
    let mut bytes = simple_batches()?.concat();
    let tail_position = bytes.len();
    bytes.extend_from_slice(&[0, 0, 0, 0, 0]);
    std::fs::write(&path, bytes)?;

    let output = dump_log(&path, &[])?;

    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stdout(&output)
            .lines()
            .filter(|l| l.starts_with("batch position: "))
            .count(),
        4
    );
    let err = single_error_line(&output);
    assert!(
        err.contains(&format!("torn/truncated batch at position {tail_position}")),
        "{err}"
    );
    Ok(())
}

#[test]
fn invalid_batch_header_is_reported_with_its_position_and_exits_2() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join(SEGMENT);
    let mut bytes = simple_batches()?.concat();
    let garbage_position = bytes.len();
    // 64 zero bytes: batch_length 0 is smaller than any batch.
    bytes.extend_from_slice(&[0; 64]);
    std::fs::write(&path, bytes)?;

    let output = dump_log(&path, &[])?;

    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stdout(&output)
            .lines()
            .filter(|l| l.starts_with("batch position: "))
            .count(),
        4
    );
    let err = single_error_line(&output);
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(
        err.contains(&format!("bad batch header at position {garbage_position}")),
        "{err}"
    );
    Ok(())
}

#[test]
fn empty_file_reports_zero_batches_and_exits_0() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join(SEGMENT);
    std::fs::write(&path, b"")?;

    let output = dump_log(&path, &[])?;

    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    assert!(
        stdout(&output).contains("Summary: 0 batches, 0 records, 0 bytes"),
        "stdout:\n{}",
        stdout(&output)
    );
    assert_eq!(stderr(&output), "");
    Ok(())
}

#[test]
fn missing_file_fails_with_one_line_error_and_exits_1() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("missing.log");

    let output = dump_log(&path, &[])?;

    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output), "");
    let err = single_error_line(&output);
    assert!(err.contains(&path.display().to_string()), "{err}");
    Ok(())
}

#[test]
fn missing_path_argument_is_a_usage_error_and_exits_1() -> TestResult {
    let output = Command::new(env!("CARGO_BIN_EXE_warren"))
        .arg("dump-log")
        .output()?;

    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("Usage"),
        "stderr: {}",
        stderr(&output)
    );
    Ok(())
}
