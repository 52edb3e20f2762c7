//! One pipelined TCP connection to the broker (plain or TLS), and the
//! [`Connector`] that reconnects it.
//!
//! ```text
//!  callers ──Outgoing──▶ mpsc ──▶ writer task ──frames──▶ socket ──▶ broker
//!                                    │ push (correlation id, reply)
//!                                    ▼
//!                              pending FIFO ◀── pop ── reader task ◀── responses
//! ```
//!
//! A caller hands a whole request ([`Outgoing`]) to the writer task through a
//! channel, so a caller that gives up (a dropped future, a timeout) can never
//! leave half a frame on the socket. The writer assigns the correlation id,
//! pushes the pending reply onto a FIFO *before* writing the frame, then writes
//! it with vectored writes (record batches go out from their own buffers, not
//! copied into the frame). The broker answers in request order, so the reader
//! task pops the FIFO's front for each response and checks that the
//! correlation ids agree; a mismatch, an undecodable frame, EOF or an I/O
//! error closes the connection and fails every pending request with the
//! retriable [`Error::ConnectionLost`]. Requests that expect no response
//! (produce with `acks = 0`) are never pushed on the FIFO; their reply is sent
//! once the frame is written.
//!
//! In-flight requests are bounded by a semaphore of `max_in_flight` permits: a
//! permit travels with the request and is released when its response arrives
//! (or, without response, when it is written).
//!
//! Responses are decoded with protocol's [`ResponseCodec`]: the body of a
//! response is a frozen slice of the read buffer (no copy).
//!
//! With [`ConnectionConfig::tls`] the TLS handshake follows the TCP connect,
//! both within `connect_timeout`; the reader and writer tasks are generic over
//! the stream's halves and do not know the difference.
//!
//! Thread-safe: `Connection` and `Connector` are `Send + Sync` and shared
//! behind `Arc`. The pending FIFO is a `std::sync::Mutex` held only to push or
//! pop one entry.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_util::codec::FramedRead;
use tracing::{debug, warn};
use warren_protocol::api::api_versions::ApiVersionsRequest;
use warren_protocol::api::auth::AuthenticateRequest;
use warren_protocol::api::{self, ApiKey, Body, ErrorBody, Request};
use warren_protocol::frame::{REQUEST_HEADER_BYTES, ResponseCodec, ResponseFrame};
use warren_protocol::scram::ScramClient;
use warren_protocol::{ErrorCode, frame};

use crate::config::{ConnectionConfig, Credentials, Mechanism};
use crate::error::{Error, Result};

/// Initial capacity of the read buffer; it grows to a whole frame as needed
/// (the codec reserves a frame's remainder once its length is known).
const READ_BUFFER_BYTES: usize = 64 << 10;
/// Most buffers handed to one `writev` call (Linux allows 1024).
const MAX_IOVECS: usize = 64;
/// Frames up to this size are copied into one buffer and written with one
/// `write` call; larger ones go out vectored from their parts.
const COPY_FRAME_BYTES: usize = 16 << 10;

/// What a request's reply receiver yields: the response frame, `None` for a
/// request that expects no response (once written), or the error that
/// failed it.
pub(crate) type Reply = Result<Option<ResponseFrame>>;

/// A whole request on its way to the writer task.
struct Outgoing {
    api_key: u16,
    api_version: u16,
    /// The body, in parts written back to back.
    parts: Vec<Bytes>,
    expect_response: bool,
    reply: oneshot::Sender<Reply>,
    permit: OwnedSemaphorePermit,
}

/// A request written and waiting for its response.
struct Pending {
    correlation_id: u32,
    reply: oneshot::Sender<Reply>,
    _permit: OwnedSemaphorePermit,
}

#[derive(Default)]
struct PendingQueue {
    queue: VecDeque<Pending>,
    /// Why the connection closed; once set, nothing is pushed any more.
    closed: Option<String>,
}

/// State shared by the handle and both tasks.
struct Shared {
    addr: SocketAddr,
    pending: Mutex<PendingQueue>,
    dead: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, PendingQueue> {
        // A poisoned lock only means another thread panicked mid-push/pop; the
        // queue itself is still a valid VecDeque.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lost(&self, reason: &str) -> Error {
        Error::ConnectionLost {
            addr: self.addr,
            reason: reason.to_owned(),
        }
    }

    /// Marks the connection dead and fails every pending request. Idempotent.
    fn close(&self, reason: String) {
        self.dead.store(true, Ordering::Release);
        let drained: Vec<Pending> = {
            let mut q = self.lock();
            if q.closed.is_some() {
                return;
            }
            debug!(addr = %self.addr, %reason, pending = q.queue.len(), "connection closed");
            q.closed = Some(reason.clone());
            q.queue.drain(..).collect()
        };
        for p in drained {
            let _ = p.reply.send(Err(self.lost(&reason)));
        }
    }

    /// Registers a pending response, or gives it back if the connection closed.
    fn push(&self, pending: Pending) -> std::result::Result<(), (Pending, String)> {
        let mut q = self.lock();
        if let Some(reason) = &q.closed {
            return Err((pending, reason.clone()));
        }
        q.queue.push_back(pending);
        Ok(())
    }

    fn pop(&self) -> Option<Pending> {
        self.lock().queue.pop_front()
    }
}

/// One TCP connection to the broker; see the module docs. Dropping it stops
/// both tasks and fails whatever was pending.
pub(crate) struct Connection {
    shared: Arc<Shared>,
    outgoing: mpsc::UnboundedSender<Outgoing>,
    in_flight: Arc<Semaphore>,
    max_frame_bytes: usize,
    reader: AbortHandle,
    writer: AbortHandle,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
        self.shared.close("connection dropped by the client".into());
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.shared.addr)
            .field("dead", &self.is_dead())
            .finish()
    }
}

impl Connection {
    /// Connects to the first address `config.bootstrap` resolves to that
    /// accepts, sends ApiVersions and checks that the broker supports
    /// version 0 of every api in `required`.
    ///
    /// # Errors
    /// [`Error::Connect`] if no address accepts; [`Error::Timeout`] after
    /// `connect_timeout`; [`Error::UnsupportedApi`]; the handshake's errors.
    pub(crate) async fn connect(config: &ConnectionConfig, required: &[ApiKey]) -> Result<Self> {
        let timeout = config.connect_timeout;
        let conn = tokio::time::timeout(timeout, Connection::open_stream(config))
            .await
            .map_err(|_| Error::Timeout {
                what: "connect",
                after: timeout,
            })??;
        let versions = conn.call(&ApiVersionsRequest, timeout).await?;
        for key in required {
            let version = key_version(*key);
            let supported = versions.apis.iter().any(|a| {
                a.api_key == *key as u16 && (a.min_version..=a.max_version).contains(&version)
            });
            if !supported {
                return Err(Error::UnsupportedApi {
                    addr: conn.addr(),
                    api: key.name(),
                    version,
                });
            }
        }
        if let Some(credentials) = &config.credentials {
            authenticate(&conn, credentials, timeout).await?;
        }
        debug!(addr = %conn.addr(), "connected");
        Ok(conn)
    }

    /// Connects TCP, then TLS if configured, and starts the reader and
    /// writer tasks (no ApiVersions yet).
    async fn open_stream(config: &ConnectionConfig) -> Result<Self> {
        // Built before connecting: a bad CA file fails without touching the network.
        let tls = match &config.tls {
            Some(tls) => Some((tls, crate::tls::connector(tls, &config.bootstrap)?)),
            None => None,
        };
        let stream = open(&config.bootstrap).await?;
        let addr = stream.peer_addr().map_err(|e| Error::Connect {
            addr: config.bootstrap.clone(),
            source: Arc::new(e),
        })?;
        // Requests are whole frames written at once; Nagle would only delay them.
        let _ = stream.set_nodelay(true);
        match tls {
            None => {
                let (read, write) = stream.into_split();
                Ok(Connection::from_halves(read, write, addr, config))
            }
            Some((tls, (connector, server_name))) => {
                let stream = connector
                    .connect(server_name, stream)
                    .await
                    .map_err(|e| crate::tls::handshake_error(&config.bootstrap, tls, e))?;
                let (read, write) = tokio::io::split(stream);
                Ok(Connection::from_halves(read, write, addr, config))
            }
        }
    }

    /// Wraps the halves of a connected stream and starts its reader and
    /// writer tasks (no handshake).
    fn from_halves<R, W>(read: R, write: W, addr: SocketAddr, config: &ConnectionConfig) -> Self
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let shared = Arc::new(Shared {
            addr,
            pending: Mutex::new(PendingQueue::default()),
            dead: AtomicBool::new(false),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_loop(read, shared.clone(), config.max_frame_bytes));
        let writer = tokio::spawn(write_loop(
            write,
            rx,
            shared.clone(),
            config.max_frame_bytes,
        ));
        Connection {
            shared,
            outgoing: tx,
            in_flight: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
            max_frame_bytes: config.max_frame_bytes,
            reader: reader.abort_handle(),
            writer: writer.abort_handle(),
        }
    }

    /// The broker's address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// True once the connection failed or was closed; the [`Connector`] then
    /// replaces it.
    pub(crate) fn is_dead(&self) -> bool {
        self.shared.dead.load(Ordering::Acquire)
    }

    /// Closes the connection, failing everything pending with
    /// `ConnectionLost { reason }`.
    pub(crate) fn close(&self, reason: impl Into<String>) {
        self.reader.abort();
        self.writer.abort();
        self.shared.close(reason.into());
    }

    /// Waits for an in-flight slot (see the module docs). Slots come back
    /// as responses arrive, or all at once when the connection closes.
    ///
    /// # Errors
    /// [`Error::Closed`] only if the semaphore were closed, which it never is.
    pub(crate) async fn slot(&self) -> Result<OwnedSemaphorePermit> {
        self.in_flight
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Closed)
    }

    /// An in-flight slot if one is free now.
    pub(crate) fn try_slot(&self) -> Option<OwnedSemaphorePermit> {
        self.in_flight.clone().try_acquire_owned().ok()
    }

    /// Queues a request made of `parts` for the writer task. The returned
    /// receiver yields the response (or `None` once written when
    /// `expect_response` is false); a dropped sender means the connection died.
    ///
    /// # Errors
    /// `ConnectionLost` when the connection is already closed; a
    /// [`warren_protocol::Error::FrameTooLarge`] protocol error for a request
    /// over `max_frame_bytes` (the connection stays usable).
    pub(crate) fn send(
        &self,
        permit: OwnedSemaphorePermit,
        api_key: ApiKey,
        parts: Vec<Bytes>,
        expect_response: bool,
    ) -> Result<oneshot::Receiver<Reply>> {
        let len = REQUEST_HEADER_BYTES + parts.iter().map(Bytes::len).sum::<usize>();
        if len > self.max_frame_bytes {
            return Err(warren_protocol::Error::FrameTooLarge {
                len,
                max: self.max_frame_bytes,
            }
            .into());
        }
        let (reply, rx) = oneshot::channel();
        self.outgoing
            .send(Outgoing {
                api_key: api_key as u16,
                api_version: key_version(api_key),
                parts,
                expect_response,
                reply,
                permit,
            })
            .map_err(|_| self.shared.lost(&self.closed_reason()))?;
        Ok(rx)
    }

    fn closed_reason(&self) -> String {
        self.shared
            .lock()
            .closed
            .clone()
            .unwrap_or_else(|| "connection closed".into())
    }

    /// Waits for a reply from [`send`](Self::send) for at most `timeout`;
    /// on timeout the connection is closed (see [`ConnectionConfig::request_timeout`]).
    ///
    /// # Errors
    /// `ConnectionLost`, `Timeout { what: "request" }`, or the reply's error.
    pub(crate) async fn wait(
        &self,
        rx: oneshot::Receiver<Reply>,
        timeout: Duration,
    ) -> Result<Option<ResponseFrame>> {
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Err(self.shared.lost(&self.closed_reason())),
            Err(_) => {
                self.close(format!("no response within {timeout:?}"));
                Err(Error::Timeout {
                    what: "request",
                    after: timeout,
                })
            }
        }
    }

    /// Sends `request` and decodes its response, waiting at most `timeout`
    /// (slot, write and response together).
    ///
    /// # Errors
    /// Connection errors; [`Error::Broker`] for a response header error code;
    /// a protocol error for an undecodable body.
    pub(crate) async fn call<R: Request>(
        &self,
        request: &R,
        timeout: Duration,
    ) -> Result<R::Response> {
        let deadline = Instant::now() + timeout;
        let permit = tokio::time::timeout_at(deadline, self.slot())
            .await
            .map_err(|_| Error::Timeout {
                what: "request",
                after: timeout,
            })??;
        let body = api::encode(request)?;
        let rx = self.send(permit, R::API_KEY, vec![body], true)?;
        let frame = self
            .wait(rx, deadline.saturating_duration_since(Instant::now()))
            .await?
            .ok_or_else(|| self.shared.lost("no response frame"))?;
        decode_response(frame)
    }
}

/// Authenticates a fresh connection (before any other request on it).
///
/// # Errors
/// [`Error::AuthenticationFailed`] for a refusal or a broker that cannot prove
/// it holds the credential; connection errors.
async fn authenticate(
    conn: &Connection,
    credentials: &Credentials,
    timeout: Duration,
) -> Result<()> {
    let fail = |message: String| Error::AuthenticationFailed {
        addr: conn.addr(),
        user: credentials.user.clone(),
        message,
    };
    let refused = |e: Error| match e {
        Error::Broker { code, message } => fail(format!("{}: {message}", code.name())),
        other => other,
    };
    let request = |auth_bytes: Bytes| AuthenticateRequest {
        mechanism: credentials.mechanism.name().into(),
        auth_bytes,
    };
    match credentials.mechanism {
        Mechanism::ScramSha256 => {
            let client = ScramClient::new(&credentials.user, &credentials.password)
                .map_err(|e| fail(e.to_string()))?;
            let first = conn
                .call(&request(Bytes::from(client.client_first())), timeout)
                .await
                .map_err(refused)?;
            // PBKDF2 takes milliseconds: off the runtime's worker threads.
            let (fin, client_final) =
                tokio::task::spawn_blocking(move || client.handle_server_first(&first.auth_bytes))
                    .await
                    .map_err(|e| fail(e.to_string()))?
                    .map_err(|e| fail(e.to_string()))?;
            let last = conn
                .call(&request(Bytes::from(client_final)), timeout)
                .await
                .map_err(refused)?;
            fin.verify_server_final(&last.auth_bytes)
                .map_err(|e| fail(e.to_string()))?;
        }
        Mechanism::Plain => {
            let message = format!("\0{}\0{}", credentials.user, credentials.password);
            conn.call(&request(Bytes::from(message)), timeout)
                .await
                .map_err(refused)?;
        }
    }
    debug!(addr = %conn.addr(), user = %credentials.user, "authenticated");
    Ok(())
}

/// The version of `key` this client speaks (0 for every api today).
fn key_version(key: ApiKey) -> u16 {
    ApiKey::SUPPORTED
        .iter()
        .find(|(k, _, _)| *k == key)
        .map_or(0, |(_, _, max)| *max)
}

/// Decodes a response frame: a header error code becomes [`Error::Broker`]
/// with the error body's message, anything else decodes as `T`.
///
/// # Errors
/// As described; a protocol error for an undecodable body.
pub(crate) fn decode_response<T: Body>(frame: ResponseFrame) -> Result<T> {
    let code = ErrorCode(frame.header.error_code);
    if code != ErrorCode::NONE {
        let message = match api::decode::<ErrorBody>(frame.body) {
            Ok(body) => body.message,
            Err(e) => format!("(undecodable error body: {e})"),
        };
        return Err(crate::error::from_header_code(code, message));
    }
    Ok(api::decode::<T>(frame.body)?)
}

/// Resolves `bootstrap` and connects to the first address that accepts.
async fn open(bootstrap: &str) -> Result<TcpStream> {
    let connect_error = |e: io::Error| Error::Connect {
        addr: bootstrap.to_owned(),
        source: Arc::new(e),
    };
    let addrs = tokio::net::lookup_host(bootstrap)
        .await
        .map_err(connect_error)?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the address resolves to nothing");
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(connect_error(last))
}

async fn read_loop<R: AsyncRead + Unpin>(read: R, shared: Arc<Shared>, max_frame_bytes: usize) {
    let mut frames =
        FramedRead::with_capacity(read, ResponseCodec::new(max_frame_bytes), READ_BUFFER_BYTES);
    let reason = loop {
        match frames.next().await {
            None => break "closed by the broker".to_owned(),
            Some(Err(e)) => break format!("reading a response: {e}{}", tls_hint(&e)),
            Some(Ok(frame)) => {
                let id = frame.header.correlation_id;
                match shared.pop() {
                    Some(p) if p.correlation_id == id => {
                        let _ = p.reply.send(Ok(Some(frame)));
                    }
                    Some(p) => {
                        let reason = format!(
                            "response correlation id {id} does not match the oldest request's {}",
                            p.correlation_id
                        );
                        warn!(addr = %shared.addr, %reason, "closing connection");
                        let _ = p.reply.send(Err(shared.lost(&reason)));
                        break reason;
                    }
                    None => {
                        let reason = format!("response (correlation id {id}) to no request");
                        warn!(addr = %shared.addr, %reason, "closing connection");
                        break reason;
                    }
                }
            }
        }
    };
    shared.close(reason);
}

/// A hint when a "frame length" is really the header of a TLS record (content
/// type 20..=23, version 3.x): a plain client talking to a TLS listener reads
/// the broker's alert that way.
fn tls_hint(e: &warren_protocol::Error) -> &'static str {
    match e {
        warren_protocol::Error::FrameTooLarge { len, .. }
            if (0x14..=0x17).contains(&(len >> 24)) && (len >> 16) & 0xff == 3 =>
        {
            " (the broker answered with TLS: connect with TLS and trust its CA)"
        }
        _ => "",
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut write: W,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    shared: Arc<Shared>,
    max_frame_bytes: usize,
) {
    let mut next_correlation_id: u32 = 0;
    while let Some(out) = rx.recv().await {
        let correlation_id = next_correlation_id;
        next_correlation_id = next_correlation_id.wrapping_add(1);
        let body_len: usize = out.parts.iter().map(Bytes::len).sum();
        let frame_len = REQUEST_HEADER_BYTES + body_len;
        if frame_len > max_frame_bytes {
            // `send` refuses these; kept so the writer never puts one on the wire.
            let _ = out.reply.send(Err(warren_protocol::Error::FrameTooLarge {
                len: frame_len,
                max: max_frame_bytes,
            }
            .into()));
            continue;
        }
        let mut head = BytesMut::with_capacity(frame::LENGTH_FIELD_BYTES + REQUEST_HEADER_BYTES);
        head.put_u32(frame_len as u32);
        head.put_u16(out.api_key);
        head.put_u16(out.api_version);
        head.put_u32(correlation_id);
        // Register before writing: the response may be read before the write returns.
        let written_reply = if out.expect_response {
            let pending = Pending {
                correlation_id,
                reply: out.reply,
                _permit: out.permit,
            };
            if let Err((pending, reason)) = shared.push(pending) {
                let _ = pending.reply.send(Err(shared.lost(&reason)));
                break;
            }
            None
        } else {
            Some((out.reply, out.permit))
        };
        let written = match write_frame(&mut write, head.freeze(), out.parts).await {
            // A no-op for TCP; TLS may still hold the frame's last records.
            // Flushed once the queue is empty, so pipelined frames share writes.
            Ok(()) if rx.is_empty() => write.flush().await,
            other => other,
        };
        match written {
            Ok(()) => {
                if let Some((reply, permit)) = written_reply {
                    drop(permit);
                    let _ = reply.send(Ok(None));
                }
            }
            Err(e) => {
                let reason = format!("writing a request: {e}");
                if let Some((reply, _permit)) = written_reply {
                    let _ = reply.send(Err(shared.lost(&reason)));
                }
                shared.close(reason);
                break;
            }
        }
    }
    // Requests still queued are dropped with their reply senders: their
    // receivers see the connection as lost.
    rx.close();
    let _ = write.shutdown().await;
}

/// Writes `head` then `parts`, small frames as one copy, large ones vectored.
async fn write_frame<W: AsyncWrite + Unpin>(
    write: &mut W,
    head: Bytes,
    parts: Vec<Bytes>,
) -> io::Result<()> {
    let total = head.len() + parts.iter().map(Bytes::len).sum::<usize>();
    if total <= COPY_FRAME_BYTES {
        let mut buf = BytesMut::with_capacity(total);
        buf.put_slice(&head);
        for p in &parts {
            buf.put_slice(p);
        }
        return write.write_all(&buf).await;
    }
    let mut bufs: Vec<Bytes> = Vec::with_capacity(parts.len() + 1);
    bufs.push(head);
    bufs.extend(parts.into_iter().filter(|p| !p.is_empty()));
    let mut first = 0;
    while first < bufs.len() {
        let written = {
            let slices: Vec<IoSlice<'_>> = bufs
                .iter()
                .skip(first)
                .take(MAX_IOVECS)
                .map(|b| IoSlice::new(b))
                .collect();
            write.write_vectored(&slices).await?
        };
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let mut left = written;
        while left > 0 {
            let Some(buf) = bufs.get_mut(first) else {
                break;
            };
            if left >= buf.len() {
                left -= buf.len();
                first += 1;
            } else {
                buf.advance(left);
                left = 0;
            }
        }
    }
    Ok(())
}

/// A connection that is made on first use and remade after it fails, with an
/// exponential backoff between failed connects. Thread-safe; one caller at a
/// time connects (the others wait for it).
#[derive(Debug)]
pub(crate) struct Connector {
    config: ConnectionConfig,
    required: &'static [ApiKey],
    state: tokio::sync::Mutex<ConnectorState>,
}

#[derive(Debug, Default)]
struct ConnectorState {
    current: Option<Arc<Connection>>,
    failures: u32,
    retry_at: Option<Instant>,
}

impl Connector {
    /// A connector that has not connected yet.
    pub(crate) fn new(config: ConnectionConfig, required: &'static [ApiKey]) -> Self {
        Connector {
            config,
            required,
            state: tokio::sync::Mutex::new(ConnectorState::default()),
        }
    }

    /// The connection settings.
    pub(crate) fn config(&self) -> &ConnectionConfig {
        &self.config
    }

    /// The live connection, connecting first if there is none (after the
    /// backoff if the last attempt failed).
    ///
    /// # Errors
    /// As [`Connection::connect`].
    pub(crate) async fn get(&self) -> Result<Arc<Connection>> {
        let mut state = self.state.lock().await;
        if let Some(conn) = state.current.as_ref().filter(|c| !c.is_dead()) {
            return Ok(conn.clone());
        }
        state.current = None;
        if let Some(at) = state.retry_at {
            tokio::time::sleep_until(at).await;
        }
        match Connection::connect(&self.config, self.required).await {
            Ok(conn) => {
                let conn = Arc::new(conn);
                state.failures = 0;
                state.retry_at = None;
                state.current = Some(conn.clone());
                Ok(conn)
            }
            Err(e) => {
                state.failures = state.failures.saturating_add(1);
                let wait = self.config.backoff(state.failures);
                debug!(error = %e, ?wait, failures = state.failures, "connect failed");
                state.retry_at = Some(Instant::now() + wait);
                Err(e)
            }
        }
    }

    /// Sends `request` on the current connection and decodes the response
    /// within `request_timeout` (plus `extra_wait`, for a long poll). An
    /// `idempotent` request that meets a lost connection is sent once more on
    /// a new one.
    ///
    /// # Errors
    /// As [`Connection::call`] and [`get`](Self::get).
    pub(crate) async fn call<R: Request>(
        &self,
        request: &R,
        extra_wait: Duration,
        idempotent: bool,
    ) -> Result<R::Response> {
        let timeout = self.config.request_timeout + extra_wait;
        let conn = self.get().await?;
        match conn.call(request, timeout).await {
            Err(Error::ConnectionLost { .. }) if idempotent => {
                let conn = self.get().await?;
                conn.call(request, timeout).await
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
    use super::*;
    use crate::test_broker::{MockBroker, Reaction};
    use warren_protocol::api::topics::{ListTopicsRequest, ListTopicsResponse, TopicListing};

    fn config(addr: SocketAddr) -> ConnectionConfig {
        ConnectionConfig {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            ..ConnectionConfig::new(addr.to_string())
        }
    }

    #[tokio::test]
    async fn pipelined_requests_get_their_own_responses() {
        let broker = MockBroker::start(|req| {
            // Answer ListTopics with a topic named after the correlation id.
            Reaction::respond(&ListTopicsResponse {
                topics: vec![TopicListing {
                    name: format!("t{}", req.header.correlation_id),
                    partitions: 1,
                }],
            })
        })
        .await;
        let conn = Arc::new(
            Connection::connect(&config(broker.addr()), &[ApiKey::ListTopics])
                .await
                .unwrap(),
        );
        let mut rxs = Vec::new();
        for _ in 0..20 {
            let permit = conn.slot().await.unwrap();
            let body = api::encode(&ListTopicsRequest).unwrap();
            // Split the (empty) body into parts to exercise the gather path.
            rxs.push(
                conn.send(permit, ApiKey::ListTopics, vec![body, Bytes::new()], true)
                    .unwrap(),
            );
        }
        for (i, rx) in rxs.into_iter().enumerate() {
            let frame = conn
                .wait(rx, Duration::from_secs(5))
                .await
                .unwrap()
                .unwrap();
            let resp: ListTopicsResponse = decode_response(frame).unwrap();
            // Correlation id 0 was the ApiVersions handshake.
            assert_eq!(resp.topics[0].name, format!("t{}", i + 1));
        }
    }

    #[tokio::test]
    async fn a_header_error_code_is_a_typed_broker_error() {
        let broker =
            MockBroker::start(|_| Reaction::error(ErrorCode::INVALID_REQUEST, "bad body")).await;
        let conn = Connection::connect(&config(broker.addr()), &[])
            .await
            .unwrap();
        let err = conn
            .call(&ListTopicsRequest, Duration::from_secs(5))
            .await
            .unwrap_err();
        match err {
            Error::Broker { code, message } => {
                assert_eq!(code, ErrorCode::INVALID_REQUEST);
                assert_eq!(message, "bad body");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(!conn.is_dead());
    }

    #[tokio::test]
    async fn a_broker_without_a_needed_api_is_refused() {
        let broker = MockBroker::start_with_apis(
            vec![(ApiKey::ApiVersions, 0, 0), (ApiKey::Metadata, 0, 0)],
            |_| Reaction::Hang,
        )
        .await;
        let err = Connection::connect(&config(broker.addr()), &[ApiKey::Metadata, ApiKey::Produce])
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::UnsupportedApi {
                    api: "Produce",
                    version: 0,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_dropped_connection_fails_pending_requests_as_retriable() {
        let broker = MockBroker::start(|_| Reaction::Close).await;
        let conn = Connection::connect(&config(broker.addr()), &[])
            .await
            .unwrap();
        let err = conn
            .call(&ListTopicsRequest, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::ConnectionLost { .. }), "{err:?}");
        assert!(err.is_retriable());
        // Give the reader a moment to see EOF, then new requests fail fast.
        for _ in 0..100 {
            if conn.is_dead() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(conn.is_dead());
        let err = conn
            .call(&ListTopicsRequest, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::ConnectionLost { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn a_wrong_correlation_id_closes_the_connection() {
        let broker = MockBroker::start(|req| {
            Reaction::RespondWithId(
                req.header.correlation_id.wrapping_add(7),
                api::encode(&ListTopicsResponse::default()).unwrap(),
            )
        })
        .await;
        let conn = Connection::connect(&config(broker.addr()), &[])
            .await
            .unwrap();
        let err = conn
            .call(&ListTopicsRequest, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::ConnectionLost { ref reason, .. } if reason.contains("correlation")),
            "{err:?}"
        );
        assert!(conn.is_dead());
    }

    /// On paused time: the 50 ms request timeout is a tokio timer.
    #[tokio::test(start_paused = true)]
    async fn a_request_timeout_closes_the_connection() {
        let broker = MockBroker::start(|_| Reaction::Hang).await;
        let conn = Connection::connect(&config(broker.addr()), &[])
            .await
            .unwrap();
        let err = conn
            .call(&ListTopicsRequest, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Timeout {
                    what: "request",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(conn.is_dead());
    }

    #[tokio::test]
    async fn requests_without_response_complete_once_written() {
        let broker = MockBroker::start(|req| {
            if req.header.api_key == ApiKey::Produce as u16 {
                Reaction::Silent
            } else {
                Reaction::respond(&ListTopicsResponse::default())
            }
        })
        .await;
        let conn = Connection::connect(&config(broker.addr()), &[])
            .await
            .unwrap();
        // A large body goes out through the vectored path.
        let big = Bytes::from(vec![7u8; 200_000]);
        let permit = conn.slot().await.unwrap();
        let rx = conn
            .send(
                permit,
                ApiKey::Produce,
                vec![Bytes::from_static(b"x"), big.clone(), big],
                false,
            )
            .unwrap();
        assert!(
            conn.wait(rx, Duration::from_secs(5))
                .await
                .unwrap()
                .is_none()
        );
        // The next request still lines up with its response.
        let resp = conn
            .call(&ListTopicsRequest, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(resp.topics.is_empty());
        let seen = broker.requests();
        let produce = seen
            .iter()
            .find(|r| r.header.api_key == ApiKey::Produce as u16)
            .unwrap();
        assert_eq!(produce.body.len(), 400_001);
    }

    #[tokio::test]
    async fn the_connector_reconnects_after_a_failure() {
        let broker = MockBroker::start(|_| Reaction::respond(&ListTopicsResponse::default())).await;
        let connector = Connector::new(config(broker.addr()), &[ApiKey::ListTopics]);
        let first = connector.get().await.unwrap();
        first.close("test");
        let second = connector.get().await.unwrap();
        assert!(!Arc::ptr_eq(&first, &second));
        connector
            .call(&ListTopicsRequest, Duration::ZERO, true)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn connect_errors_name_the_address() {
        // Bind then drop a listener to get a port nobody listens on.
        let addr = {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap()
        };
        let connector = Connector::new(
            ConnectionConfig {
                reconnect_backoff: Duration::from_millis(1),
                reconnect_backoff_max: Duration::from_millis(2),
                ..config(addr)
            },
            &[],
        );
        let err = connector.get().await.unwrap_err();
        assert!(
            matches!(err, Error::Connect { ref addr, .. } if addr.contains("127.0.0.1")),
            "{err:?}"
        );
        assert!(err.is_retriable());
        assert!(connector.get().await.is_err());
    }
}
