//! The management page's files over the real HTTP listener of a broker on
//! 127.0.0.1:0: each path's content type, `Cache-Control: no-cache`, the
//! security headers, and a JSON 404 for a file the page does not have. What
//! the page does in a browser is tools/tests/web_ui.rs.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One HTTP/1.1 answer: status, headers (names lowercased), body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `GET path` with `Connection: close`, read to the end (at most 10 s).
async fn get(addr: SocketAddr, path: &str) -> Result<Answer> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .context("no answer in 10 s")??;
    let text = String::from_utf8(raw).context("answer is not UTF-8")?;
    let (head, body) = text.split_once("\r\n\r\n").context("no end of headers")?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .context("no status line")?
        .parse()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(Answer {
        status,
        headers,
        body: body.to_owned(),
    })
}

#[tokio::test]
async fn page_files_are_served_with_their_types_and_no_cache() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = common::start(dir.path()).await?;
    let addr = broker.http_addr();
    let cases = [
        (
            "/",
            "text/html; charset=utf-8",
            "<script src=\"/ui/app.js\"",
        ),
        ("/ui/", "text/html; charset=utf-8", "<main id=\"view\""),
        (
            "/ui/index.html",
            "text/html; charset=utf-8",
            "<title>Warren",
        ),
        (
            "/ui/app.js",
            "text/javascript; charset=utf-8",
            "/api/overview",
        ),
        ("/ui/style.css", "text/css; charset=utf-8", ".chart"),
    ];
    for (path, content_type, needle) in cases {
        let answer = get(addr, path).await?;
        ensure!(answer.status == 200, "{path}: status {}", answer.status);
        ensure!(
            answer.header("content-type") == Some(content_type),
            "{path}: content-type {:?}",
            answer.header("content-type")
        );
        ensure!(answer.header("cache-control") == Some("no-cache"), "{path}");
        ensure!(answer.header("x-content-type-options") == Some("nosniff"));
        let csp = answer.header("content-security-policy").context("no CSP")?;
        ensure!(csp.contains("script-src 'self'"), "{path}: CSP {csp}");
        ensure!(
            answer.body.contains(needle),
            "{path}: no {needle:?} in the body"
        );
    }
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn unknown_page_file_is_a_json_404() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = common::start(dir.path()).await?;
    let answer = get(broker.http_addr(), "/ui/../Cargo.toml").await?;
    ensure!(answer.status == 404, "status {}", answer.status);
    let answer = get(broker.http_addr(), "/ui/secret.txt").await?;
    ensure!(answer.status == 404, "status {}", answer.status);
    ensure!(
        answer.header("content-type") == Some("application/json"),
        "{:?}",
        answer.header("content-type")
    );
    ensure!(
        answer.body.contains("\"error\":\"NOT_FOUND\"") && answer.body.contains("secret.txt"),
        "body {}",
        answer.body
    );
    broker.shutdown().await?;
    Ok(())
}
