//! One client connection, whatever its protocol: a reader that decodes
//! requests with the [`FrontEnd`]'s codec and hands them to its handler, and
//! a writer that sends the replies in request order, record bytes by
//! `sendfile(2)`, and the messages the front-end pushes between them.
//!
//! ```text
//! socket ──read──> FrontEnd::Codec ──> FrontEnd::handle ──> Reply ──(bounded mpsc)──> writer ──> socket
//!                        │                  Now / Later(task) / None    ^       │ bytes: write
//!                        │                   Outbox::push(message) ─────┘       │ files: sendfile
//!                        └── in-flight byte permits, released when written ─────┘
//! ```
//!
//! Back-pressure: the reader stops reading the socket when the connection has
//! `max_inflight_requests` replies queued or `max_inflight_bytes` of request
//! frames not yet answered, so neither a flood of produces nor a consumer that
//! does not read its socket makes the broker's memory grow; TCP pushes back on
//! the client. Fetch responses hold file ranges, not record bytes. Pushed
//! messages ([`Outbox`]) take places in the same queue and bytes of the same
//! budget, so their senders wait the same way.
//!
//! Timeouts (so silent or slow clients cannot hold the `max_connections`
//! slots forever; plain TCP and TLS alike, counted after the handshake): a
//! new connection must send a whole first request, and finish its setup
//! ([`FrontEnd::setup_done`]: for the native protocol, authenticate when
//! users exist), within `connection_setup_timeout_ms`; a frame once started
//! must be complete within `frame_read_timeout_ms`; a connection with no
//! request in flight that has sent nothing for `connections_max_idle_ms` is
//! closed. The reader waits on its socket and the earliest deadline
//! ([`Deadlines`]); the close is logged with the reason.
//!
//! Writes have their own deadline, `connection_write_timeout_ms`: a client
//! that pipelines requests with large answers and stops reading leaves the
//! writer blocked on a full socket and the reader on the in-flight permits.
//! The socket's `TCP_USER_TIMEOUT` is set to that timeout, so the kernel
//! fails the connection (`ETIMEDOUT`) once the peer has acknowledged no byte,
//! or kept its receive window shut, for that long: the same for plain
//! writes, `sendfile` and TLS, since all go through that socket. It counts
//! TCP progress, not `write(2)` calls: a slow but steady reader keeps it
//! alive even while the broker's send buffer (megabytes, refilled only once
//! a third of it drained) is full. The writer then stops with the error
//! ([`WRITE_TIMEOUT_REASON`] logged at debug), the reader, which watches for
//! the writer's end besides its socket and deadlines, stops too, and the
//! `max_connections` slot is freed.
//!
//! A malformed frame (over `max_frame_bytes`, shorter than its header) closes
//! this connection only; a well-framed request with a bad body gets an error
//! response and the connection stays open. Nothing here can panic on input.
//!
//! # TLS
//! With a TLS acceptor in the [`TransportContext`], [`run`] first does the
//! TLS handshake in the connection's own task, bounded by
//! [`HANDSHAKE_TIMEOUT`] (a failed or slow handshake closes only this
//! connection, with a log line). The reader and
//! writer below are generic over the stream ([`ResponseWriter`]); only the way
//! file ranges reach the socket differs:
//!
//! - plain TCP: `sendfile(2)`, the kernel copies page cache to socket;
//! - TLS: the kernel cannot encrypt for rustls, which runs in user space, so
//!   each range is read with `pread(2)` into one reusable per-connection buffer
//!   ([`COPY_CHUNK_BYTES`]) and written through the TLS stream, which encrypts
//!   it into its own record buffer. That is two copies and the encryption per
//!   record byte; docs/OPERATIONS.md (`## TLS`) has the measured cost. Future
//!   work: kernel TLS (kTLS, rustls's `dangerous_extract_secrets` handing the
//!   session keys to the socket) would let the TLS path use `sendfile` again.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, Interest, WriteHalf};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::server::TlsStream;
use tokio_util::codec::Decoder;
use warren_storage::FileSlice;

use super::outbox::{Queued, permits_for};
use super::response::Chunk;
use super::{FrontEnd, Outbox, Reply, TransportConfig, TransportContext};
use crate::connections::ConnectionInfo;
use crate::metrics::RequestMetrics;
use crate::tls::HANDSHAKE_TIMEOUT;

/// What a connection closed by `connection_write_timeout_ms` logs.
const WRITE_TIMEOUT_REASON: &str = "the client read nothing of its responses for \
    connection_write_timeout_ms (TCP_USER_TIMEOUT)";
/// The largest `TCP_USER_TIMEOUT` Linux takes (an `int` of milliseconds,
/// about 24.8 days); larger configured values mean "this long".
const MAX_TCP_USER_TIMEOUT_MS: u64 = i32::MAX as u64;

/// Responses smaller than this are gathered into one write.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;
/// Initial read buffer; grows to hold a whole frame once its length is known.
const READ_BUFFER_BYTES: usize = 64 * 1024;
/// Over TLS, file ranges are read and written in pieces of this size, through
/// one buffer per connection (allocated at its first fetch). 256 KiB: big
/// enough that the per-call costs (a `pread`, a wake-up of the writer) are
/// small next to encrypting it, small enough for many connections.
const COPY_CHUNK_BYTES: usize = 256 * 1024;

/// Serves one connection of `front_end`'s protocol until the peer closes
/// it, it misbehaves, or the broker shuts down. Logs one line at open and
/// one at close with the reason. With TLS, the handshake comes first (see
/// the module docs).
pub async fn run<F: FrontEnd>(
    socket: TcpStream,
    peer: SocketAddr,
    transport: &TransportContext,
    front_end: &F,
    requests: &Arc<RequestMetrics>,
) {
    set_write_timeout(&socket, transport.config.connection_write_timeout_ms, peer);
    let Some(acceptor) = transport.tls.clone() else {
        let (reader, writer) = socket.into_split();
        return serve(reader, writer, peer, false, transport, front_end, requests).await;
    };
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(socket));
    let stream = tokio::select! {
        r = handshake => r,
        () = transport.shutdown.cancelled() => return,
    };
    match stream {
        Ok(Ok(stream)) => {
            let (reader, writer) = tokio::io::split(stream);
            serve(reader, writer, peer, true, transport, front_end, requests).await;
        }
        Ok(Err(e)) => {
            tracing::info!(%peer, error = %e, "TLS handshake failed; connection closed");
        }
        Err(_) => {
            tracing::info!(%peer, timeout = ?HANDSHAKE_TIMEOUT, "TLS handshake timed out; connection closed");
        }
    }
}

/// Sets the socket's `TCP_USER_TIMEOUT` (see the module docs). Failing to is
/// logged, not fatal: the connection then only lacks the write deadline.
fn set_write_timeout(socket: &TcpStream, timeout_ms: u64, peer: SocketAddr) {
    let ms = timeout_ms.clamp(1, MAX_TCP_USER_TIMEOUT_MS) as u32;
    if let Err(e) = rustix::net::sockopt::set_tcp_user_timeout(socket, ms) {
        tracing::debug!(%peer, error = %e, "setting TCP_USER_TIMEOUT failed; no write deadline");
    }
}

/// Whether `e` is the kernel's `TCP_USER_TIMEOUT` closing the connection.
fn is_write_timeout(e: &io::Error) -> bool {
    e.raw_os_error() == Some(rustix::io::Errno::TIMEDOUT.raw_os_error())
}

/// The connection proper, over a plain or a TLS stream split in two halves.
async fn serve<F, R, W>(
    mut reader: R,
    writer: W,
    peer: SocketAddr,
    tls: bool,
    transport: &TransportContext,
    front_end: &F,
    requests: &Arc<RequestMetrics>,
) where
    F: FrontEnd,
    R: AsyncRead + Unpin,
    W: ResponseWriter,
{
    let config = &transport.config;
    let metrics = requests;
    tracing::info!(%peer, tls, "connection opened");
    let registration = transport.connections.register(peer, tls);
    let info = Arc::clone(&registration.info);
    let (tx, rx) = mpsc::channel::<Queued>(config.max_inflight_requests);
    let inflight = Arc::new(Semaphore::new(config.max_inflight_bytes));
    // Cancelled when the reader stops, or at once when the broker starts
    // shutting down: pushes fail from then on.
    let closing = transport.shutdown.child_token();
    let outbox = Outbox::new(&tx, &inflight, config.max_inflight_bytes, closing.clone());
    let mut session = front_end.session(Arc::clone(&info), outbox);
    let write_task = tokio::spawn(write_loop(
        writer,
        peer,
        rx,
        Arc::clone(&info),
        Arc::clone(metrics),
    ));
    let mut codec = front_end.codec(config.max_frame_bytes);
    let mut buf = BytesMut::with_capacity(READ_BUFFER_BYTES);
    let mut requests: u64 = 0;
    let mut clock = Deadlines::new(config);
    let reason: String = 'conn: loop {
        let mut decoded = false;
        loop {
            let request = match codec.decode(&mut buf) {
                Ok(Some(request)) => request,
                Ok(None) => break,
                Err(e) => break 'conn format!("malformed frame: {e}"),
            };
            decoded = true;
            requests += 1;
            ConnectionInfo::add(&info.requests, 1);
            let want = permits_for(front_end.request_bytes(&request), config.max_inflight_bytes);
            let permit = tokio::select! {
                p = Arc::clone(&inflight).acquire_many_owned(want) => match p {
                    Ok(p) => p,
                    Err(_) => break 'conn "closed".to_string(),
                },
                // The writer gave up: permits may never come back.
                () = tx.closed() => break 'conn "writer stopped".to_string(),
                () = transport.shutdown.cancelled() => break 'conn "broker shutting down".to_string(),
            };
            let started = metrics.started();
            let api_key = front_end.api_key(&request);
            let reply = front_end.handle(request, &mut session);
            match &reply {
                Reply::Now(response) => {
                    metrics.ready(api_key, response.outcome, started);
                }
                Reply::None => {
                    metrics.ready(api_key, 0, started);
                    continue;
                }
                Reply::Later(_) => {}
            }
            let queued = Queued {
                reply,
                permit,
                api_key,
                started,
            };
            // A send waiting for room fails as soon as the writer stops
            // (dropping its receiver closes the channel).
            if tx.send(queued).await.is_err() {
                break 'conn "writer stopped".to_string();
            }
        }
        clock.frame_progress(decoded, buf.is_empty());
        if !clock.setup_done && requests > 0 && front_end.setup_done(&mut session) {
            clock.setup_done = true;
        }
        let (deadline, why) = clock.next();
        tokio::select! {
            read = reader.read_buf(&mut buf) => match read {
                Ok(0) if buf.is_empty() => break 'conn "closed by peer".to_string(),
                Ok(0) => break 'conn format!("closed by peer mid-frame ({} bytes unread)", buf.len()),
                Ok(n) => {
                    clock.last_read = tokio::time::Instant::now();
                    ConnectionInfo::add(&info.bytes_in, n as u64);
                }
                Err(e) if is_write_timeout(&e) => break 'conn WRITE_TIMEOUT_REASON.to_string(),
                Err(e) => break 'conn format!("read error: {e}"),
            },
            // The writer ends early only on an error (the write deadline, a
            // failed handler): no reply can go out any more, so stop.
            () = tx.closed() => break 'conn "writer stopped".to_string(),
            () = tokio::time::sleep_until(deadline) => {
                let in_flight = inflight.available_permits() < config.max_inflight_bytes;
                match why {
                    // A long poll or a slow reply is not idleness: look again
                    // a whole idle period from now.
                    Expired::Idle if in_flight => clock.last_read = tokio::time::Instant::now(),
                    Expired::Idle => break 'conn format!(
                        "idle for {} ms (connections_max_idle_ms)",
                        clock.idle.as_millis()
                    ),
                    Expired::Frame => break 'conn format!(
                        "request frame not finished within {} ms (frame_read_timeout_ms; {} bytes read)",
                        clock.frame.as_millis(),
                        buf.len()
                    ),
                    Expired::Setup => break 'conn format!(
                        "no {} within {} ms of connecting (connection_setup_timeout_ms)",
                        if requests == 0 { "request" } else { "authentication" },
                        clock.setup.as_millis()
                    ),
                }
            }
            () = transport.shutdown.cancelled() => break 'conn "broker shutting down".to_string(),
        }
    };
    // No more requests: pushes stop, the session ends, and the writer
    // drains the queued replies, then exits (outboxes hold the queue only
    // weakly, so they do not keep it open).
    closing.cancel();
    drop(session);
    drop(tx);
    let write_result = write_task.await;
    let reason = match write_result {
        Ok(Err(e)) if is_write_timeout(&e) => format!("{reason}; {WRITE_TIMEOUT_REASON}"),
        Ok(Err(e)) => format!("{reason}; write error: {e}"),
        _ => reason,
    };
    drop(registration);
    tracing::info!(%peer, %reason, requests, "connection closed");
}

/// Which of a connection's deadlines comes first (on a tie, the first
/// listed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Expired {
    /// `connection_setup_timeout_ms`: no first request, or (users exist) no
    /// authentication yet.
    Setup,
    /// `frame_read_timeout_ms`: a frame was started and not finished.
    Frame,
    /// `connections_max_idle_ms`: nothing read for that long (closes only
    /// when no request is in flight).
    Idle,
}

/// The reader's clock: when the connection opened, when it last read, when
/// the unfinished frame in the buffer started, and the three timeouts.
/// Owned by the reader task; no I/O.
#[derive(Debug)]
struct Deadlines {
    opened: tokio::time::Instant,
    last_read: tokio::time::Instant,
    /// When the first byte of the frame still incomplete in the buffer came.
    frame_started: Option<tokio::time::Instant>,
    /// A first request came and, when users exist, the session authenticated.
    setup_done: bool,
    setup: Duration,
    frame: Duration,
    idle: Duration,
}

impl Deadlines {
    fn new(config: &TransportConfig) -> Deadlines {
        let now = tokio::time::Instant::now();
        Deadlines {
            opened: now,
            last_read: now,
            frame_started: None,
            setup_done: false,
            setup: Duration::from_millis(config.connection_setup_timeout_ms),
            frame: Duration::from_millis(config.frame_read_timeout_ms),
            idle: Duration::from_millis(config.connections_max_idle_ms),
        }
    }

    /// After decoding: an empty buffer holds no frame; bytes left behind a
    /// decoded frame start a new one now; bytes with none decoded continue
    /// the frame already started (or start one).
    fn frame_progress(&mut self, decoded: bool, buffer_empty: bool) {
        self.frame_started = match (buffer_empty, decoded, self.frame_started) {
            (true, _, _) => None,
            (false, false, Some(started)) => Some(started),
            (false, _, _) => Some(tokio::time::Instant::now()),
        };
    }

    /// The earliest deadline and which one it is.
    fn next(&self) -> (tokio::time::Instant, Expired) {
        let mut first = (after(self.last_read, self.idle), Expired::Idle);
        if let Some(started) = self.frame_started {
            first = first.min((after(started, self.frame), Expired::Frame));
        }
        if !self.setup_done {
            first = first.min((after(self.opened, self.setup), Expired::Setup));
        }
        first
    }
}

/// `start + timeout`, or a year from `start` when a huge configured timeout
/// would overflow the clock (a way to say "never").
fn after(start: tokio::time::Instant, timeout: Duration) -> tokio::time::Instant {
    const FAR: Duration = Duration::from_secs(365 * 24 * 3600);
    start.checked_add(timeout).unwrap_or_else(|| start + FAR)
}

/// The writing half of a connection's stream: bytes go through
/// `AsyncWrite`, file ranges through [`send_file`](Self::send_file).
///
/// ### To ensure correctness:
/// `send_file` writes exactly the slice's bytes, in order, or fails; bytes it
/// leaves buffered are written by the next `flush`.
trait ResponseWriter: AsyncWrite + Unpin + Send + 'static {
    /// Writes the file range `slice` to the stream. `scratch` is the
    /// connection's reusable buffer, for writers that must copy.
    fn send_file(
        &mut self,
        slice: &FileSlice,
        scratch: &mut Vec<u8>,
    ) -> impl Future<Output = io::Result<()>> + Send;
}

/// Plain TCP: `sendfile(2)`, no copy.
impl ResponseWriter for OwnedWriteHalf {
    async fn send_file(&mut self, slice: &FileSlice, _scratch: &mut Vec<u8>) -> io::Result<()> {
        send_file(self, slice).await
    }
}

/// TLS: read into `scratch`, encrypt, write (see the module docs for why).
impl ResponseWriter for WriteHalf<TlsStream<TcpStream>> {
    async fn send_file(&mut self, slice: &FileSlice, scratch: &mut Vec<u8>) -> io::Result<()> {
        copy_file(self, slice, scratch).await
    }
}

/// Sends the replies in order, pushed messages where they were queued. On
/// an error (the write deadline included) logs it at debug and returns it,
/// dropping `rx`, which tells the reader to stop.
async fn write_loop<W: ResponseWriter>(
    writer: W,
    peer: SocketAddr,
    rx: mpsc::Receiver<Queued>,
    info: Arc<ConnectionInfo>,
    metrics: Arc<RequestMetrics>,
) -> io::Result<()> {
    let result = write_replies(writer, rx, info, metrics).await;
    match &result {
        Err(e) if is_write_timeout(e) => {
            tracing::debug!(%peer, reason = WRITE_TIMEOUT_REASON, "writer stopped; closing the connection");
        }
        Err(e) => tracing::debug!(%peer, error = %e, "writer stopped; closing the connection"),
        Ok(()) => {}
    }
    result
}

async fn write_replies<W: ResponseWriter>(
    mut writer: W,
    mut rx: mpsc::Receiver<Queued>,
    info: Arc<ConnectionInfo>,
    metrics: Arc<RequestMetrics>,
) -> io::Result<()> {
    let mut buf = BytesMut::with_capacity(WRITE_BUFFER_BYTES);
    // Only TLS writers use it; empty (no allocation) until their first fetch.
    let mut scratch = Vec::new();
    while let Some(queued) = rx.recv().await {
        let response = match queued.reply {
            Reply::Now(r) => r,
            Reply::Later(task) => {
                // Replies already gathered must not wait behind a task that
                // is still running (a long poll can take max_wait_ms).
                if !task.is_finished() && !buf.is_empty() {
                    writer.write_all(&buf).await?;
                    buf.clear();
                    writer.flush().await?;
                }
                match task.await {
                    Ok((r, ready)) => {
                        metrics.done(queued.api_key, r.outcome, queued.started, ready);
                        r
                    }
                    Err(e) => {
                        // A handler task panicked or was cancelled: the stream's
                        // order can no longer be kept, so close the connection.
                        return Err(io::Error::other(format!("request handler failed: {e}")));
                    }
                }
            }
            Reply::None => continue,
        };
        for chunk in response.chunks {
            ConnectionInfo::add(&info.bytes_out, chunk.len() as u64);
            match chunk {
                Chunk::Bytes(b) => {
                    if buf.len() + b.len() > WRITE_BUFFER_BYTES && !buf.is_empty() {
                        writer.write_all(&buf).await?;
                        buf.clear();
                    }
                    if b.len() >= WRITE_BUFFER_BYTES {
                        writer.write_all(&b).await?;
                    } else {
                        buf.extend_from_slice(&b);
                    }
                }
                Chunk::File(slice) => {
                    if !buf.is_empty() {
                        writer.write_all(&buf).await?;
                        buf.clear();
                    }
                    writer.send_file(&slice, &mut scratch).await?;
                }
            }
        }
        drop(queued.permit);
        if rx.is_empty() {
            if !buf.is_empty() {
                writer.write_all(&buf).await?;
                buf.clear();
            }
            // A no-op for TCP; TLS may still hold encrypted records.
            writer.flush().await?;
        }
    }
    if !buf.is_empty() {
        writer.write_all(&buf).await?;
    }
    // Flushes, then TLS sends close_notify; both then shut the socket's write side.
    writer.shutdown().await
}

/// Sends a file range to the socket with `sendfile(2)`: the kernel copies from
/// the page cache to the socket, and no record byte passes through user space.
async fn send_file(writer: &OwnedWriteHalf, slice: &FileSlice) -> io::Result<()> {
    let socket: &TcpStream = writer.as_ref();
    let mut offset = u64::from(slice.position.0);
    let end = offset + u64::from(slice.len);
    while offset < end {
        socket.writable().await?;
        let remaining = (end - offset) as usize;
        let sent = socket.try_io(Interest::WRITABLE, || {
            rustix::fs::sendfile(socket, &*slice.file, Some(&mut offset), remaining)
                .map_err(io::Error::from)
        });
        match sent {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "{} ends before position {offset} (the segment was truncated under a fetch)",
                        slice.path.display()
                    ),
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes a file range through a writer that cannot take `sendfile`: `pread`
/// a chunk into `scratch`, write it, repeat.
///
/// The `pread` blocks this worker thread like `sendfile` does: the ranges are
/// the log's tail, almost always in the page cache, so it is a memory copy,
/// cheaper than a hop to the blocking pool and back per chunk.
async fn copy_file<W: AsyncWrite + Unpin>(
    writer: &mut W,
    slice: &FileSlice,
    scratch: &mut Vec<u8>,
) -> io::Result<()> {
    if scratch.len() < COPY_CHUNK_BYTES {
        scratch.resize(COPY_CHUNK_BYTES, 0);
    }
    let mut position = u64::from(slice.position.0);
    let end = position + u64::from(slice.len);
    while position < end {
        let want = ((end - position) as usize).min(COPY_CHUNK_BYTES);
        let Some(chunk) = scratch.get_mut(..want) else {
            return Err(io::Error::other("copy buffer smaller than a chunk"));
        };
        let read = slice.file.read_at(chunk, position)?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{} ends before position {position} (the segment was truncated under a fetch)",
                    slice.path.display()
                ),
            ));
        }
        let Some(filled) = chunk.get(..read) else {
            return Err(io::Error::other("read past the copy buffer"));
        };
        writer.write_all(filled).await?;
        position += read as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;

    fn clock() -> Deadlines {
        Deadlines::new(&TransportConfig::from(&BrokerConfig {
            connection_setup_timeout_ms: 10_000,
            frame_read_timeout_ms: 30_000,
            connections_max_idle_ms: 600_000,
            ..BrokerConfig::default()
        }))
    }

    #[test]
    fn a_new_connection_waits_for_its_setup_then_for_idleness() {
        let mut c = clock();
        assert_eq!(c.next().1, Expired::Setup);
        c.setup_done = true;
        assert_eq!(c.next().1, Expired::Idle);
        assert_eq!(c.next().0, c.last_read + Duration::from_secs(600));
    }

    /// On paused time: the clock moves by exactly 2 ms between the two
    /// frames, so the new start is checked to the instant, not just "later".
    #[tokio::test(start_paused = true)]
    async fn a_started_frame_keeps_its_start_until_one_is_decoded() {
        let mut c = clock();
        c.setup_done = true;
        c.frame_progress(false, false);
        let started = c.frame_started.expect("a frame started");
        assert_eq!(
            c.next(),
            (started + Duration::from_secs(30), Expired::Frame)
        );
        // More bytes of the same frame: same start.
        c.frame_progress(false, false);
        assert_eq!(c.frame_started, Some(started));
        // Frames decoded and bytes of the next one left: a new start.
        tokio::time::advance(Duration::from_millis(2)).await;
        c.frame_progress(true, false);
        assert_eq!(c.frame_started, Some(started + Duration::from_millis(2)));
        // All decoded: no frame pending.
        c.frame_progress(true, true);
        assert_eq!(c.frame_started, None);
        assert_eq!(c.next().1, Expired::Idle);
    }

    #[tokio::test]
    async fn the_write_timeout_becomes_the_sockets_tcp_user_timeout_clamped_to_the_kernels_limit()
    -> io::Result<()> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let peer = listener.local_addr()?;
        let socket = TcpStream::connect(peer).await?;
        set_write_timeout(&socket, 30_000, peer);
        assert_eq!(rustix::net::sockopt::tcp_user_timeout(&socket)?, 30_000);
        set_write_timeout(&socket, u64::MAX, peer);
        assert_eq!(
            u64::from(rustix::net::sockopt::tcp_user_timeout(&socket)?),
            MAX_TCP_USER_TIMEOUT_MS
        );
        Ok(())
    }

    #[test]
    fn a_huge_timeout_means_far_away_not_a_panic() {
        let c = Deadlines::new(&TransportConfig::from(&BrokerConfig {
            connections_max_idle_ms: u64::MAX,
            connection_setup_timeout_ms: u64::MAX,
            ..BrokerConfig::default()
        }));
        let (deadline, _) = c.next();
        assert!(deadline > tokio::time::Instant::now() + Duration::from_secs(86_400));
    }
}
