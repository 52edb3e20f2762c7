//! One client connection: a reader that decodes and dispatches requests, and a
//! writer that sends responses in request order, record bytes by `sendfile(2)`.
//!
//! ```text
//! socket ──read──> RequestCodec ──> request::handle ──> Reply ──(bounded mpsc)──> writer ──> socket
//!                        │                                 Now / Later(task)         │ bytes: write
//!                        └── in-flight byte permits, released when the reply is sent ┘ files: sendfile
//! ```
//!
//! Back-pressure: the reader stops reading the socket when the connection has
//! `max_inflight_requests` replies queued or `max_inflight_bytes` of request
//! frames not yet answered, so neither a flood of produces nor a consumer that
//! does not read its socket makes the broker's memory grow; TCP pushes back on
//! the client. Fetch responses hold file ranges, not record bytes.
//!
//! A malformed frame (over `max_frame_bytes`, shorter than its header) closes
//! this connection only; a well-framed request with a bad body gets an error
//! response and the connection stays open. Nothing here can panic on input.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::codec::Decoder;
use warren_protocol::frame::RequestCodec;
use warren_storage::FileSlice;

use crate::connections::ConnectionInfo;
use crate::request::{self, Reply};
use crate::response::Chunk;
use crate::server::Shared;

/// Responses smaller than this are gathered into one write.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;
/// Initial read buffer; grows to hold a whole frame once its length is known.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// A reply waiting for its turn on the socket, with the request's byte permit.
struct Queued {
    reply: Reply,
    permit: OwnedSemaphorePermit,
}

/// Serves one connection until the peer closes it, it misbehaves, or the broker
/// shuts down. Logs one line at open and one at close with the reason.
pub async fn run(socket: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    tracing::info!(%peer, "connection opened");
    let registration = shared.connections.register(peer, false);
    let info = Arc::clone(&registration.info);
    let mut session = crate::auth::Session::new(Arc::clone(&info));
    let (mut reader, writer) = socket.into_split();
    let (tx, rx) = mpsc::channel::<Queued>(shared.config.max_inflight_requests);
    let write_task = tokio::spawn(write_loop(writer, rx, Arc::clone(&info)));
    let inflight = Arc::new(Semaphore::new(shared.config.max_inflight_bytes));
    let mut codec = RequestCodec::new(shared.config.max_frame_bytes);
    let mut buf = BytesMut::with_capacity(READ_BUFFER_BYTES);
    let mut requests: u64 = 0;
    let reason: String = 'conn: loop {
        loop {
            let frame = match codec.decode(&mut buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => break 'conn format!("malformed frame: {e}"),
            };
            requests += 1;
            ConnectionInfo::add(&info.requests, 1);
            let frame_bytes = frame.body.len() + warren_protocol::frame::REQUEST_HEADER_BYTES;
            let want = frame_bytes.clamp(1, shared.config.max_inflight_bytes) as u32;
            let permit = tokio::select! {
                p = Arc::clone(&inflight).acquire_many_owned(want) => match p {
                    Ok(p) => p,
                    Err(_) => break 'conn "closed".to_string(),
                },
                () = shared.shutdown.cancelled() => break 'conn "broker shutting down".to_string(),
            };
            let reply = request::handle(frame, &shared, &mut session);
            if matches!(reply, Reply::None) {
                continue;
            }
            if tx.send(Queued { reply, permit }).await.is_err() {
                break 'conn "write failed".to_string();
            }
        }
        tokio::select! {
            read = reader.read_buf(&mut buf) => match read {
                Ok(0) if buf.is_empty() => break 'conn "closed by peer".to_string(),
                Ok(0) => break 'conn format!("closed by peer mid-frame ({} bytes unread)", buf.len()),
                Ok(n) => ConnectionInfo::add(&info.bytes_in, n as u64),
                Err(e) => break 'conn format!("read error: {e}"),
            },
            () = shared.shutdown.cancelled() => break 'conn "broker shutting down".to_string(),
        }
    };
    // Let queued replies finish (the writer drains the queue, then exits).
    drop(tx);
    let write_result = write_task.await;
    let reason = match write_result {
        Ok(Err(e)) => format!("{reason}; write error: {e}"),
        _ => reason,
    };
    drop(registration);
    tracing::info!(%peer, %reason, requests, "connection closed");
}

async fn write_loop(
    mut writer: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Queued>,
    info: Arc<ConnectionInfo>,
) -> io::Result<()> {
    let mut buf = BytesMut::with_capacity(WRITE_BUFFER_BYTES);
    while let Some(queued) = rx.recv().await {
        let response = match queued.reply {
            Reply::Now(r) => r,
            Reply::Later(task) => match task.await {
                Ok(r) => r,
                Err(e) => {
                    // A handler task panicked or was cancelled: the stream's
                    // order can no longer be kept, so close the connection.
                    return Err(io::Error::other(format!("request handler failed: {e}")));
                }
            },
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
                    send_file(&writer, &slice).await?;
                }
            }
        }
        drop(queued.permit);
        if rx.is_empty() && !buf.is_empty() {
            writer.write_all(&buf).await?;
            buf.clear();
        }
    }
    if !buf.is_empty() {
        writer.write_all(&buf).await?;
    }
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
