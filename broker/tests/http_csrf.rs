//! Cross-site requests and DNS rebinding against the HTTP listener: the
//! request a hostile web page can make (a `text/plain` POST carrying its
//! own `Origin`, or any request under a rebound `Host`) is refused and
//! changes nothing, while the same request as the broker's own page or a
//! script sends it still works. Raw HTTP/1.1 over real sockets.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warren_broker::{Broker, BrokerConfig, RunningBroker};

const BODY: &str = r#"{"name":"csrf","partitions":1}"#;

/// Sends `head` (request line and headers, no blank line) with `body`, and
/// returns the status and the body.
async fn request(addr: SocketAddr, head: &str, body: &str) -> Result<(u16, String)> {
    let mut s = TcpStream::connect(addr).await?;
    let text = format!(
        "{head}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(text.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut raw))
        .await
        .context("no HTTP answer in 30 s")??;
    let raw = String::from_utf8(raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").context("no end of headers")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .context("no status")?
        .parse()?;
    Ok((status, body.to_owned()))
}

/// The topic names `GET /api/topics` lists.
async fn topics(addr: SocketAddr) -> Result<String> {
    let (status, body) = common::http_get(addr, "/api/topics").await?;
    assert_eq!(status, 200, "{body}");
    Ok(body)
}

async fn start(dir: &std::path::Path, hosts: &[&str], origins: &[&str]) -> Result<RunningBroker> {
    Ok(Broker::start(BrokerConfig {
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse()?,
        http: "127.0.0.1:0".parse()?,
        http_allowed_hosts: hosts.iter().map(|h| h.to_string()).collect(),
        http_allowed_origins: origins.iter().map(|o| o.to_string()).collect(),
        ..BrokerConfig::default()
    })
    .await?)
}

/// The request of issue 13, byte for byte what
/// `curl -H 'Content-Type: text/plain' -H 'Origin: http://evil.example'
/// -H 'Host: evil.example' -d '{"name":"csrf","partitions":1}'` sends.
#[tokio::test]
async fn the_cross_site_curl_request_is_refused_and_creates_nothing() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path(), &[], &[]).await?;
    let http = broker.http_addr();
    let (status, body) = request(
        http,
        "POST /api/topics HTTP/1.1\r\nHost: evil.example\r\nUser-Agent: curl/8.5.0\r\n\
         Accept: */*\r\nContent-Type: text/plain\r\nOrigin: http://evil.example",
        BODY,
    )
    .await?;
    assert_eq!(status, 421, "{body}");
    assert!(body.contains("MISDIRECTED_REQUEST"), "{body}");
    assert!(!topics(http).await?.contains("csrf"));

    // The same request as a script sends it: the broker's own Host, JSON.
    let (status, body) = request(
        http,
        &format!("POST /api/topics HTTP/1.1\r\nHost: {http}\r\nContent-Type: application/json"),
        BODY,
    )
    .await?;
    assert_eq!(status, 201, "{body}");
    assert!(topics(http).await?.contains("\"csrf\""));
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_foreign_origin_is_refused_and_the_brokers_own_page_is_not() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path(), &[], &[]).await?;
    let http = broker.http_addr();
    let json = "Content-Type: application/json; charset=utf-8";
    let (status, body) = request(
        http,
        &format!(
            "POST /api/topics HTTP/1.1\r\nHost: {http}\r\n{json}\r\nOrigin: http://evil.example"
        ),
        BODY,
    )
    .await?;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("FORBIDDEN_ORIGIN"), "{body}");
    let (status, body) = request(
        http,
        &format!("DELETE /api/topics/csrf HTTP/1.1\r\nHost: {http}\r\nOrigin: null"),
        "",
    )
    .await?;
    assert_eq!(status, 403, "a sandboxed page's null origin: {body}");
    assert!(!topics(http).await?.contains("csrf"));

    // What the management page sends: same origin, JSON.
    let (status, body) = request(
        http,
        &format!("POST /api/topics HTTP/1.1\r\nHost: {http}\r\n{json}\r\nOrigin: http://{http}"),
        BODY,
    )
    .await?;
    assert_eq!(status, 201, "{body}");
    let (status, body) = request(
        http,
        &format!("DELETE /api/topics/csrf HTTP/1.1\r\nHost: {http}\r\nOrigin: http://{http}"),
        "",
    )
    .await?;
    assert_eq!(
        status, 204,
        "a DELETE needs no body, so no Content-Type: {body}"
    );
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_body_that_is_not_json_is_refused_with_415() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path(), &[], &[]).await?;
    let http = broker.http_addr();
    for content_type in [
        "Content-Type: text/plain",
        "Content-Type: application/x-www-form-urlencoded",
        "Content-Type: multipart/form-data; boundary=x",
        "X-No-Content-Type: 1",
    ] {
        let (status, body) = request(
            http,
            &format!("POST /api/topics HTTP/1.1\r\nHost: {http}\r\n{content_type}"),
            BODY,
        )
        .await?;
        assert_eq!(status, 415, "{content_type}: {body}");
        assert!(body.contains("UNSUPPORTED_MEDIA_TYPE"), "{body}");
    }
    assert!(!topics(http).await?.contains("csrf"));
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_rebound_host_is_refused_even_for_reads() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path(), &[], &[]).await?;
    let http = broker.http_addr();
    let port = http.port();
    for path in ["/api/topics", "/api/overview", "/metrics", "/"] {
        let (status, body) = request(
            http,
            &format!("GET {path} HTTP/1.1\r\nHost: rebind.evil.example:{port}"),
            "",
        )
        .await?;
        assert_eq!(status, 421, "{path}: {body}");
    }
    let (status, body) = request(
        http,
        &format!("POST /api/topics HTTP/1.1\r\nHost: rebind.evil.example:{port}\r\nContent-Type: application/json"),
        BODY,
    )
    .await?;
    assert_eq!(status, 421, "{body}");
    // Names of this machine and the probes still answer.
    for host in [
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        "localhost".into(),
    ] {
        let (status, body) = request(
            http,
            &format!("GET /api/topics HTTP/1.1\r\nHost: {host}"),
            "",
        )
        .await?;
        assert_eq!(status, 200, "{host}: {body}");
    }
    let (status, _) = request(http, "GET /healthz HTTP/1.1\r\nHost: probe.internal", "").await?;
    assert_eq!(status, 200, "probes skip the Host check");
    assert!(!topics(http).await?.contains("csrf"));
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn configured_hosts_and_origins_are_accepted() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path(), &["warren.test"], &["https://console.example"]).await?;
    let http = broker.http_addr();
    let (status, body) = request(
        http,
        "POST /api/topics HTTP/1.1\r\nHost: warren.test:8443\r\nContent-Type: application/json\r\n\
         Origin: https://console.example",
        BODY,
    )
    .await?;
    assert_eq!(status, 201, "{body}");
    let (status, body) = request(
        http,
        "GET /api/topics HTTP/1.1\r\nHost: warren.test\r\nOrigin: http://warren.test",
        "",
    )
    .await?;
    assert_eq!(
        status, 200,
        "the origin matching the Host is the broker's own: {body}"
    );
    let (status, _) = request(http, "GET /api/topics HTTP/1.1\r\nHost: other.test", "").await?;
    assert_eq!(status, 421);
    broker.shutdown().await?;

    // "*" turns the Host check off on purpose; Origin is still checked.
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path(), &["*"], &[]).await?;
    let http = broker.http_addr();
    let (status, body) = request(
        http,
        "GET /api/topics HTTP/1.1\r\nHost: anything.example",
        "",
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let (status, _) = request(
        http,
        "POST /api/topics HTTP/1.1\r\nHost: anything.example\r\nContent-Type: application/json\r\n\
         Origin: http://evil.example",
        BODY,
    )
    .await?;
    assert_eq!(status, 403);
    broker.shutdown().await?;
    Ok(())
}
