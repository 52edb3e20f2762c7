//! The broker spoken to byte by byte: a real broker on 127.0.0.1:0, raw frames
//! over a real socket, no client crate. Covers the protocol-level guarantees:
//! error responses, pipelining order, long-poll timing, hostile input.

mod common;

use std::time::Duration;

use anyhow::Result;
use bytes::{Bytes, BytesMut};
use common::{Raw, batch, create, fetch, produce, start, values_of};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use warren_protocol::ErrorCode;
use warren_protocol::api;

#[tokio::test]
async fn produce_then_fetch_returns_the_same_records() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    for durability in ["fsync", "none"] {
        let topic = format!("t-{durability}");
        create(&mut c, &topic, 1, durability).await?;
        let r = c.call(&produce(&topic, 0, batch(&["a", "b"])?, -1)).await?;
        let p = &r.topics[0].partitions[0];
        assert_eq!((p.error_code, p.base_offset), (ErrorCode::NONE, 0));
        let r = c.call(&produce(&topic, 0, batch(&["c"])?, 1)).await?;
        assert_eq!(r.topics[0].partitions[0].base_offset, 2);
        let f = c.call(&fetch(&topic, 0, 1000)).await?;
        let p = &f.topics[0].partitions[0];
        assert_eq!(p.error_code, ErrorCode::NONE);
        let got = values_of(p.records.clone())?;
        // Under fsync the acks=1 batch becomes visible after its background fsync.
        assert!(got == ["a", "b", "c"] || got == ["a", "b"], "{got:?}");
        let f = c.call(&fetch(&topic, 99, 0)).await?;
        assert_eq!(
            f.topics[0].partitions[0].error_code,
            ErrorCode::OFFSET_OUT_OF_RANGE
        );
    }
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn errors_come_back_as_codes_and_the_connection_survives() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    // Unknown api key, unsupported version, malformed body: error responses.
    c.send_frame(999, 0, Bytes::new()).await?;
    assert_eq!(
        c.recv().await?.header.error_code,
        ErrorCode::UNKNOWN_API_KEY.0
    );
    c.send_frame(6, 77, Bytes::new()).await?;
    assert_eq!(
        c.recv().await?.header.error_code,
        ErrorCode::UNSUPPORTED_VERSION.0
    );
    c.send_frame(
        6,
        0,
        Bytes::from_static(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"),
    )
    .await?;
    assert_eq!(
        c.recv().await?.header.error_code,
        ErrorCode::INVALID_REQUEST.0
    );
    // Per-partition errors.
    create(&mut c, "small", 1, "none").await?;
    let err = c.call(&produce("nope", 0, batch(&["x"])?, 1)).await?;
    assert_eq!(
        err.topics[0].partitions[0].error_code,
        ErrorCode::UNKNOWN_TOPIC
    );
    let err = c.call(&produce("small", 5, batch(&["x"])?, 1)).await?;
    assert_eq!(
        err.topics[0].partitions[0].error_code,
        ErrorCode::UNKNOWN_PARTITION
    );
    let mut corrupt = BytesMut::from(&batch(&["x"])?[..]);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    let err = c.call(&produce("small", 0, corrupt.freeze(), 1)).await?;
    assert_eq!(
        err.topics[0].partitions[0].error_code,
        ErrorCode::CORRUPT_MESSAGE
    );
    let big = "x".repeat(1 << 20);
    let err = c.call(&produce("small", 0, batch(&[&big])?, 1)).await?;
    assert_eq!(
        err.topics[0].partitions[0].error_code,
        ErrorCode::MESSAGE_TOO_LARGE
    );
    let err = c
        .call(&produce("small", 0, batch(&["x"])?, 3))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("INVALID_REQUIRED_ACKS"), "{err}");
    // Nothing was written by any of them.
    let f = c.call(&fetch("small", 0, 0)).await?;
    assert_eq!(f.topics[0].partitions[0].high_watermark, 0);
    let err = create(&mut c, "small", 1, "none").await.unwrap_err();
    assert!(err.to_string().contains("TOPIC_ALREADY_EXISTS"), "{err}");
    let err = create(&mut c, "bad/name", 1, "none").await.unwrap_err();
    assert!(err.to_string().contains("INVALID_TOPIC_NAME"), "{err}");
    let err = create(&mut c, "z", 0, "none").await.unwrap_err();
    assert!(err.to_string().contains("INVALID_PARTITIONS"), "{err}");
    let err = create(&mut c, "z", 1, "sometimes").await.unwrap_err();
    assert!(err.to_string().contains("INVALID_CONFIG"), "{err}");
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "p", 1, "fsync").await?;
    // A long poll first, then produces behind it: the fetch's answer must still
    // come first, and the produces must not wait for its timeout to be applied.
    let mut ids = vec![c.send(&fetch("p", 0, 2000)).await?];
    for i in 0..20 {
        ids.push(
            c.send(&produce("p", 0, batch(&[&i.to_string()])?, -1))
                .await?,
        );
    }
    let started = Instant::now();
    for id in ids {
        let f = c.recv().await?;
        assert_eq!(f.header.correlation_id, id);
        assert_eq!(f.header.error_code, 0);
    }
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "the fetch was woken by the produces"
    );
    broker.shutdown().await?;
    Ok(())
}

/// On paused time: `max_wait_ms` is a tokio timer, so the clock jumps to it
/// when nothing else runs, and the waits measured are the broker's own.
#[tokio::test(start_paused = true)]
async fn a_long_poll_wakes_on_produce_and_otherwise_waits_max_wait() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let mut admin = Raw::connect(broker.local_addr()).await?;
    for durability in ["none", "fsync"] {
        let topic = format!("lp-{durability}");
        create(&mut admin, &topic, 1, durability).await?;
        // Nothing arrives: the fetch answers empty, not before max_wait_ms.
        let mut consumer = Raw::connect(broker.local_addr()).await?;
        let started = Instant::now();
        let f = consumer.call(&fetch(&topic, 0, 300)).await?;
        let waited = started.elapsed();
        assert!(f.topics[0].partitions[0].records.is_empty());
        assert!(
            waited >= Duration::from_millis(300),
            "answered after {waited:?}"
        );
        // Data arrives while it waits: it answers right after the produce.
        consumer.send(&fetch(&topic, 0, 10_000)).await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let produced_at = Instant::now();
        admin
            .call(&produce(&topic, 0, batch(&["wake"])?, -1))
            .await?;
        let f = consumer.recv().await?;
        let latency = produced_at.elapsed();
        let body: warren_protocol::api::fetch::FetchResponse = api::decode(f.body)?;
        assert_eq!(
            values_of(body.topics[0].partitions[0].records.clone())?,
            ["wake"]
        );
        assert!(
            latency < Duration::from_millis(1000),
            "woken after {latency:?}"
        );
        eprintln!("{durability}: long poll answered {latency:?} after the produce was sent");
    }
    broker.shutdown().await?;
    Ok(())
}

/// A reply that is ready goes out at once, even when the request after it on
/// the same connection is a long poll still waiting: responses keep request
/// order, but an answered request must not sit in the write buffer until the
/// next one finishes.
#[tokio::test]
async fn a_ready_reply_is_not_held_back_by_a_long_poll_behind_it() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let mut admin = Raw::connect(broker.local_addr()).await?;
    create(&mut admin, "held", 1, "none").await?;
    let mut client = Raw::connect(broker.local_addr()).await?;
    // Pipelined: a request answered at once, then a fetch that waits 60 s
    // unless a record arrives.
    let first = client
        .send(&warren_protocol::api::api_versions::ApiVersionsRequest)
        .await?;
    let second = client.send(&fetch("held", 0, 60_000)).await?;
    let reply = tokio::time::timeout(Duration::from_secs(20), client.recv())
        .await
        .map_err(|_| anyhow::anyhow!("the ApiVersions reply waited behind the long poll"))??;
    assert_eq!(reply.header.correlation_id, first);
    admin
        .call(&produce("held", 0, batch(&["wake"])?, -1))
        .await?;
    let reply = tokio::time::timeout(Duration::from_secs(20), client.recv()).await??;
    assert_eq!(reply.header.correlation_id, second);
    let body: warren_protocol::api::fetch::FetchResponse = api::decode(reply.body)?;
    assert_eq!(
        values_of(body.topics[0].partitions[0].records.clone())?,
        ["wake"]
    );
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn garbage_and_oversize_frames_close_only_their_own_connection() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let mut producer = Raw::connect(broker.local_addr()).await?;
    create(&mut producer, "steady", 1, "none").await?;
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..20u32 {
        let mut bad = TcpStream::connect(broker.local_addr()).await?;
        let junk: Vec<u8> = match round % 4 {
            // A length prefix far over max_frame_bytes: refused before allocation.
            0 => vec![0x7f, 0xff, 0xff, 0xff, 1, 2, 3],
            // Shorter than a request header.
            1 => vec![0, 0, 0, 3, 1, 2, 3],
            // A frame cut short, then the socket closes.
            2 => vec![0, 0, 1, 0, 0, 6, 0, 0],
            // Random bytes.
            _ => (0..4096)
                .map(|_| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng as u8
                })
                .collect(),
        };
        let _ = bad.write_all(&junk).await;
        if round % 4 != 2 {
            // The broker closes the connection (or answers an error); it never hangs.
            let mut sink = Vec::new();
            let read =
                tokio::time::timeout(Duration::from_secs(5), bad.read_to_end(&mut sink)).await;
            assert!(read.is_ok(), "round {round}: connection left open");
        }
        drop(bad);
        let r = producer
            .call(&produce("steady", 0, batch(&[&round.to_string()])?, 1))
            .await?;
        assert_eq!(r.topics[0].partitions[0].base_offset, i64::from(round));
    }
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_consumer_that_never_reads_its_socket_is_stopped_by_back_pressure() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = warren_broker::Broker::start(warren_broker::BrokerConfig {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse()?,
        http: "127.0.0.1:0".parse()?,
        max_inflight_requests: 4,
        ..warren_broker::BrokerConfig::default()
    })
    .await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "big", 1, "none").await?;
    let value = "b".repeat(900_000);
    c.call(&produce("big", 0, batch(&[&value])?, 1)).await?;
    // Fetch requests for that ~900 KB batch, pipelined, never reading a byte of
    // the answers: once 4 replies are queued behind a full socket the broker
    // stops reading, so the requests back up in the kernel and writing stalls.
    let mut slow = Raw::connect(broker.local_addr()).await?;
    let mut frame = BytesMut::new();
    {
        use tokio_util::codec::Encoder;
        let body = api::encode(&fetch("big", 0, 0))?;
        warren_protocol::frame::ResponseCodec::default().encode(
            warren_protocol::frame::RequestFrame {
                header: warren_protocol::frame::RequestHeader {
                    api_key: 7,
                    api_version: 0,
                    correlation_id: 1000,
                },
                body,
            },
            &mut frame,
        )?;
    }
    let attempt: usize = 64 << 20;
    let mut written = 0usize;
    let mut stalled = false;
    while written < attempt {
        let chunk = frame.repeat(1000);
        match tokio::time::timeout(Duration::from_secs(1), slow.stream.write_all(&chunk)).await {
            Ok(r) => {
                r?;
                written += chunk.len();
            }
            Err(_) => {
                stalled = true;
                break;
            }
        }
    }
    let requests = written / frame.len();
    eprintln!(
        "{requests} fetch requests ({} KB) were written before the broker stopped reading",
        written >> 10
    );
    assert!(
        stalled,
        "{written} bytes of requests went in: no back-pressure"
    );
    // Answering them all would take tens of GB; the broker holds file
    // ranges, not copies, for the few it has taken. Other clients are not affected.
    let started = Instant::now();
    c.call(&produce("big", 0, batch(&["small"])?, 1)).await?;
    let f = c.call(&fetch("big", 1, 0)).await?;
    assert_eq!(
        values_of(f.topics[0].partitions[0].records.clone())?,
        ["small"]
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(slow);
    broker.shutdown().await?;
    Ok(())
}
