//! The connection's writer queue and the [`Outbox`] a front-end pushes
//! unsolicited messages through (AMQP's `basic.deliver`: the broker speaks
//! without being asked).
//!
//! ```text
//! reader ──(reply, request permit)─┐
//!                                  ├──> bounded queue (max_inflight_requests) ──> writer ──> socket
//! Outbox::push ─(message, permit)──┘     FIFO by the moment each entry went in
//! ```
//!
//! A pushed message takes a place in the same queue as the replies and
//! holds its bytes of the same in-flight budget (`max_inflight_bytes`)
//! until it is written, so a consumer that does not read its socket stops
//! its pushers the way it stops its pipelined requests. It goes out whole,
//! between two replies, after everything queued before it; pushes from one
//! task keep their order. A reply and a push from another task are ordered
//! only by when each went in, so a request whose answer must come before
//! the pushes it starts (AMQP's `basic.consume-ok` before the first
//! `basic.deliver`) is answered with [`Reply::None`] and its answer sent as
//! the pushing task's first push.
//!
//! The outbox does not keep the connection open: it holds the queue only
//! weakly, and once the reader stops (peer gone, deadline) or the broker
//! starts shutting down, every push, waiting or new, fails with [`Closed`]
//! while the writer drains what was queued. Thread-safe; clones share the connection.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::Reply;
use super::response::{Chunk, Response};

/// One entry of a connection's writer queue: a reply (or a pushed message)
/// waiting for its turn on the socket, with the in-flight bytes it holds.
pub(super) struct Queued {
    pub reply: Reply,
    pub permit: OwnedSemaphorePermit,
    /// For a [`Reply::Later`]: the api key and start time its metrics are
    /// recorded with once the task's response is ready. A pushed message is
    /// no request: `started` is `None`, so nothing is recorded.
    pub api_key: u16,
    pub started: Option<Instant>,
}

/// The in-flight permits `bytes` takes out of a budget of `max_bytes`: at
/// least one (an empty request is still in flight), at most the whole
/// budget (a bigger one waits for every other to be answered, then goes).
pub(super) fn permits_for(bytes: usize, max_bytes: usize) -> u32 {
    bytes.clamp(1, max_bytes) as u32
}

/// The connection is closing or closed: the message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the connection is closing; the message was not sent")]
pub struct Closed;

/// Sends messages on a connection unasked (see the module docs). Made by
/// the transport for each connection and given to
/// [`FrontEnd::session`](super::FrontEnd::session); clone it into the tasks
/// that push.
#[derive(Clone)]
pub struct Outbox {
    queue: mpsc::WeakSender<Queued>,
    inflight: Arc<Semaphore>,
    max_inflight_bytes: usize,
    /// Cancelled by the reader when it stops, and with the broker's
    /// shutdown token (a child of it).
    closing: CancellationToken,
}

impl fmt::Debug for Outbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outbox")
            .field("closing", &self.closing.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl Outbox {
    /// The outbox of the connection whose queue is `queue`, in-flight
    /// budget `inflight` (of `max_inflight_bytes`), and whose reader
    /// cancels `closing` when it stops.
    pub(super) fn new(
        queue: &mpsc::Sender<Queued>,
        inflight: &Arc<Semaphore>,
        max_inflight_bytes: usize,
        closing: CancellationToken,
    ) -> Outbox {
        Outbox {
            queue: queue.downgrade(),
            inflight: Arc::clone(inflight),
            max_inflight_bytes,
            closing,
        }
    }
}

#[cfg_attr(
    not(test),
    expect(
        dead_code,
        reason = "no front-end pushes yet (AMQP will); the tests do"
    )
)]
impl Outbox {
    /// Queues `message` (a whole frame of the front-end's protocol, bytes
    /// and file ranges) after everything already queued. Waits while the
    /// connection's in-flight budget is spent or its queue is full, that is
    /// while the peer is not reading.
    ///
    /// # Errors
    /// [`Closed`] when the connection's reader has stopped or the broker is
    /// shutting down (or either happens while this waits): `message` is
    /// dropped.
    pub async fn push(&self, message: Response) -> Result<(), Closed> {
        let bytes: usize = message.chunks.iter().map(Chunk::len).sum();
        if self.closing.is_cancelled() {
            return Err(Closed);
        }
        // A strong sender only while this push is under way, so pushers
        // never keep a closed connection's writer waiting for more.
        let queue = self.queue.upgrade().ok_or(Closed)?;
        let want = permits_for(bytes, self.max_inflight_bytes);
        let permit = tokio::select! {
            p = Arc::clone(&self.inflight).acquire_many_owned(want) => p.map_err(|_| Closed)?,
            () = self.closing.cancelled() => return Err(Closed),
        };
        let queued = Queued {
            reply: Reply::Now(message),
            permit,
            api_key: 0,
            started: None,
        };
        tokio::select! {
            sent = queue.send(queued) => sent.map_err(|_| Closed),
            () = self.closing.cancelled() => Err(Closed),
        }
    }

    /// Whether the connection's reader has stopped or the broker is shutting
    /// down (pushes fail from then on). A pushing task can watch
    /// [`closed`](Self::closed) instead.
    pub fn is_closed(&self) -> bool {
        self.closing.is_cancelled()
    }

    /// Completes when pushes start failing (see
    /// [`is_closed`](Self::is_closed)): a pushing task selects on it to end
    /// with its connection.
    pub async fn closed(&self) {
        self.closing.cancelled().await;
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use futures_util::FutureExt;

    use super::*;

    fn message(len: usize) -> Response {
        Response::new(vec![Chunk::Bytes(Bytes::from(vec![7; len]))], 0)
    }

    #[tokio::test]
    async fn a_push_holds_its_bytes_of_the_budget_until_written_and_waits_when_it_is_spent()
    -> Result<(), Closed> {
        let (tx, mut rx) = mpsc::channel(8);
        let inflight = Arc::new(Semaphore::new(100));
        let closing = CancellationToken::new();
        let outbox = Outbox::new(&tx, &inflight, 100, closing.clone());
        outbox.push(message(60)).await?;
        assert_eq!(inflight.available_permits(), 40);
        // 60 more do not fit: the push waits.
        assert_eq!(
            outbox.push(message(60)).now_or_never(),
            None,
            "the push waits for the budget"
        );
        // The writer writes the first message: its permits come back.
        let written = rx.recv().await.ok_or(Closed)?;
        drop(written);
        assert_eq!(inflight.available_permits(), 100);
        outbox.push(message(60)).await?;
        // Larger than the whole budget: takes all of it, still goes.
        drop(rx.recv().await.ok_or(Closed)?);
        outbox.push(message(1_000)).await?;
        assert_eq!(inflight.available_permits(), 0);
        Ok(())
    }

    #[tokio::test]
    async fn pushes_fail_once_the_reader_stops_and_do_not_keep_the_queue_open() {
        let (tx, mut rx) = mpsc::channel(8);
        let inflight = Arc::new(Semaphore::new(10));
        let closing = CancellationToken::new();
        let outbox = Outbox::new(&tx, &inflight, 10, closing.clone());
        assert_eq!(outbox.push(message(10)).await, Ok(()));
        // This one waits for the budget when the reader stops.
        let waiting = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.push(message(10)).await }
        });
        tokio::task::yield_now().await;
        closing.cancel();
        drop(tx);
        assert_eq!(waiting.await.ok(), Some(Err(Closed)));
        assert!(outbox.is_closed());
        assert_eq!(outbox.push(message(1)).await, Err(Closed));
        // The writer drains what was queued, then sees the end although an
        // outbox is still alive.
        assert!(rx.recv().await.is_some());
        assert!(rx.recv().await.is_none());
    }
}
