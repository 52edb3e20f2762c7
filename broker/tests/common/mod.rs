//! Shared by the broker's tests: a raw protocol client over a real socket and
//! request builders. No client crate: these tests check the bytes.
#![allow(dead_code)]

pub mod http;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::{Decoder, Encoder};
use warren_broker::{Broker, BrokerConfig, RunningBroker};
use warren_protocol::api::auth::{AuthenticateRequest, CreateUserRequest};
use warren_protocol::api::fetch::{FetchPartition, FetchRequest, FetchTopic};
use warren_protocol::api::produce::{ProducePartition, ProduceRequest, ProduceTopic};
use warren_protocol::api::topics::CreateTopicRequest;
use warren_protocol::api::{self, ErrorBody, Request};
use warren_protocol::frame::{RequestFrame, RequestHeader, ResponseCodec, ResponseFrame};
use warren_protocol::scram::{ScramClient, ScramCredential};
use warren_protocol::{Compression, ErrorCode, RecordBatch, RecordBatchBuilder};

pub struct Raw {
    pub stream: TcpStream,
    codec: ResponseCodec,
    buf: BytesMut,
    next_id: u32,
}

impl Raw {
    pub async fn connect(addr: SocketAddr) -> Result<Raw> {
        Ok(Raw::from_stream(TcpStream::connect(addr).await?))
    }

    /// Over a stream already connected (with socket options of its own).
    pub fn from_stream(stream: TcpStream) -> Raw {
        Raw {
            stream,
            codec: ResponseCodec::default(),
            buf: BytesMut::new(),
            next_id: 1,
        }
    }

    pub async fn send_frame(&mut self, api_key: u16, api_version: u16, body: Bytes) -> Result<u32> {
        let correlation_id = self.next_id;
        self.next_id += 1;
        let mut out = BytesMut::new();
        self.codec.encode(
            RequestFrame {
                header: RequestHeader {
                    api_key,
                    api_version,
                    correlation_id,
                },
                body,
            },
            &mut out,
        )?;
        self.stream.write_all(&out).await?;
        Ok(correlation_id)
    }

    pub async fn send<R: Request>(&mut self, req: &R) -> Result<u32> {
        self.send_frame(R::API_KEY as u16, R::VERSION, api::encode(req)?)
            .await
    }

    pub async fn recv(&mut self) -> Result<ResponseFrame> {
        loop {
            if let Some(f) = self.codec.decode(&mut self.buf)? {
                return Ok(f);
            }
            let n =
                tokio::time::timeout(Duration::from_secs(10), self.stream.read_buf(&mut self.buf))
                    .await
                    .context("no response in 10 s")??;
            if n == 0 {
                bail!("connection closed");
            }
        }
    }

    /// Like `call`, but a refusal in the response header is `Ok(Err(code))`.
    pub async fn try_call<R: Request>(
        &mut self,
        req: &R,
    ) -> Result<std::result::Result<R::Response, ErrorCode>> {
        let id = self.send(req).await?;
        let f = self.recv().await?;
        assert_eq!(f.header.correlation_id, id);
        if f.header.error_code != 0 {
            return Ok(Err(ErrorCode(f.header.error_code)));
        }
        Ok(Ok(api::decode(f.body)?))
    }

    pub async fn call<R: Request>(&mut self, req: &R) -> Result<R::Response> {
        let id = self.send(req).await?;
        let f = self.recv().await?;
        assert_eq!(f.header.correlation_id, id);
        if f.header.error_code != 0 {
            let e: ErrorBody = api::decode(f.body)?;
            bail!("{:?}: {}", ErrorCode(f.header.error_code), e.message);
        }
        Ok(api::decode(f.body)?)
    }
}

pub async fn start(dir: &std::path::Path) -> Result<RunningBroker> {
    start_with(dir, |_| {}).await
}

/// [`start`] with the test's own settings on top of the loopback defaults.
pub async fn start_with(
    dir: &std::path::Path,
    tune: impl FnOnce(&mut BrokerConfig),
) -> Result<RunningBroker> {
    let mut config = BrokerConfig {
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse()?,
        http: "127.0.0.1:0".parse()?,
        ..BrokerConfig::default()
    };
    tune(&mut config);
    Ok(Broker::start(config).await?)
}

pub fn batch(values: &[&str]) -> Result<Bytes> {
    let mut b = RecordBatchBuilder::new(Compression::None);
    for v in values {
        b.append(1_700_000_000_000, None, Some(v.as_bytes()), &[]);
    }
    Ok(b.build()?)
}

pub fn produce(topic: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
    ProduceRequest {
        acks,
        timeout_ms: 10_000,
        topics: vec![ProduceTopic {
            topic: topic.into(),
            partitions: vec![ProducePartition {
                partition,
                routing_key: None,
                records,
            }],
        }],
    }
}

pub fn fetch(topic: &str, offset: u64, max_wait_ms: u32) -> FetchRequest {
    FetchRequest {
        max_wait_ms,
        min_bytes: 1,
        max_bytes: 1 << 20,
        topics: vec![FetchTopic {
            topic: topic.into(),
            partitions: vec![FetchPartition {
                partition: 0,
                fetch_offset: offset,
                partition_max_bytes: 1 << 20,
            }],
        }],
    }
}

pub async fn create(c: &mut Raw, name: &str, partitions: u32, durability: &str) -> Result<()> {
    c.call(&CreateTopicRequest {
        name: name.into(),
        partitions,
        configs: vec![("durability".into(), durability.into())],
    })
    .await?;
    Ok(())
}

pub fn values_of(records: Bytes) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = records;
    while !rest.is_empty() {
        let len = warren_protocol::record_batch::peek_batch_len(&rest)?
            .context("partial batch in a fetch response")?;
        let b = RecordBatch::new(rest.split_to(len))?;
        b.verify_crc()?;
        for r in b.records()? {
            out.push(String::from_utf8(r.value.context("null value")?.to_vec())?);
        }
    }
    Ok(out)
}

/// A plain HTTP/1.1 GET over a real socket (no client crate): the status and
/// the body. Bounded by a 30 s timeout.
pub async fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let mut s = TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).await?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut buf))
        .await
        .context("HTTP response timed out")??;
    let text = String::from_utf8(buf)?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("no end of HTTP headers")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .context("no HTTP status")?
        .parse()?;
    if !head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Ok((status, body.to_string()));
    }
    // Chunked: `size-in-hex CRLF data CRLF`, ending with a zero size.
    let mut out = String::new();
    let mut rest = body;
    loop {
        let (size, after) = rest.split_once("\r\n").context("bad chunk")?;
        let size = usize::from_str_radix(size.trim(), 16)?;
        if size == 0 {
            return Ok((status, out));
        }
        out.push_str(after.get(..size).context("short chunk")?);
        rest = after.get(size + 2..).context("short chunk")?;
    }
}

/// A CreateUser request with a SCRAM-SHA-256 credential for `password`.
pub fn create_user(name: &str, password: &str, superuser: bool) -> Result<CreateUserRequest> {
    let c = ScramCredential::generate(password)?;
    Ok(CreateUserRequest {
        name: name.into(),
        superuser,
        salt: Bytes::from(c.salt),
        iterations: c.iterations,
        stored_key: c.stored_key,
        server_key: c.server_key,
    })
}

/// SCRAM-SHA-256 login on `c`; fails if refused or if the server's final
/// message does not verify.
pub async fn login(c: &mut Raw, user: &str, password: &str) -> Result<()> {
    let client = ScramClient::new(user, password)?;
    let first = c
        .call(&AuthenticateRequest {
            mechanism: "SCRAM-SHA-256".into(),
            auth_bytes: Bytes::from(client.client_first()),
        })
        .await?;
    let (fin, client_final) = client.handle_server_first(&first.auth_bytes)?;
    let last = c
        .call(&AuthenticateRequest {
            mechanism: "SCRAM-SHA-256".into(),
            auth_bytes: Bytes::from(client_final),
        })
        .await?;
    fin.verify_server_final(&last.auth_bytes)?;
    Ok(())
}
