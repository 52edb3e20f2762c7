//! TLS on both listeners, spoken to over real sockets: a test CA made with
//! rcgen signs the broker's certificate, raw frames go through tokio-rustls.
//! Covers: a fetch over TLS (the buffered-copy path) is byte for byte the
//! fetch over plain TCP (the sendfile path), across chunks and segments; a
//! plaintext or silent client is closed without harming TLS clients; the HTTP
//! listener over TLS (and its connection list showing TLS); clear startup
//! errors for unusable certificate files; the write deadline over TLS (a
//! client that never reads its fetches is closed and frees its slot).

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use bytes::{BufMut, Bytes, BytesMut};
use common::{Raw, produce};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use warren_broker::{Broker, BrokerConfig, RunningBroker};
use warren_protocol::api::api_versions::ApiVersionsRequest;
use warren_protocol::api::fetch::{FetchPartition, FetchRequest, FetchTopic};
use warren_protocol::api::topics::CreateTopicRequest;
use warren_protocol::api::{self, Request};
use warren_protocol::{Compression, ErrorCode, RecordBatchBuilder};

/// A test CA and a broker certificate it signed for `localhost` and
/// `127.0.0.1`, as PEM files.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn make_pki(dir: &Path, name: &str) -> Result<Pki> {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate()?;
    let cert = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?
        .signed_by(&key, &issuer)?;
    let pki = Pki {
        ca: dir.join(format!("{name}-ca.pem")),
        cert: dir.join(format!("{name}-cert.pem")),
        key: dir.join(format!("{name}-key.pem")),
    };
    std::fs::write(&pki.ca, ca_cert.pem())?;
    std::fs::write(&pki.cert, cert.pem())?;
    std::fs::write(&pki.key, key.serialize_pem())?;
    Ok(pki)
}

fn config(data_dir: &Path, pki: Option<&Pki>) -> Result<BrokerConfig> {
    Ok(BrokerConfig {
        data_dir: data_dir.to_path_buf(),
        listen: "127.0.0.1:0".parse()?,
        http: "127.0.0.1:0".parse()?,
        tls_cert: pki.map(|p| p.cert.clone()),
        tls_key: pki.map(|p| p.key.clone()),
        ..BrokerConfig::default()
    })
}

async fn tls_connect(addr: SocketAddr, ca: &Path) -> Result<TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(ca)?;
    for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(&pem) {
        roots.add(cert?)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1")?;
    let stream = tokio::time::timeout(
        Duration::from_secs(10),
        TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .context("TLS handshake took over 10 s")??;
    Ok(stream)
}

/// Sends one request frame and returns the whole response frame after its
/// length field (correlation id, error code, body), over any stream.
async fn exchange<S, R>(stream: &mut S, correlation_id: u32, req: &R) -> Result<Bytes>
where
    S: AsyncRead + AsyncWrite + Unpin,
    R: Request,
{
    let body = api::encode(req)?;
    let mut frame = BytesMut::new();
    frame.put_u32((8 + body.len()) as u32);
    frame.put_u16(R::API_KEY as u16);
    frame.put_u16(R::VERSION);
    frame.put_u32(correlation_id);
    frame.put_slice(&body);
    stream.write_all(&frame).await?;
    stream.flush().await?;
    tokio::time::timeout(Duration::from_secs(10), async {
        let len = stream.read_u32().await? as usize;
        let mut response = vec![0; len];
        stream.read_exact(&mut response).await?;
        anyhow::Ok(Bytes::from(response))
    })
    .await
    .context("no response in 10 s")?
}

/// Error code of a response frame from [`exchange`].
fn error_code(frame: &Bytes) -> Result<u16> {
    let b = frame
        .get(4..6)
        .context("response shorter than its header")?;
    Ok(u16::from_be_bytes([b[0], b[1]]))
}

/// Bytes that no encoder compresses and no off-by-one hides.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as u8
        })
        .collect()
}

fn fetch_all(topic: &str) -> FetchRequest {
    FetchRequest {
        max_wait_ms: 0,
        min_bytes: 1,
        max_bytes: 8 << 20,
        topics: vec![FetchTopic {
            topic: topic.into(),
            partitions: vec![FetchPartition {
                partition: 0,
                fetch_offset: 0,
                partition_max_bytes: 8 << 20,
            }],
        }],
    }
}

#[tokio::test]
async fn fetch_over_tls_is_byte_for_byte_the_sendfile_fetch() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let pki = make_pki(dir.path(), "broker")?;
    let data = dir.path().join("data");
    // Write the log over plain TCP and take the sendfile fetch as reference.
    let broker = Broker::start(config(&data, None)?).await?;
    let mut plain = Raw::connect(broker.local_addr()).await?;
    plain
        .call(&CreateTopicRequest {
            name: "big".into(),
            partitions: 1,
            configs: vec![
                ("durability".into(), "none".into()),
                // Small segments: the fetch spans several files.
                ("segment.bytes".into(), (512 << 10).to_string()),
            ],
        })
        .await?;
    // Batches of 100 KiB, one of 400 KiB (bigger than a 256 KiB copy chunk
    // on its own) and small ones: about 2 MiB over 4 or more segments.
    let sizes = [100 << 10, 7, 400 << 10, 100 << 10, 100 << 10, 3, 100 << 10];
    let mut produced = 0usize;
    for round in 0..3u64 {
        for (i, size) in sizes.iter().enumerate() {
            let value = noise(round * 100 + i as u64, *size);
            let mut b = RecordBatchBuilder::new(Compression::None);
            b.append(1_700_000_000_000, Some(b"k"), Some(&value), &[]);
            let r = plain.call(&produce("big", 0, b.build()?, 1)).await?;
            ensure!(r.topics[0].partitions[0].error_code == ErrorCode::NONE);
            produced += size;
        }
    }
    let segments = std::fs::read_dir(data.join("big-0"))?
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "log"))
        })
        .count();
    ensure!(
        segments >= 4,
        "{segments} segments; want a multi-segment read"
    );
    let reference = exchange(&mut plain.stream, 7, &fetch_all("big")).await?;
    ensure!(error_code(&reference)? == 0);
    ensure!(
        reference.len() > produced,
        "the plain fetch returned {} bytes for {produced} produced",
        reference.len()
    );
    drop(plain);
    broker.shutdown().await?;

    // The same log behind TLS: the same request gets the same bytes.
    let broker = Broker::start(config(&data, Some(&pki))?).await?;
    let mut tls = tls_connect(broker.local_addr(), &pki.ca).await?;
    let over_tls = exchange(&mut tls, 7, &fetch_all("big")).await?;
    ensure!(
        over_tls == reference,
        "fetch over TLS differs: {} bytes vs {} over plain TCP",
        over_tls.len(),
        reference.len()
    );
    // And again on the same connection (the copy buffer is reused).
    let again = exchange(&mut tls, 8, &fetch_all("big")).await?;
    ensure!(again.get(4..) == reference.get(4..), "second fetch differs");
    // Produce over TLS too, then read it back.
    let value = noise(99, 300 << 10);
    let mut b = RecordBatchBuilder::new(Compression::None);
    b.append(1_700_000_000_000, None, Some(&value), &[]);
    let r = exchange(&mut tls, 9, &produce("big", 0, b.build()?, 1)).await?;
    ensure!(error_code(&r)? == 0);
    let after = exchange(&mut tls, 10, &fetch_all("big")).await?;
    ensure!(
        after.windows(value.len()).any(|w| w == value.as_slice()),
        "the record produced over TLS is not in the fetch"
    );
    drop(tls);
    broker.shutdown().await?;
    Ok(())
}

async fn start_tls(dir: &Path) -> Result<(RunningBroker, Pki)> {
    let pki = make_pki(dir, "broker")?;
    let broker = Broker::start(config(&dir.join("data"), Some(&pki))?).await?;
    Ok((broker, pki))
}

/// Reads until the peer closes; fails if that takes over 10 s. Returns what
/// was read.
async fn read_until_closed(stream: &mut TcpStream) -> Result<Vec<u8>> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let mut buf = [0u8; 512];
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    if read.is_err() {
        bail!("the broker did not close the connection in 10 s");
    }
    Ok(got)
}

#[tokio::test]
async fn plaintext_and_silent_clients_do_not_harm_tls_clients() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (broker, pki) = start_tls(dir.path()).await?;
    let addr = broker.local_addr();
    let mut tls = tls_connect(addr, &pki.ca).await?;
    let created = CreateTopicRequest {
        name: "t".into(),
        partitions: 1,
        configs: vec![("durability".into(), "none".into())],
    };
    ensure!(error_code(&exchange(&mut tls, 1, &created).await?)? == 0);

    // A client that connects and says nothing holds only its own handshake.
    let mut silent = TcpStream::connect(addr).await?;
    // A client speaking the plain protocol to the TLS listener is closed; what
    // it gets back, if anything, is a TLS alert (0x15), never a response.
    let mut plain = Raw::connect(addr).await?;
    plain.send(&ApiVersionsRequest).await?;
    let got = read_until_closed(&mut plain.stream).await?;
    ensure!(
        got.first().is_none_or(|b| *b == 0x15),
        "plaintext client got {:?}",
        &got[..got.len().min(16)]
    );
    // Meanwhile new TLS clients connect and the first one still works.
    let mut other = tls_connect(addr, &pki.ca).await?;
    ensure!(error_code(&exchange(&mut other, 1, &ApiVersionsRequest).await?)? == 0);
    let mut b = RecordBatchBuilder::new(Compression::None);
    b.append(1_700_000_000_000, None, Some(b"still here"), &[]);
    ensure!(error_code(&exchange(&mut tls, 2, &produce("t", 0, b.build()?, 1)).await?)? == 0);
    let f = exchange(&mut tls, 3, &fetch_all("t")).await?;
    ensure!(f.windows(10).any(|w| w == b"still here"));
    // The silent client is still waiting (its handshake has 10 s), and was
    // never served: nothing to read yet.
    let mut one = [0u8; 1];
    let pending = tokio::time::timeout(Duration::from_millis(50), silent.read(&mut one)).await;
    ensure!(pending.is_err(), "the silent client got {pending:?}");
    drop((silent, tls, other));
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_ca_fails_the_handshake() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (broker, _pki) = start_tls(dir.path()).await?;
    let stranger = make_pki(dir.path(), "stranger")?;
    let err = tls_connect(broker.local_addr(), &stranger.ca)
        .await
        .err()
        .context("a handshake against an unknown CA succeeded")?;
    let msg = format!("{err:#}");
    ensure!(msg.contains("certificate"), "{msg}");
    broker.shutdown().await?;
    Ok(())
}

/// `GET path` over HTTPS with `Connection: close`; the whole response.
async fn https_get(addr: SocketAddr, ca: &Path, path: &str) -> Result<String> {
    let mut https = tls_connect(addr, ca).await?;
    https
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
    https.flush().await?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        // The server may end without close_notify after Connection: close.
        let _ = https.read_to_end(&mut response).await;
    })
    .await
    .context("no HTTP response in 10 s")?;
    Ok(String::from_utf8_lossy(&response).into_owned())
}

#[tokio::test]
async fn http_listener_speaks_tls() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (broker, pki) = start_tls(dir.path()).await?;
    let text = https_get(broker.http_addr(), &pki.ca, "/healthz").await?;
    ensure!(text.starts_with("HTTP/1.1 200"), "{text}");
    ensure!(text.ends_with("\r\n\r\nok\n"), "{text}");
    // A native TLS connection is listed as such.
    let mut native = tls_connect(broker.local_addr(), &pki.ca).await?;
    ensure!(error_code(&exchange(&mut native, 1, &ApiVersionsRequest).await?)? == 0);
    let text = https_get(broker.http_addr(), &pki.ca, "/api/connections").await?;
    ensure!(text.starts_with("HTTP/1.1 200"), "{text}");
    ensure!(text.contains("\"tls\":true"), "{text}");
    ensure!(!text.contains("\"tls\":false"), "{text}");
    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(broker.http_addr()).await?;
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await?;
    let got = read_until_closed(&mut plain).await?;
    ensure!(!got.starts_with(b"HTTP"), "plain HTTP was answered");
    drop(native);
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn unusable_certificate_files_are_clear_startup_errors() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let pki = make_pki(dir.path(), "good")?;
    let other = make_pki(dir.path(), "other")?;
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n")?;
    let missing = dir.path().join("missing.pem");
    let cases: [(&Path, &Path, &Path, &str); 5] = [
        (
            &missing,
            &pki.key,
            &missing,
            "cannot read the certificate file",
        ),
        (
            &pki.cert,
            &missing,
            &missing,
            "cannot read the private key file",
        ),
        (&garbage, &pki.key, &garbage, "no certificate in it"),
        (&pki.cert, &pki.cert, &pki.cert, "no private key in it"),
        (
            &pki.cert,
            &other.key,
            &other.key,
            "does not match the certificate",
        ),
    ];
    for (cert, key, named, want) in cases {
        let mut c = config(&dir.path().join("data"), None)?;
        c.tls_cert = Some(cert.to_path_buf());
        c.tls_key = Some(key.to_path_buf());
        let Err(err) = Broker::start(c).await else {
            bail!("started with cert {cert:?} and key {key:?}");
        };
        let msg = err.to_string();
        ensure!(msg.contains(want), "{msg:?} does not say {want:?}");
        ensure!(
            msg.contains(&named.display().to_string()),
            "{msg:?} does not name {named:?}"
        );
    }
    // Nothing was created: a bad certificate fails before the data dir opens.
    ensure!(!dir.path().join("data").exists());
    Ok(())
}

/// After the handshake a TLS connection has the same deadlines as a plain
/// one: silent after it, it is closed after `connection_setup_timeout_ms`;
/// in use and then idle, after `connections_max_idle_ms`. On paused time:
/// both deadlines are tokio timers, so the clock jumps to them.
#[tokio::test(start_paused = true)]
async fn a_tls_connection_silent_after_its_handshake_is_closed() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let pki = make_pki(dir.path(), "broker")?;
    let broker = Broker::start(BrokerConfig {
        connection_setup_timeout_ms: 500,
        connections_max_idle_ms: 1_000,
        ..config(&dir.path().join("data"), Some(&pki))?
    })
    .await?;
    let addr = broker.local_addr();
    let closed = |mut stream: TlsStream<TcpStream>| async move {
        let mut buf = [0u8; 64];
        match tokio::time::timeout(Duration::from_secs(60), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => Ok(()),
            Ok(Ok(n)) => bail!("got {n} bytes instead of a close"),
            Err(_) => bail!("the broker did not close the TLS connection in 60 s"),
        }
    };
    let silent = tls_connect(addr, &pki.ca).await?;
    closed(silent).await?;
    let mut used = tls_connect(addr, &pki.ca).await?;
    ensure!(error_code(&exchange(&mut used, 1, &ApiVersionsRequest).await?)? == 0);
    closed(used).await?;
    broker.shutdown().await?;
    Ok(())
}

/// The write deadline holds over TLS too (the kernel's `TCP_USER_TIMEOUT`
/// on the socket under the TLS stream): a TLS client that pipelines fetches
/// of a few MiB and reads nothing is closed after
/// `connection_write_timeout_ms`, and its only connection slot goes to the
/// next client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_client_that_never_reads_its_fetches_is_closed_after_the_write_timeout() -> Result<()>
{
    let dir = tempfile::tempdir()?;
    let pki = make_pki(dir.path(), "broker")?;
    let broker = Broker::start(BrokerConfig {
        max_connections: 1,
        connection_write_timeout_ms: 1_000,
        ..config(&dir.path().join("data"), Some(&pki))?
    })
    .await?;
    let addr = broker.local_addr();
    let mut setup = tls_connect(addr, &pki.ca).await?;
    let create = CreateTopicRequest {
        name: "t".into(),
        partitions: 1,
        configs: vec![("durability".into(), "none".into())],
    };
    ensure!(error_code(&exchange(&mut setup, 1, &create).await?)? == 0);
    let value = noise(7, 100 << 10);
    for i in 0..5u32 {
        let mut b = RecordBatchBuilder::new(Compression::None);
        for _ in 0..8 {
            b.append(1_700_000_000_000, None, Some(&value), &[]);
        }
        let produced = exchange(&mut setup, 2 + i, &produce("t", 0, b.build()?, 1)).await?;
        ensure!(error_code(&produced)? == 0);
    }
    drop(setup);

    let mut stuck = tls_connect(addr, &pki.ca).await?;
    ensure!(error_code(&exchange(&mut stuck, 1, &ApiVersionsRequest).await?)? == 0);
    let body = api::encode(&fetch_all("t"))?;
    for id in 2..34u32 {
        let mut frame = BytesMut::new();
        frame.put_u32((8 + body.len()) as u32);
        frame.put_u16(FetchRequest::API_KEY as u16);
        frame.put_u16(FetchRequest::VERSION);
        frame.put_u32(id);
        frame.put_slice(&body);
        stuck.write_all(&frame).await?;
    }
    stuck.flush().await?;

    // The slot frees: the next client is answered (it waits in the accept
    // backlog meanwhile; without the deadline, for good).
    let started = std::time::Instant::now();
    let mut next = loop {
        match tls_connect(addr, &pki.ca).await {
            Ok(stream) => break stream,
            // The handshake waits for the slot; give a loaded box 30 s.
            Err(e) if started.elapsed() < Duration::from_secs(30) => {
                eprintln!("retrying: {e:#}");
            }
            Err(e) => return Err(e.context("the stuck TLS connection kept the only slot")),
        }
    };
    let produced = exchange(
        &mut next,
        1,
        &produce("t", 0, common::batch(&["after"])?, 1),
    )
    .await?;
    ensure!(error_code(&produced)? == 0);
    drop(stuck);
    broker.shutdown().await?;
    Ok(())
}
