//! Silent and slow native connections do not hold the broker's connection
//! slots forever: the setup deadline (first request, and authentication when
//! users exist), the frame deadline, the idle timeout and the write deadline
//! (a client that pipelines fetches and reads none of the answers) each close
//! them.
//! Real sockets on loopback; every wait is bounded with a generous margin
//! (the box may be loaded), and no test asserts a tight upper bound.
//!
//! The setup, frame and idle deadlines are tokio timers, so their tests run
//! on paused time (`start_paused`): the clock jumps to the next deadline
//! whenever the broker and the test are both waiting, and the waits they
//! measure are the broker's own. The write deadline is the kernel's
//! `TCP_USER_TIMEOUT`, which only wall-clock time moves: those tests stay on
//! real time (and on a multi-thread runtime).

mod common;

use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use common::{Raw, batch, create, fetch, login, produce, start_with as start, values_of};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;
use warren_protocol::api::api_versions::ApiVersionsRequest;
use warren_protocol::api::auth::CreateUserRequest;
use warren_protocol::api::fetch::{FetchPartition, FetchRequest, FetchTopic};
use warren_protocol::scram::ScramCredential;

/// Silent sockets the lock-out test opens: more than the default
/// `max_connections` (1024).
const SILENT_SOCKETS: usize = 1_100;
/// Longest any wait for the broker to close a socket may take here: far
/// beyond every deadline configured below, so only a broker that never
/// closes fails.
const CLOSE_WAIT: Duration = Duration::from_secs(60);

/// Waits until the broker closes `stream` (EOF or reset), returning how
/// long that took; fails if it is still open after [`CLOSE_WAIT`].
async fn closed_by_broker(stream: &mut TcpStream) -> Result<Duration> {
    let started = Instant::now();
    let mut sink = [0u8; 4096];
    loop {
        match tokio::time::timeout(CLOSE_WAIT, stream.read(&mut sink))
            .await
            .context("the broker did not close the connection")?
        {
            Ok(0) | Err(_) => return Ok(started.elapsed()),
            Ok(_) => {
                if started.elapsed() > CLOSE_WAIT {
                    bail!("the connection kept sending and was not closed");
                }
            }
        }
    }
}

/// Raises the soft open-files limit to `want` if it is lower. `false` (with
/// a notice) when the hard limit does not allow it.
fn ensure_open_files(want: u64) -> Result<bool> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_none_or(|c| c >= want) {
        return Ok(true);
    }
    if limit.maximum.is_some_and(|m| m < want) {
        eprintln!(
            "NOTICE: skipping: this test needs {want} open files and the hard limit is {:?}",
            limit.maximum
        );
        return Ok(false);
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(want),
            maximum: limit.maximum,
        },
    )
    .context("raising the open-files soft limit")?;
    Ok(true)
}

/// Sends ApiVersions and waits for its answer for up to `wait` (the
/// connection may sit in the accept backlog until slots free up).
async fn first_answer(c: &mut Raw, wait: Duration) -> Result<()> {
    c.send(&ApiVersionsRequest).await?;
    let started = Instant::now();
    loop {
        match c.recv().await {
            Ok(_) => return Ok(()),
            Err(e) if e.to_string().contains("no response") && started.elapsed() < wait => {}
            Err(e) => return Err(e.context("no answer to the first request")),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn silent_sockets_beyond_the_connection_cap_do_not_lock_out_a_producer() -> Result<()> {
    // The test holds both ends of every socket: two descriptors each.
    if !ensure_open_files(4 * SILENT_SOCKETS as u64 + 512)? {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path(), |c| c.connection_setup_timeout_ms = 1_000).await?;
    let addr = broker.local_addr();
    let mut silent = Vec::with_capacity(SILENT_SOCKETS);
    for i in 0..SILENT_SOCKETS {
        let socket = tokio::time::timeout(Duration::from_secs(30), TcpStream::connect(addr))
            .await
            .with_context(|| format!("connecting silent socket {i}"))??;
        silent.push(socket);
    }
    // The sockets stay open on this side; the cap (1024) was reached, and
    // the last ones wait in the accept backlog, as does the producer.
    let mut c = Raw::connect(addr).await?;
    first_answer(&mut c, Duration::from_secs(120)).await?;
    create(&mut c, "t", 1, "none").await?;
    c.call(&produce("t", 0, batch(&["after the flood"])?, 1))
        .await?;
    let fetched = c.call(&fetch("t", 0, 0)).await?;
    let records: Bytes = fetched
        .topics
        .into_iter()
        .flat_map(|t| t.partitions)
        .map(|p| p.records)
        .next()
        .context("no partition in the fetch")?;
    assert_eq!(values_of(records)?, vec!["after the flood"]);

    // The broker closed the silent ones: the first and the last.
    let first = silent.first_mut().context("no socket")?;
    closed_by_broker(first).await?;
    let last = silent.last_mut().context("no socket")?;
    closed_by_broker(last).await?;
    drop(silent);
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_connection_idle_past_connections_max_idle_ms_is_closed() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path(), |c| c.connections_max_idle_ms = 500).await?;
    let addr = broker.local_addr();
    let mut c = Raw::connect(addr).await?;
    create(&mut c, "t", 1, "none").await?;
    let idle_for = closed_by_broker(&mut c.stream).await?;
    assert!(
        idle_for >= Duration::from_millis(300),
        "closed after {idle_for:?}, before it was idle for 500 ms"
    );

    // A long poll that outlasts the idle time is a request in flight, not
    // idleness: it gets its (empty) answer.
    let mut c = Raw::connect(addr).await?;
    let started = Instant::now();
    let fetched = c.call(&fetch("t", 0, 2_000)).await?;
    assert!(started.elapsed() >= Duration::from_millis(1_500));
    assert_eq!(fetched.topics.len(), 1);
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_frame_left_unfinished_past_frame_read_timeout_ms_closes_the_connection() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path(), |c| {
        c.frame_read_timeout_ms = 500;
        c.connection_setup_timeout_ms = 600_000;
    })
    .await?;
    let addr = broker.local_addr();
    // A working connection, then the first two bytes of a length prefix.
    let mut c = Raw::connect(addr).await?;
    create(&mut c, "t", 1, "none").await?;
    c.stream.write_all(&[0, 0]).await?;
    let waited = closed_by_broker(&mut c.stream).await?;
    assert!(
        waited < Duration::from_secs(55),
        "not the 600 s setup deadline"
    );
    // Others are unaffected.
    let mut other = Raw::connect(addr).await?;
    first_answer(&mut other, Duration::from_secs(10)).await?;
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn connections_that_send_nothing_or_do_not_authenticate_are_closed_after_the_setup_timeout()
-> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path(), |c| c.connection_setup_timeout_ms = 500).await?;
    let addr = broker.local_addr();
    let mut silent = TcpStream::connect(addr).await?;
    closed_by_broker(&mut silent).await?;

    // No users: one request is setup enough; the connection then stays.
    let mut anonymous = Raw::connect(addr).await?;
    first_answer(&mut anonymous, Duration::from_secs(10)).await?;
    let credential = ScramCredential::generate("root-secret")?;
    anonymous
        .call(&CreateUserRequest {
            name: "root".into(),
            superuser: true,
            salt: Bytes::from(credential.salt),
            iterations: credential.iterations,
            stored_key: credential.stored_key,
            server_key: credential.server_key,
        })
        .await?;

    // With users: a connection that only asks ApiVersions is closed.
    let mut unauthenticated = Raw::connect(addr).await?;
    first_answer(&mut unauthenticated, Duration::from_secs(10)).await?;
    closed_by_broker(&mut unauthenticated.stream).await?;

    // One that logs in stays, well past the setup timeout.
    let mut user = Raw::connect(addr).await?;
    login(&mut user, "root", "root-secret").await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    first_answer(&mut user, Duration::from_secs(10)).await?;
    broker.shutdown().await?;
    Ok(())
}

/// Record bytes the write-deadline tests put in their topic: several times
/// what a socket's buffers hold, so a client that does not read stalls the
/// broker's writes.
const TOPIC_BYTES: usize = 4 << 20;
/// One record's value in those tests (a batch stays under the 1 MiB
/// `max_message_bytes`).
const VALUE_BYTES: usize = 100 << 10;

/// Fills topic `t` (created here) with [`TOPIC_BYTES`] of records.
async fn fill_topic(c: &mut Raw) -> Result<()> {
    create(c, "t", 1, "none").await?;
    let value = "v".repeat(VALUE_BYTES);
    let per_batch = 8;
    for _ in 0..TOPIC_BYTES / (VALUE_BYTES * per_batch) {
        let values = vec![value.as_str(); per_batch];
        c.call(&produce("t", 0, batch(&values)?, 1)).await?;
    }
    Ok(())
}

/// A Fetch of the whole topic `t` from offset 0: a response of about
/// [`TOPIC_BYTES`].
fn fetch_all() -> FetchRequest {
    FetchRequest {
        max_wait_ms: 0,
        min_bytes: 1,
        max_bytes: 8 << 20,
        topics: vec![FetchTopic {
            topic: "t".into(),
            partitions: vec![FetchPartition {
                partition: 0,
                fetch_offset: 0,
                partition_max_bytes: 8 << 20,
            }],
        }],
    }
}

/// A connection whose receive buffer is as small as the kernel allows, so
/// that what the broker sends piles up in the broker's socket.
async fn small_window_connection(addr: std::net::SocketAddr) -> Result<Raw> {
    let socket = TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(4096)?;
    let stream = socket.connect(addr).await?;
    Ok(Raw::from_stream(stream))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_pipelines_fetches_and_never_reads_is_closed_after_the_write_timeout()
-> Result<()> {
    let dir = tempfile::tempdir()?;
    // One slot: while the stuck connection holds it, nobody else is served.
    let broker = start(dir.path(), |c| {
        c.max_connections = 1;
        c.connection_write_timeout_ms = 1_000;
    })
    .await?;
    let addr = broker.local_addr();
    let mut setup = Raw::connect(addr).await?;
    fill_topic(&mut setup).await?;
    drop(setup);

    // Many fetches of the whole topic, sent at once, and nothing read.
    let mut stuck = small_window_connection(addr).await?;
    first_answer(&mut stuck, Duration::from_secs(60)).await?;
    for _ in 0..32 {
        stuck.send(&fetch_all()).await?;
    }

    // The broker gives up on it, and the slot goes to the next client.
    // (Without the write deadline it holds the slot for good: no answer.)
    let mut c = Raw::connect(addr).await?;
    first_answer(&mut c, Duration::from_secs(30)).await?;
    c.call(&produce("t", 0, batch(&["after the stuck reader"])?, 1))
        .await?;
    drop(stuck);
    broker.shutdown().await?;
    Ok(())
}

/// Fetches of the whole topic the slow reader below sends at once.
const SLOW_FETCHES: usize = 3;
/// How long the slow reader below reads slowly: many write timeouts.
const SLOW_READ_PHASE: Duration = Duration::from_secs(8);
/// Its pause between two reads (each takes the few KiB its small receive
/// window holds).
const SLOW_READ_PAUSE: Duration = Duration::from_millis(200);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_reading_slowly_but_steadily_is_not_closed_by_the_write_timeout() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path(), |c| c.connection_write_timeout_ms = 1_000).await?;
    let addr = broker.local_addr();
    let mut setup = Raw::connect(addr).await?;
    fill_topic(&mut setup).await?;
    drop(setup);

    let mut slow = small_window_connection(addr).await?;
    first_answer(&mut slow, Duration::from_secs(60)).await?;
    // Answers far larger than any socket buffer (tcp_wmem's maximum is
    // 4 MiB by default): the broker's writes have to wait.
    for _ in 0..SLOW_FETCHES {
        slow.send(&fetch_all()).await?;
    }
    // A few KiB every 200 ms for eight write timeouts: the broker's socket
    // is full all along, and the peer's window opens only a little at a time.
    let mut chunk = vec![0u8; 64 << 10];
    let mut response = Vec::new();
    let started = Instant::now();
    while started.elapsed() < SLOW_READ_PHASE {
        let n = tokio::time::timeout(Duration::from_secs(10), slow.stream.read(&mut chunk))
            .await
            .context("no bytes for 10 s")??;
        if n == 0 {
            bail!(
                "closed by the broker while read slowly, after {} bytes and {:?}",
                response.len(),
                started.elapsed()
            );
        }
        response.extend_from_slice(chunk.get(..n).context("read past the buffer")?);
        tokio::time::sleep(SLOW_READ_PAUSE).await;
    }
    assert_eq!(
        complete_frames(&response)?,
        0,
        "the first answer was read in the slow phase: the broker never had to wait"
    );
    // Then the rest at full speed: every answer comes whole.
    while complete_frames(&response)? < SLOW_FETCHES {
        if started.elapsed() > CLOSE_WAIT {
            bail!("only {} bytes after {CLOSE_WAIT:?}", response.len());
        }
        let n = tokio::time::timeout(Duration::from_secs(10), slow.stream.read(&mut chunk))
            .await
            .context("no bytes for 10 s")??;
        if n == 0 {
            bail!("closed by the broker after {} bytes", response.len());
        }
        response.extend_from_slice(chunk.get(..n).context("read past the buffer")?);
    }
    broker.shutdown().await?;
    Ok(())
}

/// How many whole length-prefixed response frames `bytes` starts with.
fn complete_frames(bytes: &[u8]) -> Result<usize> {
    let mut rest = bytes;
    let mut frames = 0;
    while let Some(prefix) = rest.get(..4) {
        let len = 4 + u32::from_be_bytes(prefix.try_into()?) as usize;
        let Some(after) = rest.get(len..) else {
            break;
        };
        rest = after;
        frames += 1;
    }
    Ok(frames)
}
