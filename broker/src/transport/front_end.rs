//! [`FrontEnd`]: what a wire protocol plugs into the shared transport.
//!
//! The native protocol's is `native::NativeFrontEnd`; a Kafka or AMQP
//! listener adds its own in its own folder and is served by the same
//! [`connection::run`](super::connection::run) and accept loop.

use std::fmt;
use std::sync::Arc;

use tokio_util::codec::Decoder;

use super::{Outbox, Reply};
use crate::connections::ConnectionInfo;
use crate::metrics::RequestLabels;

/// A wire protocol served by the transport: how its bytes are framed, what
/// a connection remembers, and how a request becomes a [`Reply`].
///
/// The transport owns everything else: reading and the read deadlines,
/// the in-flight budget, the in-order reply queue, writing (`sendfile` or
/// the TLS copy), the write deadline, metrics, the connection registry and
/// graceful shutdown.
///
/// One value serves every connection of a listener (it is shared, hence
/// `Sync`); per-connection state lives in [`Session`](Self::Session).
///
/// ### To ensure correctness:
/// - The codec frames bytes only: it never panics on input, checks a frame's
///   length against `max_frame_bytes` before reserving room for it, returns
///   `Ok(None)` while a frame is incomplete, and `Err` only for bytes that
///   cannot be framed (the transport then closes this connection, logging
///   "malformed frame: {error}"). A well-framed request with a bad body is
///   the handler's business: answer it with an error and keep the
///   connection.
/// - [`handle`](Self::handle) runs on the connection's reader task, one
///   request at a time in arrival order, and must not block or wait:
///   anything that waits (an fsync, a long poll) goes into a
///   [`Reply::later`] task. Replies are written in request order whatever
///   order their tasks finish in.
/// - [`request_bytes`](Self::request_bytes) is what the request holds in
///   memory until its reply is written (its frame's size): the connection
///   stops reading once `max_inflight_bytes` of them are unanswered, so an
///   answer far below the truth defeats the back-pressure.
/// - [`setup_done`](Self::setup_done) turns true at the latest when the
///   session may do real work; until then `connection_setup_timeout_ms`
///   runs (it is asked only after a first request was read).
/// - A session that pushes (see [`Outbox`]) sends whole messages; each goes
///   out between two replies, never inside one, after everything queued
///   before it.
pub trait FrontEnd: Send + Sync + 'static {
    /// One decoded request frame.
    type Request: Send + 'static;
    /// The frame decoder, one per connection (it may keep state between
    /// frames). Its error says why bytes cannot be framed.
    type Codec: Decoder<Item = Self::Request, Error: fmt::Display> + Send + 'static;
    /// What one connection remembers (authentication, negotiated options,
    /// consumers), made when the connection opens and dropped when its
    /// reader stops.
    type Session: Send + 'static;

    /// The decoder for a new connection, refusing frames over
    /// `max_frame_bytes`.
    fn codec(&self, max_frame_bytes: usize) -> Self::Codec;

    /// The session of a new connection. `outbox` queues messages on its
    /// writer unasked; a protocol that only answers drops it.
    fn session(&self, info: Arc<ConnectionInfo>, outbox: Outbox) -> Self::Session;

    /// Bytes `request` counts against the connection's
    /// `max_inflight_bytes` until its reply is written (its frame's size,
    /// header included).
    fn request_bytes(&self, request: &Self::Request) -> usize;

    /// The request's api key: the `api` label of the request count and
    /// latency metrics (`warren_requests_total`,
    /// `warren_request_duration_seconds`), named by
    /// [`request_labels`](Self::request_labels).
    fn api_key(&self, request: &Self::Request) -> u16;

    /// The names of this protocol's api keys and outcome codes in the
    /// request metrics (asked once per listener). A response's outcome is
    /// its [`Response::outcome`](super::response::Response::outcome).
    fn request_labels(&self) -> RequestLabels;

    /// Answers one request (see the trait docs: no waiting here).
    fn handle(&self, request: Self::Request, session: &mut Self::Session) -> Reply;

    /// Whether the session finished its setup (authenticated, or nothing to
    /// authenticate), which stops the `connection_setup_timeout_ms` clock.
    fn setup_done(&self, session: &mut Self::Session) -> bool;
}
