//! The admin HTTP API over real sockets: a broker on 127.0.0.1:0, traffic
//! over the native protocol, JSON over HTTP/1.1 (`common::http`).

use std::collections::BTreeSet;
use std::net::SocketAddr;

use anyhow::{Context, Result, ensure};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::{Value, json};
use warren_protocol::api::api_versions::ApiVersionsRequest;
use warren_protocol::api::auth::AuthenticateRequest;
use warren_protocol::api::groups::{
    CommitOffsetsRequest, CommitPartition, CommitTopic, JoinGroupRequest,
};
use warren_protocol::api::share::ShareFetchRequest;
use warren_protocol::scram::ScramClient;
use warren_protocol::{Compression, Header, RecordBatchBuilder};

mod common;
use common::create_user;
use common::http::{Reply, call, call_as, get_json};
use common::{Raw, batch, create, produce, start};

async fn post(addr: SocketAddr, path: &str, body: Value) -> Result<common::http::Reply> {
    call(addr, "POST", path, Some(&body)).await
}

/// Asserts a JSON error: status and code, and a non-empty message.
fn assert_error(r: &common::http::Reply, status: u16, code: &str) -> Result<()> {
    let body = r.json()?;
    ensure!(
        r.status == status && body["error"] == code,
        "wanted {status} {code}, got {} {body}",
        r.status
    );
    ensure!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "no message in {body}"
    );
    Ok(())
}

#[tokio::test]
async fn topics_are_created_listed_described_and_deleted() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let http = broker.http_addr();

    let r = post(
        http,
        "/api/topics",
        json!({"name": "orders", "partitions": 3, "routing": "direct",
               "alternate_topic": "orders.unrouted",
               "configs": {"retention.ms": "3600000", "durability": "none"}}),
    )
    .await?;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let created = r.json()?;
    assert_eq!(created["name"], "orders");
    assert_eq!(created["partitions"], 3);
    assert_eq!(created["routing"], "direct");
    assert_eq!(created["alternate_topic"], "orders.unrouted");
    assert_eq!(created["configs"]["retention.ms"], "3600000");
    assert_eq!(created["configs"]["durability"], "none");
    assert_eq!(created["bindings"], json!([]));

    // The same name again, bad JSON, no partitions, zero partitions, an
    // unknown routing mode, a bad name, an unknown config.
    let again = post(
        http,
        "/api/topics",
        json!({"name": "orders", "partitions": 1}),
    )
    .await?;
    assert_error(&again, 409, "TOPIC_ALREADY_EXISTS")?;
    let raw = call(http, "POST", "/api/topics", None).await?;
    assert_error(&raw, 400, "INVALID_REQUEST")?;
    for bad in [
        json!({"name": "x"}),
        json!({"name": "x", "partitions": 0}),
        json!({"name": "x", "partitions": 1, "routing": "fanout"}),
        json!({"name": "bad/name", "partitions": 1}),
        json!({"name": "x", "partitions": 1, "configs": {"no.such.config": "1"}}),
        json!({"name": "x", "partitions": 1, "surprise": true}),
    ] {
        let r = post(http, "/api/topics", bad.clone()).await?;
        assert_error(&r, 400, "INVALID_REQUEST").with_context(|| bad.to_string())?;
    }
    post(
        http,
        "/api/topics",
        json!({"name": "audit", "partitions": 1}),
    )
    .await?;

    let list = get_json(http, "/api/topics", 200).await?;
    let names: Vec<&str> = list
        .as_array()
        .context("not an array")?
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["audit", "orders"]);
    assert_eq!(list[1]["partitions"], 3);
    assert_eq!(list[1]["routing"], "direct");
    assert_eq!(list[1]["records"], 0);
    assert!(list[1]["size_bytes"].is_u64());

    let detail = get_json(http, "/api/topics/orders", 200).await?;
    assert_eq!(detail["configs"]["routing"], "direct");
    let missing = call(http, "GET", "/api/topics/nope", None).await?;
    assert_error(&missing, 404, "TOPIC_NOT_FOUND")?;

    let gone = call(http, "DELETE", "/api/topics/orders", None).await?;
    assert_eq!(gone.status, 204);
    assert_error(
        &call(http, "DELETE", "/api/topics/orders", None).await?,
        404,
        "TOPIC_NOT_FOUND",
    )?;
    assert_error(
        &call(http, "GET", "/api/topics/orders", None).await?,
        404,
        "TOPIC_NOT_FOUND",
    )?;
    let list = get_json(http, "/api/topics", 200).await?;
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    // An unknown route under /api is a JSON 404 too, a method a route
    // lacks a JSON 405.
    assert_error(
        &call(http, "GET", "/api/nothing/here", None).await?,
        404,
        "NOT_FOUND",
    )?;
    assert_error(
        &call(http, "PUT", "/api/topics", None).await?,
        405,
        "METHOD_NOT_ALLOWED",
    )?;
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn partition_offsets_follow_records_produced_over_the_native_protocol() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let http = broker.http_addr();
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "t", 2, "fsync").await?;
    c.call(&produce("t", 0, batch(&["a", "b", "c"])?, -1))
        .await?;
    c.call(&produce("t", 1, batch(&["d", "e"])?, -1)).await?;
    c.call(&produce("t", 1, batch(&["f"])?, -1)).await?;

    let parts = get_json(http, "/api/topics/t/partitions", 200).await?;
    let parts = parts.as_array().context("not an array")?;
    assert_eq!(parts.len(), 2);
    for (p, end) in [(0usize, 3), (1, 3)] {
        assert_eq!(parts[p]["partition"], p);
        assert_eq!(parts[p]["log_start_offset"], 0);
        assert_eq!(parts[p]["log_end_offset"], end);
        assert_eq!(parts[p]["high_watermark"], end);
        assert_eq!(parts[p]["segments"], 1);
        assert!(parts[p]["size_bytes"].as_u64().is_some_and(|b| b > 0));
    }
    let list = get_json(http, "/api/topics", 200).await?;
    assert_eq!(list[0]["records"], 6);
    assert_error(
        &call(http, "GET", "/api/topics/nope/partitions", None).await?,
        404,
        "TOPIC_NOT_FOUND",
    )?;
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn bindings_are_added_listed_and_removed_on_a_direct_topic() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let http = broker.http_addr();
    let r = post(
        http,
        "/api/topics",
        json!({"name": "d", "partitions": 3, "routing": "direct"}),
    )
    .await?;
    assert_eq!(r.status, 201);
    post(http, "/api/topics", json!({"name": "h", "partitions": 1})).await?;

    let r = post(
        http,
        "/api/topics/d/bindings",
        json!({"key": "eu", "partitions": [2, 0]}),
    )
    .await?;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()?, json!([{"key": "eu", "partitions": [0, 2]}]));
    let r = post(
        http,
        "/api/topics/d/bindings",
        json!({"key": "us", "partitions": [1]}),
    )
    .await?;
    assert_eq!(r.status, 201);
    assert_eq!(
        get_json(http, "/api/topics/d/bindings", 200).await?,
        json!([{"key": "eu", "partitions": [0, 2]}, {"key": "us", "partitions": [1]}])
    );
    assert_eq!(
        get_json(http, "/api/topics/d", 200).await?["bindings"],
        json!([{"key": "eu", "partitions": [0, 2]}, {"key": "us", "partitions": [1]}])
    );

    // Refusals: a hash topic, a partition out of range, no partitions, a
    // missing topic, half a query string.
    for (path, body) in [
        (
            "/api/topics/h/bindings",
            json!({"key": "k", "partitions": [0]}),
        ),
        (
            "/api/topics/d/bindings",
            json!({"key": "k", "partitions": [3]}),
        ),
        (
            "/api/topics/d/bindings",
            json!({"key": "k", "partitions": []}),
        ),
        ("/api/topics/d/bindings", json!({"key": "k"})),
    ] {
        assert_error(&post(http, path, body).await?, 400, "INVALID_REQUEST")?;
    }
    assert_error(
        &post(
            http,
            "/api/topics/nope/bindings",
            json!({"key": "k", "partitions": [0]}),
        )
        .await?,
        404,
        "TOPIC_NOT_FOUND",
    )?;
    assert_error(
        &call(http, "DELETE", "/api/topics/d/bindings?key=eu", None).await?,
        400,
        "INVALID_REQUEST",
    )?;

    // Remove one partition of "eu" with a body, then "us" by query string.
    let body = json!({"key": "eu", "partitions": [2]});
    let r = call(http, "DELETE", "/api/topics/d/bindings", Some(&body)).await?;
    assert_eq!(r.status, 204);
    let r = call(
        http,
        "DELETE",
        "/api/topics/d/bindings?key=us&partitions=1",
        None,
    )
    .await?;
    assert_eq!(r.status, 204);
    assert_eq!(
        get_json(http, "/api/topics/d/bindings", 200).await?,
        json!([{"key": "eu", "partitions": [0]}])
    );
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn groups_are_listed_and_described_with_lag_after_a_commit() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let http = broker.http_addr();
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "t", 2, "fsync").await?;
    c.call(&produce("t", 0, batch(&["a", "b", "c", "d", "e"])?, -1))
        .await?;
    c.call(&produce("t", 1, batch(&["f", "g", "h"])?, -1))
        .await?;
    let joined = c
        .call(&JoinGroupRequest {
            group: "billing".into(),
            member_id: String::new(),
            session_timeout_ms: 30_000,
            topics: vec!["t".into()],
        })
        .await?;
    let held: BTreeSet<u32> = joined
        .assignment
        .iter()
        .flat_map(|t| t.partitions.iter().copied())
        .collect();
    assert_eq!(held, BTreeSet::from([0, 1]));
    let committed = c
        .call(&CommitOffsetsRequest {
            group: "billing".into(),
            member_id: joined.member_id.clone(),
            generation: joined.generation,
            topics: vec![CommitTopic {
                topic: "t".into(),
                partitions: vec![
                    CommitPartition {
                        partition: 0,
                        offset: 2,
                        metadata: None,
                    },
                    CommitPartition {
                        partition: 1,
                        offset: 3,
                        metadata: None,
                    },
                ],
            }],
        })
        .await?;
    assert!(
        committed
            .topics
            .iter()
            .all(|t| t.partitions.iter().all(|(_, code)| code.0 == 0))
    );
    // A share group that acquired 2 records of partition 0.
    let fetched = c
        .call(&ShareFetchRequest {
            group: "workers".into(),
            member_id: "w1".into(),
            topic: "t".into(),
            max_records: 2,
            max_wait_ms: 0,
            partitions: vec![0],
        })
        .await?;
    drop(fetched);

    let groups = get_json(http, "/api/groups", 200).await?;
    assert_eq!(
        groups,
        json!([
            {"name": "billing", "kind": "consumer", "state": "Stable", "members": 1, "lag": 3},
            {"name": "workers", "kind": "share", "state": "Stable", "members": 1, "lag": 5},
        ])
    );

    let g = get_json(http, "/api/groups/billing", 200).await?;
    assert_eq!(g["kind"], "consumer");
    assert_eq!(g["generation"], joined.generation);
    assert_eq!(g["members"][0]["member_id"], joined.member_id.as_str());
    assert_eq!(
        g["members"][0]["partitions"],
        json!([{"topic": "t", "partition": 0}, {"topic": "t", "partition": 1}])
    );
    assert_eq!(
        g["offsets"],
        json!([
            {"topic": "t", "partition": 0, "committed_offset": 2, "log_end_offset": 5,
             "lag": 3, "owner": joined.member_id},
            {"topic": "t", "partition": 1, "committed_offset": 3, "log_end_offset": 3,
             "lag": 0, "owner": joined.member_id},
        ])
    );
    let w = get_json(http, "/api/groups/workers", 200).await?;
    assert_eq!(w["kind"], "share");
    assert_eq!(
        w["members"],
        json!([{"member_id": "w1", "client_id": null, "partitions": [{"topic": "t", "partition": 0}]}])
    );
    assert_eq!(w["offsets"][0]["committed_offset"], 0);
    assert_eq!(w["offsets"][0]["lag"], 5);
    assert_error(
        &call(http, "GET", "/api/groups/billing?kind=share", None).await?,
        404,
        "GROUP_NOT_FOUND",
    )?;
    assert_error(
        &call(http, "GET", "/api/groups/nobody", None).await?,
        404,
        "GROUP_NOT_FOUND",
    )?;
    assert_error(
        &call(http, "GET", "/api/groups/billing?kind=queue", None).await?,
        400,
        "INVALID_REQUEST",
    )?;
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn connections_lists_a_live_native_connection_with_its_counters() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let http = broker.http_addr();
    assert_eq!(get_json(http, "/api/connections", 200).await?, json!([]));
    let mut c = Raw::connect(broker.local_addr()).await?;
    c.call(&ApiVersionsRequest).await?;
    c.call(&ApiVersionsRequest).await?;
    let list = get_json(http, "/api/connections", 200).await?;
    let list = list.as_array().context("not an array")?;
    assert_eq!(list.len(), 1);
    let conn = &list[0];
    assert_eq!(conn["peer"], c.stream.local_addr()?.to_string());
    assert_eq!(conn["requests"], 2);
    assert!(conn["bytes_in"].as_u64().is_some_and(|b| b > 0));
    assert!(conn["bytes_out"].as_u64().is_some_and(|b| b > 0));
    assert_eq!(conn["tls"], false);
    assert_eq!(conn["user"], Value::Null);
    assert!(conn["connected_at_ms"].as_u64().is_some_and(|t| t > 0));
    assert!(conn["id"].is_u64());
    broker.shutdown().await?;
    Ok(())
}

fn records_batch(compression: Compression, values: &[&[u8]]) -> Result<Bytes> {
    let mut b = RecordBatchBuilder::new(compression);
    for (i, v) in values.iter().enumerate() {
        let key = format!("k{i}");
        b.append(
            1_700_000_000_000 + i as i64,
            Some(key.as_bytes()),
            Some(v),
            &[Header::new("trace", format!("t{i}"))],
        );
    }
    Ok(b.build()?)
}

#[tokio::test]
async fn messages_peek_shows_utf8_and_binary_values_with_headers() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let http = broker.http_addr();
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "t", 1, "fsync").await?;
    let records = records_batch(Compression::None, &[b"hello", &[0x00, 0xff, 0x10]])?;
    c.call(&produce("t", 0, records, -1)).await?;
    // A record with a null key, a null value and a binary header value.
    let mut b = RecordBatchBuilder::new(Compression::None);
    b.append(
        1_700_000_000_009,
        None,
        None,
        &[Header::new("bin", vec![0xc3u8, 0x28])],
    );
    c.call(&produce("t", 0, b.build()?, -1)).await?;

    let page = get_json(
        http,
        "/api/topics/t/partitions/0/messages?offset=0&limit=20",
        200,
    )
    .await?;
    assert_eq!(page["topic"], "t");
    assert_eq!(page["partition"], 0);
    assert_eq!(page["next_offset"], 3);
    assert_eq!(page["high_watermark"], 3);
    assert_eq!(
        page["messages"],
        json!([
            {"offset": 0, "timestamp_ms": 1_700_000_000_000i64,
             "key": {"encoding": "utf8", "data": "k0"},
             "value": {"encoding": "utf8", "data": "hello"},
             "headers": [{"key": "trace", "value": {"encoding": "utf8", "data": "t0"}}]},
            {"offset": 1, "timestamp_ms": 1_700_000_000_001i64,
             "key": {"encoding": "utf8", "data": "k1"},
             "value": {"encoding": "base64", "data": "AP8Q"},
             "headers": [{"key": "trace", "value": {"encoding": "utf8", "data": "t1"}}]},
            {"offset": 2, "timestamp_ms": 1_700_000_000_009i64, "key": null, "value": null,
             "headers": [{"key": "bin", "value": {"encoding": "base64", "data": "wyg="}}]},
        ])
    );
    // A limit inside a batch, the default offset, the end of the log.
    let one = get_json(
        http,
        "/api/topics/t/partitions/0/messages?offset=1&limit=1",
        200,
    )
    .await?;
    assert_eq!(one["next_offset"], 2);
    assert_eq!(one["messages"].as_array().map(Vec::len), Some(1));
    assert_eq!(one["messages"][0]["offset"], 1);
    let all = get_json(http, "/api/topics/t/partitions/0/messages", 200).await?;
    assert_eq!(all["messages"].as_array().map(Vec::len), Some(3));
    let end = get_json(http, "/api/topics/t/partitions/0/messages?offset=3", 200).await?;
    assert_eq!(end["messages"], json!([]));
    assert_eq!(end["next_offset"], 3);

    let past = call(
        http,
        "GET",
        "/api/topics/t/partitions/0/messages?offset=4",
        None,
    )
    .await?;
    assert_error(&past, 416, "OFFSET_OUT_OF_RANGE")?;
    for bad in [
        "/api/topics/t/partitions/x/messages",
        "/api/topics/t/partitions/0/messages?limit=0",
        "/api/topics/t/partitions/0/messages?offset=-1",
        "/api/topics/t/partitions/0/messages?offset=abc",
    ] {
        assert_error(&call(http, "GET", bad, None).await?, 400, "INVALID_REQUEST")
            .with_context(|| bad.to_owned())?;
    }
    assert_error(
        &call(http, "GET", "/api/topics/t/partitions/1/messages", None).await?,
        404,
        "PARTITION_NOT_FOUND",
    )?;
    assert_error(
        &call(http, "GET", "/api/topics/u/partitions/0/messages", None).await?,
        404,
        "TOPIC_NOT_FOUND",
    )?;
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn messages_peek_decodes_zstd_batches_from_an_offset_inside_them() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let http = broker.http_addr();
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "z", 1, "fsync").await?;
    let values: Vec<String> = (0..100).map(|i| format!("value-{i}")).collect();
    let refs: Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).collect();
    c.call(&produce(
        "z",
        0,
        records_batch(Compression::Zstd, &refs)?,
        -1,
    ))
    .await?;
    c.call(&produce(
        "z",
        0,
        records_batch(Compression::Zstd, &refs)?,
        -1,
    ))
    .await?;
    let page = get_json(
        http,
        "/api/topics/z/partitions/0/messages?offset=95&limit=10",
        200,
    )
    .await?;
    let offsets: Vec<u64> = page["messages"]
        .as_array()
        .context("no messages")?
        .iter()
        .filter_map(|m| m["offset"].as_u64())
        .collect();
    assert_eq!(offsets, (95..105).collect::<Vec<u64>>());
    assert_eq!(page["messages"][0]["value"]["data"], "value-95");
    assert_eq!(page["messages"][5]["value"]["data"], "value-0");
    assert_eq!(page["next_offset"], 105);
    // A limit above the maximum is lowered to it, not refused.
    let big = get_json(http, "/api/topics/z/partitions/0/messages?limit=5000", 200).await?;
    assert_eq!(big["messages"].as_array().map(Vec::len), Some(200));
    assert_eq!(big["next_offset"], 200);
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_corrupt_batch_is_a_500_naming_the_file_and_position() -> Result<()> {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let http = broker.http_addr();
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "t", 1, "fsync").await?;
    c.call(&produce("t", 0, batch(&["first"])?, -1)).await?;
    let second = batch(&["second-value"])?;
    let second_len = second.len() as u64;
    c.call(&produce("t", 0, second, -1)).await?;
    // Flip the last byte of the second batch (inside its records, under the CRC).
    let log = dir.path().join("t-0").join("00000000000000000000.log");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&log)?;
    let size = file.metadata()?.len();
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, size - 1)?;
    file.write_all_at(&[byte[0] ^ 0xff], size - 1)?;

    // The records before the damage come back; the peek that starts at it
    // gets the error.
    let before = get_json(http, "/api/topics/t/partitions/0/messages", 200).await?;
    assert_eq!(before["messages"][0]["value"]["data"], "first");
    assert_eq!(before["messages"].as_array().map(Vec::len), Some(1));
    assert_eq!(before["next_offset"], 1);
    let r = call(
        http,
        "GET",
        "/api/topics/t/partitions/0/messages?offset=1",
        None,
    )
    .await?;
    assert_error(&r, 500, "CORRUPT_BATCH")?;
    let message = r.json()?["message"].as_str().unwrap_or_default().to_owned();
    let position = size - second_len;
    assert!(
        message.contains("00000000000000000000.log")
            && message.contains(&format!("position {position}")),
        "{message}"
    );
    // The broker is still serving.
    assert_eq!(get_json(http, "/readyz", 200).await?["ready"], true);
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_batch_whose_records_do_not_decode_is_a_500_not_a_panic() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let http = broker.http_addr();
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "t", 1, "fsync").await?;
    c.call(&produce("t", 0, batch(&["fine"])?, -1)).await?;
    // A batch whose header and CRC are right but whose record claims a
    // header it does not have: produce refuses it now (its records are
    // validated, see produce_validation.rs), so a good batch is written and
    // then overwritten on disk, as damage or an older broker could leave it.
    // The peek must not trust it.
    use std::os::unix::fs::FileExt;
    let mut forged = batch(&["forged"])?.to_vec();
    let last = forged.len() - 1;
    forged[last] = 0x02;
    let crc = warren_protocol::record_batch::compute_crc(&forged);
    forged[17..21].copy_from_slice(&crc.to_be_bytes());
    c.call(&produce("t", 0, batch(&["forged"])?, -1)).await?;
    let log = dir.path().join("t-0").join("00000000000000000000.log");
    let file = std::fs::OpenOptions::new().write(true).open(&log)?;
    let at = file.metadata()?.len() - forged.len() as u64;
    // From the leader epoch on: the base offset on disk is the broker's.
    file.write_all_at(&forged[12..], at + 12)?;

    let before = get_json(http, "/api/topics/t/partitions/0/messages", 200).await?;
    assert_eq!(before["messages"].as_array().map(Vec::len), Some(1));
    assert_eq!(before["next_offset"], 1);
    let r = call(
        http,
        "GET",
        "/api/topics/t/partitions/0/messages?offset=1",
        None,
    )
    .await?;
    assert_error(&r, 500, "CORRUPT_BATCH")?;
    let message = r.json()?["message"].as_str().unwrap_or_default().to_owned();
    assert!(
        message.contains("00000000000000000000.log") && message.contains("position"),
        "{message}"
    );
    assert_eq!(get_json(http, "/readyz", 200).await?["ready"], true);
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn readyz_is_503_once_shutdown_begins_and_healthz_stays_ok() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let http = broker.http_addr();
    assert_eq!(
        get_json(http, "/readyz", 200).await?,
        json!({"ready": true})
    );
    let health = call(http, "GET", "/healthz", None).await?;
    assert_eq!((health.status, health.body.as_slice()), (200, &b"ok\n"[..]));
    broker.begin_shutdown();
    let r = call(http, "GET", "/readyz", None).await?;
    assert_eq!(r.status, 503);
    let body = r.json()?;
    assert_eq!(body["ready"], false);
    assert!(
        body["reason"]
            .as_str()
            .is_some_and(|s| s.contains("shutting down"))
    );
    assert_eq!(call(http, "GET", "/healthz", None).await?.status, 200);
    // Reads still answer; changes are refused.
    assert_eq!(get_json(http, "/api/topics", 200).await?, json!([]));
    let create = post(
        http,
        "/api/topics",
        json!({"name": "late", "partitions": 1}),
    )
    .await?;
    assert_error(&create, 503, "SHUTTING_DOWN")?;
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn overview_totals_move_after_traffic() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let http = broker.http_addr();
    let before = get_json(http, "/api/overview", 200).await?;
    assert_eq!(before["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(before["topics"], 0);
    assert_eq!(before["totals"]["records_in"], 0);
    assert!(before["throughput"].is_array());

    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "t", 2, "fsync").await?;
    c.call(&produce("t", 0, batch(&["a"; 7])?, -1)).await?;
    c.call(&produce("t", 1, batch(&["b"; 3])?, -1)).await?;
    let after = get_json(http, "/api/overview", 200).await?;
    assert_eq!(after["topics"], 1);
    assert_eq!(after["partitions"], 2);
    assert_eq!(after["connections"], 1);
    assert_eq!(after["groups"], 0);
    assert!(after["disk_bytes"].as_u64().is_some_and(|b| b > 0));
    assert_eq!(after["totals"]["records_in"], 10);
    assert_eq!(after["totals"]["requests"], 3);
    let grew = |field: &str| {
        after["totals"][field].as_u64().unwrap_or(0) > before["totals"][field].as_u64().unwrap_or(0)
    };
    assert!(grew("bytes_in") && grew("bytes_out"), "{after}");

    // Records of a deleted topic stay counted; a new topic of the same name
    // counts from zero.
    let r = call(http, "DELETE", "/api/topics/t", None).await?;
    assert_eq!(r.status, 204);
    create(&mut c, "t", 1, "fsync").await?;
    c.call(&produce("t", 0, batch(&["c", "d"])?, -1)).await?;
    let last = get_json(http, "/api/overview", 200).await?;
    assert_eq!(last["totals"]["records_in"], 12);
    broker.shutdown().await?;
    Ok(())
}

/// Fills the broker with what the document's examples name: group
/// `billing` with a committed offset (on topic `payments`); topic `orders`
/// is created by the document's own `POST /api/topics` example.
async fn examples_world(addr: SocketAddr) -> Result<()> {
    let mut c = Raw::connect(addr).await?;
    create(&mut c, "payments", 1, "fsync").await?;
    c.call(&produce("payments", 0, batch(&["p"])?, -1)).await?;
    let joined = c
        .call(&JoinGroupRequest {
            group: "billing".into(),
            member_id: String::new(),
            session_timeout_ms: 30_000,
            topics: vec!["payments".into()],
        })
        .await?;
    c.call(&CommitOffsetsRequest {
        group: "billing".into(),
        member_id: joined.member_id,
        generation: joined.generation,
        topics: vec![CommitTopic {
            topic: "payments".into(),
            partitions: vec![CommitPartition {
                partition: 0,
                offset: 1,
                metadata: None,
            }],
        }],
    })
    .await?;
    Ok(())
}

/// The example of a parameter, as text.
fn example_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// One operation of the OpenAPI document, ready to call with its examples.
struct Operation {
    method: String,
    path: String,
    /// The path with its path parameters' examples, and the query ones.
    url: String,
    body: Option<Value>,
    /// Every status the document gives.
    statuses: BTreeSet<u16>,
    /// The one 2xx status.
    success: u16,
    /// The success response's content types.
    content: Vec<String>,
    /// `security: []`: the auth layer lets it through without credentials.
    open: bool,
}

impl Operation {
    fn name(&self) -> String {
        format!("{} {}", self.method, self.url)
    }

    async fn call(&self, http: SocketAddr, authorization: Option<&str>) -> Result<Reply> {
        call_as(
            http,
            &self.method,
            &self.url,
            authorization,
            self.body.as_ref(),
        )
        .await
    }

    /// Fails unless `r` is the documented `status`, with a documented
    /// content type when it is the success.
    fn check(&self, r: &Reply, status: u16) -> Result<()> {
        ensure!(
            self.statuses.contains(&status),
            "{}: {status} is not in the document",
            self.name()
        );
        ensure!(
            r.status == status,
            "{}: got {} but wanted {status}: {}",
            self.name(),
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        if status == self.success && status != 204 {
            let got = r.header("content-type").unwrap_or_default();
            ensure!(
                self.content.iter().any(|c| got.starts_with(c.as_str())),
                "{}: content type {got:?}, the document says {:?}",
                self.name(),
                self.content
            );
            if got.starts_with("application/json") {
                r.json().with_context(|| self.name())?;
            }
        }
        Ok(())
    }
}

/// Every operation of `doc`, creations first and deletions last (bindings
/// before their topic), so each example call finds what it needs.
fn operations(doc: &Value) -> Result<Vec<Operation>> {
    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().context("no paths")? {
        for (method, op) in item.as_object().context("bad path item")? {
            let method = method.to_uppercase();
            let mut url = path.clone();
            let mut query = Vec::new();
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().context("parameter without a name")?;
                let example = example_text(&p["example"]);
                match (p["in"].as_str(), example) {
                    (Some("path"), Some(v)) => url = url.replace(&format!("{{{name}}}"), &v),
                    (Some("path"), None) => {
                        anyhow::bail!("{method} {path}: path parameter {name} has no example")
                    }
                    (Some("query"), Some(v)) if method != "DELETE" => {
                        query.push(format!("{name}={v}"))
                    }
                    _ => {}
                }
            }
            if !query.is_empty() {
                url = format!("{url}?{}", query.join("&"));
            }
            let body = op["requestBody"]["content"]["application/json"]["example"].clone();
            let responses = op["responses"].as_object().context("no responses")?;
            let statuses: BTreeSet<u16> = responses.keys().filter_map(|k| k.parse().ok()).collect();
            let success: Vec<u16> = statuses
                .iter()
                .copied()
                .filter(|s| (200..300).contains(s))
                .collect();
            let [success] = success[..] else {
                anyhow::bail!("{method} {path}: success statuses {success:?}");
            };
            let content = responses[&success.to_string()]["content"]
                .as_object()
                .map(|c| c.keys().cloned().collect())
                .unwrap_or_default();
            let rank = match method.as_str() {
                "POST" => (0, path.len()),
                "GET" => (1, path.len()),
                _ => (2, usize::MAX - path.len()),
            };
            operations.push((
                rank,
                Operation {
                    method,
                    path: path.clone(),
                    url,
                    body: (!body.is_null()).then_some(body),
                    statuses,
                    success,
                    content,
                    open: op["security"] == json!([]),
                },
            ));
        }
    }
    operations.sort_by_key(|(rank, _)| *rank);
    Ok(operations.into_iter().map(|(_, op)| op).collect())
}

const TOKEN_PATH: &str = "/api/auth/token";

/// With no users (the default): every operation answers its documented
/// success but the token route, which answers its documented 400 (no token
/// is needed). And the document lists every route the router serves, all
/// areas: probes, API, metrics, page, token.
#[tokio::test]
async fn every_route_is_in_the_openapi_document_and_answers_as_it_says() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let http = broker.http_addr();
    examples_world(broker.local_addr()).await?;
    let doc = get_json(http, "/api/openapi.json", 200).await?;
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.0"))
    );
    let operations = operations(&doc)?;
    ensure!(
        operations.len() >= 22,
        "only {} operations",
        operations.len()
    );
    for op in &operations {
        let r = op.call(http, None).await?;
        if op.path == TOKEN_PATH {
            op.check(&r, 400)?;
            assert_error(&r, 400, "INVALID_REQUEST")?;
        } else {
            op.check(&r, op.success)?;
        }
    }

    let documented: BTreeSet<(String, String)> = operations
        .iter()
        .map(|op| (op.method.clone(), op.path.clone()))
        .collect();
    let served: BTreeSet<(String, String)> = warren_broker::http_routes()
        .iter()
        .map(|r| (r.method.to_owned(), r.openapi_path()))
        .collect();
    assert_eq!(documented, served);
    for area in [
        "/healthz",
        "/metrics",
        "/",
        "/ui/{file}",
        TOKEN_PATH,
        "/api/topics",
    ] {
        assert!(served.iter().any(|(_, p)| p == area), "{area} not served");
    }
    broker.shutdown().await?;
    Ok(())
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

/// With users: what the document says of security is what the auth layer
/// does. Without credentials, the `security: []` operations answer their
/// success and every other one its documented 401. A user with no ACLs
/// gets the documented 403 wherever one is documented, and elsewhere the
/// success (listings come back empty). A superuser gets a token from
/// `POST /api/auth/token` (401 with a wrong password) and, with it, every
/// operation answers its documented success.
#[tokio::test]
async fn with_users_every_operation_answers_its_documented_auth_statuses() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let http = broker.http_addr();
    examples_world(broker.local_addr()).await?;
    let operations = operations(&get_json(http, "/api/openapi.json", 200).await?)?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    c.call(&create_user("root", "root-pw", true)?).await?;
    // The first user makes the broker authenticated: go on as root.
    let scram = ScramClient::new("root", "root-pw")?;
    let first = c
        .call(&AuthenticateRequest {
            mechanism: "SCRAM-SHA-256".into(),
            auth_bytes: Bytes::from(scram.client_first()),
        })
        .await?;
    let (_, client_final) = scram.handle_server_first(&first.auth_bytes)?;
    c.call(&AuthenticateRequest {
        mechanism: "SCRAM-SHA-256".into(),
        auth_bytes: Bytes::from(client_final),
    })
    .await?;
    c.call(&create_user("nobody", "nobody-pw", false)?).await?;

    let nobody = basic("nobody", "nobody-pw");
    for op in &operations {
        let r = op.call(http, None).await?;
        if op.open {
            op.check(&r, op.success)?;
        } else {
            op.check(&r, 401)?;
            assert_error(&r, 401, "UNAUTHORIZED")?;
            ensure!(
                r.header("www-authenticate") == Some("Bearer realm=\"warren\""),
                "{}: {:?}",
                op.name(),
                r.headers
            );
        }

        let r = op.call(http, Some(&nobody)).await?;
        if op.statuses.contains(&403) {
            op.check(&r, 403)?;
            assert_error(&r, 403, "FORBIDDEN")?;
        } else {
            op.check(&r, op.success)?;
            if op.method == "GET" && (op.path == "/api/topics" || op.path == "/api/groups") {
                ensure!(r.json()? == json!([]), "{}: {}", op.name(), r.json()?);
            }
        }
    }

    let token_op = operations
        .iter()
        .find(|op| op.path == TOKEN_PATH)
        .context("no token operation")?;
    let wrong = token_op
        .call(http, Some(&basic("root", "not-the-password")))
        .await?;
    token_op.check(&wrong, 401)?;
    assert_error(&wrong, 401, "UNAUTHORIZED")?;
    let r = token_op.call(http, Some(&basic("root", "root-pw"))).await?;
    token_op.check(&r, 200)?;
    let issued = r.json()?;
    let token = issued["token"].as_str().context("no token")?;
    ensure!(issued["expires_at_ms"].as_u64().is_some_and(|t| t > 0));
    let bearer = format!("Bearer {token}");
    for op in &operations {
        let auth = if op.path == TOKEN_PATH {
            basic("root", "root-pw")
        } else {
            bearer.clone()
        };
        let r = op.call(http, Some(&auth)).await?;
        op.check(&r, op.success)?;
    }
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn messages_peek_cuts_long_values_at_a_character_and_shows_their_length() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let http = broker.http_addr();
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "t", 1, "none").await?;
    // 1 + 2 x 40,000 bytes: the 64 KiB cut falls inside an "é".
    let long = format!("a{}", "é".repeat(40_000));
    let headers: Vec<Header> = (0..70).map(|i| Header::new(format!("h{i}"), "v")).collect();
    let mut b = RecordBatchBuilder::new(Compression::None);
    b.append(
        1_700_000_000_000,
        Some(b"k"),
        Some(long.as_bytes()),
        &headers,
    );
    c.call(&produce("t", 0, b.build()?, 1)).await?;
    let page = get_json(http, "/api/topics/t/partitions/0/messages", 200).await?;
    let m = &page["messages"][0];
    let value = &m["value"];
    assert_eq!(value["encoding"], "utf8");
    assert_eq!(value["truncated"], true);
    assert_eq!(value["bytes"], long.len());
    let shown = value["data"].as_str().context("data")?;
    assert_eq!(shown.len(), 65_535, "cut back to the last whole character");
    assert!(long.starts_with(shown));
    // A short field carries neither `bytes` nor `truncated`.
    assert_eq!(m["key"], json!({"encoding": "utf8", "data": "k"}));
    assert_eq!(m["headers"].as_array().map(Vec::len), Some(64));
    assert_eq!(m["headers_count"], 70);
    broker.shutdown().await?;
    Ok(())
}
