//! The transport with a protocol of its own, over real sockets on
//! 127.0.0.1: a tiny front-end (frames are a u32 big-endian length and a
//! text payload) that echoes, answers late, stays silent, and pushes. It
//! shows what a second protocol plugs in, and that the connection code
//! keeps replies in request order with pushed messages between them.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio_util::codec::{Decoder, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

use super::outbox::Closed;
use super::response::{Chunk, Response};
use super::{FrontEnd, Outbox, Reply, TransportConfig, TransportContext};
use crate::config::BrokerConfig;
use crate::connections::{ConnectionInfo, Connections};
use crate::metrics::{Metrics, RequestLabels};

/// Generous bound on every wait, so a broken test fails instead of hanging
/// (the box is loaded: never a tight timing).
const PATIENCE: Duration = Duration::from_secs(30);

/// The test protocol's front-end. Requests (text):
/// - `slow`: answered by a task that waits until a later `fast` was handled;
/// - `fast`: answered now, and lets the pending `slow` finish;
/// - `silent`: no answer;
/// - `subscribe <n>`: no answer; a task pushes `subscribed`, then
///   `message 0` .. `message <n-1>`;
/// - anything else: echoed.
#[derive(Default)]
struct Lines {
    /// Every session's outbox and gate, for the tests to push and open
    /// from outside.
    sessions: Mutex<Vec<(Outbox, Arc<Notify>)>>,
}

impl Lines {
    /// The first connection's outbox and gate.
    fn first_session(&self) -> anyhow::Result<(Outbox, Arc<Notify>)> {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .first()
            .cloned()
            .context("a session was made")
    }
}

struct LinesSession {
    outbox: Outbox,
    /// Opened by `fast`, awaited by `slow`.
    gate: Arc<Notify>,
}

/// One frame of the test protocol: length, then payload.
fn frame(payload: &[u8]) -> Response {
    let mut b = BytesMut::with_capacity(4 + payload.len());
    b.put_u32(payload.len() as u32);
    b.put_slice(payload);
    Response::new(vec![Chunk::Bytes(b.freeze())], 0)
}

impl FrontEnd for Lines {
    type Request = BytesMut;
    type Codec = LengthDelimitedCodec;
    type Session = LinesSession;

    fn codec(&self, max_frame_bytes: usize) -> LengthDelimitedCodec {
        LengthDelimitedCodec::builder()
            .max_frame_length(max_frame_bytes)
            .new_codec()
    }

    fn session(&self, _info: Arc<ConnectionInfo>, outbox: Outbox) -> LinesSession {
        let gate = Arc::new(Notify::new());
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((outbox.clone(), Arc::clone(&gate)));
        LinesSession { outbox, gate }
    }

    fn request_bytes(&self, request: &BytesMut) -> usize {
        4 + request.len()
    }

    fn api_key(&self, _request: &BytesMut) -> u16 {
        0
    }

    fn request_labels(&self) -> RequestLabels {
        RequestLabels {
            apis: vec![Some("Line")],
            outcomes: vec![(0, "OK")],
            unknown_outcome: "UNKNOWN",
        }
    }

    fn handle(&self, request: BytesMut, session: &mut LinesSession) -> Reply {
        let text = String::from_utf8_lossy(&request).into_owned();
        if text == "slow" {
            let gate = Arc::clone(&session.gate);
            return Reply::later(async move {
                gate.notified().await;
                frame(b"slow")
            });
        }
        if text == "fast" {
            // A permit is stored if `slow` is not waiting yet: no lost wake-up.
            session.gate.notify_one();
            return Reply::Now(frame(b"fast"));
        }
        if text == "silent" {
            return Reply::None;
        }
        if let Some(n) = text.strip_prefix("subscribe ") {
            let n: usize = n.parse().unwrap_or(0);
            let outbox = session.outbox.clone();
            tokio::spawn(async move {
                outbox.push(frame(b"subscribed")).await?;
                for i in 0..n {
                    outbox
                        .push(frame(format!("message {i}").as_bytes()))
                        .await?;
                }
                Ok::<(), Closed>(())
            });
            return Reply::None;
        }
        Reply::Now(frame(&request))
    }

    fn setup_done(&self, _session: &mut LinesSession) -> bool {
        true
    }
}

/// A listener serving [`Lines`] through the broker's accept loop.
struct Server {
    addr: SocketAddr,
    front_end: Arc<Lines>,
    transport: Arc<TransportContext>,
    done: mpsc::Receiver<()>,
}

async fn start() -> anyhow::Result<Server> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let transport = Arc::new(TransportContext {
        config: TransportConfig::from(&BrokerConfig::default()),
        shutdown: CancellationToken::new(),
        connections: Arc::new(Connections::default()),
        metrics: Arc::new(Metrics::new(false)),
        tls: None,
    });
    let front_end = Arc::new(Lines::default());
    let (done_tx, done) = mpsc::channel(1);
    tokio::spawn(crate::transport::accept_loop(
        listener,
        Arc::clone(&transport),
        Arc::clone(&front_end),
        done_tx,
    ));
    Ok(Server {
        addr,
        front_end,
        transport,
        done,
    })
}

/// A client of the test protocol.
struct Client {
    socket: TcpStream,
    codec: LengthDelimitedCodec,
    buf: BytesMut,
}

impl Client {
    async fn connect(addr: SocketAddr) -> io::Result<Client> {
        Ok(Client {
            socket: TcpStream::connect(addr).await?,
            codec: LengthDelimitedCodec::new(),
            buf: BytesMut::new(),
        })
    }

    /// Sends requests back to back, reading nothing.
    async fn send(&mut self, requests: &[&str]) -> io::Result<()> {
        let mut out = BytesMut::new();
        for r in requests {
            out.put_u32(r.len() as u32);
            out.put_slice(r.as_bytes());
        }
        self.socket.write_all(&out).await
    }

    /// The next whole frame's payload, or `None` at the end of the stream.
    async fn next(&mut self) -> anyhow::Result<Option<String>> {
        loop {
            if let Some(f) = self.codec.decode(&mut self.buf)? {
                return Ok(Some(String::from_utf8(f.to_vec())?));
            }
            let read = tokio::time::timeout(PATIENCE, self.socket.read_buf(&mut self.buf))
                .await
                .context("no frame from the broker")??;
            if read == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                bail!("the stream ended inside a frame");
            }
        }
    }

    async fn frames(&mut self, n: usize) -> anyhow::Result<Vec<String>> {
        let mut frames = Vec::with_capacity(n);
        for _ in 0..n {
            frames.push(self.next().await?.context("the stream ended early")?);
        }
        Ok(frames)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_go_out_in_request_order_with_pushed_messages_whole_between_them()
-> anyhow::Result<()> {
    const MESSAGES: usize = 500;
    const ECHOES: usize = 500;
    let server = start().await?;
    let mut client = Client::connect(server.addr).await?;
    let subscribe = format!("subscribe {MESSAGES}");
    let echoes: Vec<String> = (0..ECHOES).map(|i| format!("echo {i}")).collect();
    let mut requests = vec![subscribe.as_str()];
    requests.extend(echoes.iter().map(String::as_str));
    client.send(&requests).await?;
    let frames = client.frames(1 + MESSAGES + ECHOES).await?;

    let replies: Vec<&String> = frames.iter().filter(|f| f.starts_with("echo")).collect();
    assert_eq!(
        replies,
        echoes.iter().collect::<Vec<_>>(),
        "replies in order"
    );
    let pushed: Vec<&String> = frames.iter().filter(|f| !f.starts_with("echo")).collect();
    let mut expected = vec!["subscribed".to_string()];
    expected.extend((0..MESSAGES).map(|i| format!("message {i}")));
    assert_eq!(
        pushed,
        expected.iter().collect::<Vec<_>>(),
        "pushes in push order"
    );

    // Nothing else comes; the connection is still usable.
    client.send(&["after"]).await?;
    assert_eq!(client.next().await?.as_deref(), Some("after"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_reply_finishing_after_a_following_now_reply_still_goes_first() -> anyhow::Result<()>
{
    let server = start().await?;
    let mut client = Client::connect(server.addr).await?;
    // `slow` can finish only once `fast` was handled, that is after `fast`'s
    // reply was ready; `silent` answers nothing.
    client.send(&["slow", "silent", "fast", "last"]).await?;
    assert_eq!(client.frames(3).await?, ["slow", "fast", "last"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbox_does_not_keep_its_connection_open_and_fails_once_it_closed() -> anyhow::Result<()>
{
    let mut server = start().await?;
    let mut client = Client::connect(server.addr).await?;
    client.send(&["hello"]).await?;
    assert_eq!(client.next().await?.as_deref(), Some("hello"));
    let (outbox, _) = server.front_end.first_session()?;
    outbox.push(frame(b"pushed from outside")).await?;
    assert_eq!(client.next().await?.as_deref(), Some("pushed from outside"));

    // The client stops sending: the reader ends, and the writer closes the
    // stream although the test still holds the outbox.
    client.socket.shutdown().await?;
    assert_eq!(client.next().await?, None);
    assert_eq!(outbox.push(frame(b"too late")).await, Err(Closed));
    assert!(outbox.is_closed());

    // Graceful shutdown: the accept loop stops and every connection task
    // has finished (the done channel closes).
    server.transport.shutdown.cancel();
    let done = tokio::time::timeout(PATIENCE, server.done.recv()).await?;
    assert_eq!(done, None);
    assert!(server.transport.connections.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_a_pending_later_reply_then_closes_and_stops_the_pushers()
-> anyhow::Result<()> {
    let mut server = start().await?;
    let mut client = Client::connect(server.addr).await?;
    client.send(&["slow"]).await?;
    // Wait (bounded) until the broker has read the request.
    let mut read = false;
    for _ in 0..3_000 {
        let connections = server.transport.connections.list();
        if connections
            .first()
            .is_some_and(|c| c.requests.load(Ordering::Relaxed) == 1)
        {
            read = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(read, "the broker read the request");
    let (outbox, gate) = server.front_end.first_session()?;
    server.transport.shutdown.cancel();
    // No push goes in any more, but the queued reply still goes out once
    // its task finishes, then the stream ends.
    tokio::time::timeout(PATIENCE, outbox.closed()).await?;
    assert_eq!(outbox.push(frame(b"after shutdown")).await, Err(Closed));
    gate.notify_one();
    assert_eq!(client.next().await?.as_deref(), Some("slow"));
    assert_eq!(client.next().await?, None);
    let done = tokio::time::timeout(PATIENCE, server.done.recv()).await?;
    assert_eq!(done, None);
    Ok(())
}
