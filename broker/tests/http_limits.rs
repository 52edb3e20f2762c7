//! The HTTP listener's connection cap and timeouts: connections beyond
//! `http_max_connections` get `503` at once, a connection that does not send
//! its headers within `http_header_timeout_ms` (a silent one, a slow one, an
//! idle keep-alive one) is closed, and a request whose body does not arrive
//! within `http_request_timeout_ms` gets `408`. Raw sockets on loopback;
//! generous bounds only. Both timeouts are tokio timers (hyper's
//! `TokioTimer`, the per-request timeout layer), so their tests run on paused
//! time: the clock jumps to the deadline instead of the test waiting for it.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use common::start_with as start;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Far beyond every timeout configured below.
const WAIT: Duration = Duration::from_secs(60);

/// Everything the server sends until it closes the connection.
async fn until_closed(stream: &mut TcpStream) -> Result<String> {
    let mut raw = Vec::new();
    match tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .context("the broker did not close the HTTP connection")?
    {
        Ok(_) => {}
        // A reset also closes it.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => return Err(e.into()),
    }
    Ok(String::from_utf8_lossy(&raw).into_owned())
}

async fn get(addr: SocketAddr, path: &str) -> Result<String> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    until_closed(&mut s).await
}

#[tokio::test]
async fn connections_beyond_http_max_connections_get_503_until_one_closes() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path(), |c| c.http_max_connections = 4).await?;
    let http = broker.http_addr();
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(http).await?);
    }
    let answer = get(http, "/healthz").await?;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("TOO_MANY_CONNECTIONS"), "{answer}");
    // The native listener is another matter.
    common::Raw::connect(broker.local_addr()).await?;

    drop(held.pop());
    let started = Instant::now();
    loop {
        let answer = get(http, "/healthz").await?;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(started.elapsed() < WAIT, "no slot freed: {answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(held);
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn silent_slow_and_idle_http_connections_are_closed_after_the_header_timeout() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path(), |c| {
        c.http_header_timeout_ms = 500;
        c.http_max_connections = 2;
    })
    .await?;
    let http = broker.http_addr();
    let mut silent = TcpStream::connect(http).await?;
    // Headers that never end (one line, then nothing).
    let mut slow = TcpStream::connect(http).await?;
    slow.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {http}\r\n").as_bytes())
        .await?;
    let slow_answer = until_closed(&mut slow).await?;
    assert!(!slow_answer.contains("200 OK"), "{slow_answer}");
    until_closed(&mut silent).await?;

    // A keep-alive connection gets its answer, then is closed once idle.
    let mut keep_alive = TcpStream::connect(http).await?;
    keep_alive
        .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {http}\r\n\r\n").as_bytes())
        .await?;
    let answer = until_closed(&mut keep_alive).await?;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // Both slots are free again.
    assert!(get(http, "/healthz").await?.starts_with("HTTP/1.1 200"));
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_body_that_does_not_arrive_in_time_gets_408() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path(), |c| c.http_request_timeout_ms = 500).await?;
    let http = broker.http_addr();
    let mut s = TcpStream::connect(http).await?;
    s.write_all(
        format!(
            "POST /api/topics HTTP/1.1\r\nHost: {http}\r\nContent-Type: application/json\r\n\
             Content-Length: 100\r\n\r\n{{\"name\":"
        )
        .as_bytes(),
    )
    .await?;
    let answer = until_closed(&mut s).await?;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("REQUEST_TIMEOUT"), "{answer}");
    broker.shutdown().await?;
    Ok(())
}
