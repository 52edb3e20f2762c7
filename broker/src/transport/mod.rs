//! The transport every front-end shares, protocol-agnostic: one
//! connection's reader and writer (framing by the front-end's codec,
//! pipelining, back-pressure, deadlines, the in-order reply queue, pushed
//! messages, `sendfile(2)` or the TLS copy), and the [`Reply`] a handler
//! gives for each request.
//!
//! A wire protocol plugs in as a [`FrontEnd`]: a frame decoder, a
//! per-connection session, a handler that turns a request into a [`Reply`],
//! and what the loop needs to know about a request (its size, its metrics
//! label) and a session (whether its setup is done). It never touches the
//! connection code. The connection gets a [`TransportContext`] (limits,
//! shutdown token, connection registry, metrics, TLS) instead of the whole
//! broker state.
//!
//! ```text
//!              TcpListener ──accept (max_connections)──> connection::run
//!                                                           │ TLS handshake?
//!   FrontEnd ── codec(max_frame_bytes) ─────────────────────┤
//!            ── session(info, Outbox) ──────────────────────┤
//!            ── handle(request, &mut session) -> Reply ─────┘
//!   Outbox (cloneable, held by the session or its tasks) ──push──> the same writer queue
//! ```
//!
//! - `front_end`: the [`FrontEnd`] trait a protocol implements.
//! - `connection`: the reader and writer tasks of one connection.
//! - `outbox`: [`Outbox`], messages a front-end sends unasked (AMQP
//!   `basic.deliver`), through the connection's writer queue.
//! - `response`: a response as bytes and file ranges, framed by its
//!   front-end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub mod connection;
pub mod front_end;
pub mod outbox;
pub mod response;
#[cfg(test)]
mod tests;

pub use front_end::FrontEnd;
pub use outbox::Outbox;
use response::Response;

use crate::config::BrokerConfig;
use crate::connections::Connections;
use crate::metrics::Metrics;

/// What a request produces.
pub enum Reply {
    /// The response is ready.
    Now(Response),
    /// The response comes from a task (it waits for something), with the
    /// moment it was ready (the request-latency metric ends there, not when
    /// the connection's writer gets to it behind earlier replies).
    Later(JoinHandle<(Response, Instant)>),
    /// No response at all (produce with acks=0).
    None,
}

impl Reply {
    /// A reply from a future, run as its own task.
    pub fn later(f: impl Future<Output = Response> + Send + 'static) -> Reply {
        Reply::Later(tokio::spawn(async move {
            let response = f.await;
            (response, Instant::now())
        }))
    }
}

/// The limits and timeouts a connection reads, taken from [`BrokerConfig`]
/// (each field's meaning, default and unit are documented there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportConfig {
    /// Connections one listener serves at once (`max_connections`).
    pub max_connections: usize,
    /// Largest request frame the codec accepts (`max_frame_bytes`).
    pub max_frame_bytes: usize,
    /// Replies and pushed messages queued per connection
    /// (`max_inflight_requests`).
    pub max_inflight_requests: usize,
    /// Bytes of requests not yet answered and of pushed messages not yet
    /// written, per connection (`max_inflight_bytes`).
    pub max_inflight_bytes: usize,
    /// `connection_setup_timeout_ms`.
    pub connection_setup_timeout_ms: u64,
    /// `frame_read_timeout_ms`.
    pub frame_read_timeout_ms: u64,
    /// `connections_max_idle_ms`.
    pub connections_max_idle_ms: u64,
    /// `connection_write_timeout_ms` (the socket's `TCP_USER_TIMEOUT`).
    pub connection_write_timeout_ms: u64,
}

impl From<&BrokerConfig> for TransportConfig {
    fn from(c: &BrokerConfig) -> TransportConfig {
        TransportConfig {
            max_connections: c.max_connections,
            max_frame_bytes: c.max_frame_bytes,
            max_inflight_requests: c.max_inflight_requests,
            max_inflight_bytes: c.max_inflight_bytes,
            connection_setup_timeout_ms: c.connection_setup_timeout_ms,
            frame_read_timeout_ms: c.frame_read_timeout_ms,
            connections_max_idle_ms: c.connections_max_idle_ms,
            connection_write_timeout_ms: c.connection_write_timeout_ms,
        }
    }
}

/// What every connection of a listener shares, whatever its protocol.
/// Thread-safe (read-only but for the registry and metrics, which are).
pub struct TransportContext {
    pub config: TransportConfig,
    /// Cancelled when the broker starts shutting down: stop accepting and
    /// reading, drain the queued replies.
    pub shutdown: CancellationToken,
    /// Open connections (the admin API lists them).
    pub connections: Arc<Connections>,
    /// The broker's metrics: each listener registers its protocol's
    /// request families here ([`FrontEnd::request_labels`]).
    pub metrics: Arc<Metrics>,
    /// The TLS acceptor when `tls_cert`/`tls_key` are set: then the listener
    /// speaks only TLS.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

/// Accepts connections on `listener` and serves each with `front_end`'s
/// protocol in its own task, at most `max_connections` at once (an accept
/// waits for a free slot), until the broker shuts down. Each connection
/// task holds a clone of `done`: the receiver sees the channel close once
/// every connection has finished. A second listener (another protocol) is
/// one more call, with its own front-end and a clone of `done`.
pub async fn accept_loop<F: FrontEnd>(
    listener: TcpListener,
    transport: Arc<TransportContext>,
    front_end: Arc<F>,
    done: mpsc::Sender<()>,
) {
    let limit = Arc::new(Semaphore::new(transport.config.max_connections));
    let requests = Arc::new(transport.metrics.requests(front_end.request_labels()));
    let mut backoff = Duration::from_millis(5);
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&limit).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            () = transport.shutdown.cancelled() => return,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = transport.shutdown.cancelled() => return,
        };
        match accepted {
            Ok((socket, peer)) => {
                backoff = Duration::from_millis(5);
                if let Err(e) = socket.set_nodelay(true) {
                    tracing::debug!(%peer, error = %e, "set TCP_NODELAY failed");
                }
                let transport = Arc::clone(&transport);
                let front_end = Arc::clone(&front_end);
                let done = done.clone();
                let requests = Arc::clone(&requests);
                tokio::spawn(async move {
                    connection::run(socket, peer, &transport, &*front_end, &requests).await;
                    drop(permit);
                    drop(done);
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: wait, do not spin.
                tracing::warn!(error = %e, "accept failed; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}
