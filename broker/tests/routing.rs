//! Routing against a real broker on 127.0.0.1:0, raw frames over a real socket:
//! `direct` and `topic` modes, Bind/Unbind, several copies of one batch,
//! UNROUTABLE, the alternate topic, bindings across a restart and a topic
//! deletion, and the requests the broker refuses.

mod common;

use anyhow::{Context, Result, bail, ensure};
use bytes::Bytes;
use common::{Raw, batch, start, values_of};
use warren_protocol::ErrorCode;
use warren_protocol::api::bindings::{BindRequest, RoutingMode, UnbindRequest};
use warren_protocol::api::fetch::{FetchPartition, FetchRequest, FetchTopic};
use warren_protocol::api::metadata::MetadataRequest;
use warren_protocol::api::produce::{
    ProduceCopy, ProducePartition, ProducePartitionResponse, ProduceRequest, ProduceTopic,
    ROUTE_BY_KEY,
};
use warren_protocol::api::topics::{
    BindingDescription, CreateTopicRequest, DeleteTopicRequest, DescribeTopicRequest,
    DescribeTopicResponse,
};
use warren_protocol::api::{self, ErrorBody, Request};

/// Creates `name` with `partitions` and configs (`durability` defaults to none).
async fn create(c: &mut Raw, name: &str, partitions: u32, configs: &[(&str, &str)]) -> Result<()> {
    let mut configs: Vec<(String, String)> = configs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    if !configs.iter().any(|(k, _)| k == "durability") {
        configs.push(("durability".into(), "none".into()));
    }
    c.call(&CreateTopicRequest {
        name: name.into(),
        partitions,
        configs,
    })
    .await?;
    Ok(())
}

/// Sends a request that must fail; returns the header's code and message.
async fn refused<R: Request>(c: &mut Raw, req: &R) -> Result<(ErrorCode, String)> {
    let id = c.send(req).await?;
    let f = c.recv().await?;
    ensure!(f.header.correlation_id == id);
    if f.header.error_code == 0 {
        bail!("the request succeeded");
    }
    let body: ErrorBody = api::decode(f.body)?;
    Ok((ErrorCode(f.header.error_code), body.message))
}

fn bind(topic: &str, key: &str, partitions: &[u32]) -> BindRequest {
    BindRequest {
        topic: topic.into(),
        key: key.into(),
        partitions: partitions.to_vec(),
    }
}

fn unbind(topic: &str, key: &str, partitions: &[u32]) -> UnbindRequest {
    UnbindRequest {
        topic: topic.into(),
        key: key.into(),
        partitions: partitions.to_vec(),
    }
}

/// Produces `records` routed by `key` (partition -1) with acks=-1; returns
/// the entry's result.
async fn routed(
    c: &mut Raw,
    topic: &str,
    key: Option<&str>,
    records: Bytes,
) -> Result<ProducePartitionResponse> {
    let r = c
        .call(&ProduceRequest {
            acks: -1,
            timeout_ms: 10_000,
            topics: vec![ProduceTopic {
                topic: topic.into(),
                partitions: vec![ProducePartition {
                    partition: ROUTE_BY_KEY,
                    routing_key: key.map(str::to_owned),
                    records,
                }],
            }],
        })
        .await?;
    r.topics
        .into_iter()
        .next()
        .and_then(|t| t.partitions.into_iter().next())
        .context("no entry in the produce response")
}

/// Every record value in one partition (a fetch that does not wait), and the
/// raw batch bytes.
async fn read(c: &mut Raw, topic: &str, partition: u32) -> Result<(Vec<String>, Bytes)> {
    let f = c
        .call(&FetchRequest {
            max_wait_ms: 0,
            min_bytes: 0,
            max_bytes: 1 << 20,
            topics: vec![FetchTopic {
                topic: topic.into(),
                partitions: vec![FetchPartition {
                    partition,
                    fetch_offset: 0,
                    partition_max_bytes: 1 << 20,
                }],
            }],
        })
        .await?;
    let p = f
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .context("no partition in the fetch response")?;
    ensure!(p.error_code == ErrorCode::NONE, "{:?}", p.error_code);
    Ok((values_of(p.records.clone())?, p.records.clone()))
}

/// Values of every partition of `topic`, by partition.
async fn read_all(c: &mut Raw, topic: &str, partitions: u32) -> Result<Vec<Vec<String>>> {
    let mut out = Vec::new();
    for p in 0..partitions {
        out.push(read(c, topic, p).await?.0);
    }
    Ok(out)
}

async fn describe(c: &mut Raw, topic: &str) -> Result<DescribeTopicResponse> {
    c.call(&DescribeTopicRequest { name: topic.into() }).await
}

fn config<'a>(d: &'a DescribeTopicResponse, key: &str) -> Option<&'a str> {
    d.configs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn binding(key: &str, partitions: &[u32]) -> BindingDescription {
    BindingDescription {
        key: key.into(),
        partitions: partitions.to_vec(),
    }
}

#[tokio::test]
async fn a_direct_key_bound_to_two_partitions_is_appended_to_both() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    // fsync: the high watermark moves only after the fsync, so what a fetch
    // sees right after an acks=-1 answer proves every copy was made durable.
    create(
        &mut c,
        "orders",
        4,
        &[("routing", "direct"), ("durability", "fsync")],
    )
    .await?;
    c.call(&bind("orders", "eu", &[3, 1])).await?;
    c.call(&bind("orders", "us", &[2])).await?;

    let first = routed(&mut c, "orders", Some("eu"), batch(&["e1", "e2"])?).await?;
    assert_eq!(first.error_code, ErrorCode::NONE);
    assert_eq!((first.partition, first.base_offset), (1, 0));
    assert_eq!(
        first.more,
        [ProduceCopy {
            partition: 3,
            base_offset: 0
        }]
    );
    assert_eq!(first.alternate_topic, None);
    let second = routed(&mut c, "orders", Some("eu"), batch(&["e3"])?).await?;
    assert_eq!((second.partition, second.base_offset), (1, 2));
    assert_eq!(
        second.more,
        [ProduceCopy {
            partition: 3,
            base_offset: 2
        }]
    );
    let us = routed(&mut c, "orders", Some("us"), batch(&["u1"])?).await?;
    assert_eq!((us.partition, us.base_offset), (2, 0));
    assert!(us.more.is_empty());
    // An explicit partition is not routed, whatever the mode.
    let explicit = c
        .call(&common::produce("orders", 0, batch(&["direct-to-0"])?, -1))
        .await?;
    assert_eq!(explicit.topics[0].partitions[0].error_code, ErrorCode::NONE);

    assert_eq!(
        read_all(&mut c, "orders", 4).await?,
        [
            vec!["direct-to-0"],
            vec!["e1", "e2", "e3"],
            vec!["u1"],
            vec!["e1", "e2", "e3"]
        ]
    );
    // The same bytes in both partitions, byte for byte (base offsets included,
    // as both copies landed at the same offsets).
    let (_, in_1) = read(&mut c, "orders", 1).await?;
    let (_, in_3) = read(&mut c, "orders", 3).await?;
    assert_eq!(in_1, in_3);

    // Metadata and DescribeTopic tell the mode; describe lists the bindings.
    let m = c
        .call(&MetadataRequest {
            topics: vec!["orders".into()],
        })
        .await?;
    assert_eq!(m.topics[0].routing, RoutingMode::Direct);
    let d = describe(&mut c, "orders").await?;
    assert_eq!(config(&d, "routing"), Some("direct"));
    assert_eq!(config(&d, "alternate.topic"), Some(""));
    assert_eq!(d.bindings, [binding("eu", &[1, 3]), binding("us", &[2])]);
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn topic_patterns_route_by_rabbitmq_rules() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "events", 4, &[("routing", "topic")]).await?;
    c.call(&bind("events", "orders.*.eu", &[0])).await?;
    c.call(&bind("events", "orders.#", &[1])).await?;
    c.call(&bind("events", "#.refund", &[2])).await?;
    // Two patterns to one partition: one copy there.
    c.call(&bind("events", "*.*.refund", &[2])).await?;

    let cases: [(&str, &[u32]); 6] = [
        ("orders.paid.eu", &[0, 1]),
        ("orders", &[1]),
        ("orders.eu", &[1]),
        ("orders.x.refund", &[1, 2]),
        ("payments.card.refund", &[2]),
        ("refund", &[2]),
    ];
    for (key, want) in cases {
        let r = routed(&mut c, "events", Some(key), batch(&[key])?).await?;
        assert_eq!(r.error_code, ErrorCode::NONE, "{key}");
        let mut got = vec![u32::try_from(r.partition)?];
        got.extend(r.more.iter().map(|m| m.partition));
        assert_eq!(got, want, "{key}");
    }
    // `*` is exactly one word: `orders.a.b.eu` is not `orders.*.eu` (but is `orders.#`).
    let r = routed(&mut c, "events", Some("orders.a.b.eu"), batch(&["deep"])?).await?;
    assert_eq!((r.partition, r.more.len()), (1, 0));
    let r = routed(&mut c, "events", Some("payments.eu"), batch(&["none"])?).await?;
    assert_eq!(r.error_code, ErrorCode::UNROUTABLE);

    assert_eq!(
        read_all(&mut c, "events", 4).await?,
        [
            vec!["orders.paid.eu"],
            vec![
                "orders.paid.eu",
                "orders",
                "orders.eu",
                "orders.x.refund",
                "deep"
            ],
            vec!["orders.x.refund", "payments.card.refund", "refund"],
            Vec::<&str>::new(),
        ]
    );
    let d = describe(&mut c, "events").await?;
    assert_eq!(
        d.bindings,
        [
            binding("#.refund", &[2]),
            binding("*.*.refund", &[2]),
            binding("orders.#", &[1]),
            binding("orders.*.eu", &[0]),
        ]
    );
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn unbound_keys_and_null_keys_are_unroutable_and_write_nothing() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "d", 2, &[("routing", "direct")]).await?;
    c.call(&bind("d", "k", &[0, 1])).await?;
    assert_eq!(
        routed(&mut c, "d", Some("k"), batch(&["1"])?)
            .await?
            .more
            .len(),
        1
    );

    // Unbind one partition: the key now reaches only the other.
    c.call(&unbind("d", "k", &[0])).await?;
    let r = routed(&mut c, "d", Some("k"), batch(&["2"])?).await?;
    assert_eq!((r.partition, r.more.len()), (1, 0));
    // Unbinding what is not bound changes nothing and is not an error.
    c.call(&unbind("d", "k", &[0])).await?;
    c.call(&unbind("d", "never-bound", &[1])).await?;
    c.call(&unbind("d", "k", &[1])).await?;
    assert!(describe(&mut c, "d").await?.bindings.is_empty());

    for key in [Some("k"), Some("other"), None] {
        let r = routed(&mut c, "d", key, batch(&["lost"])?).await?;
        assert_eq!(r.error_code, ErrorCode::UNROUTABLE, "{key:?}");
        assert_eq!((r.partition, r.base_offset), (-1, -1));
        assert!(r.more.is_empty());
        let message = r.error_message.context("no message")?;
        match key {
            Some(key) => assert!(
                message.contains("no binding of topic d") && message.contains(key),
                "{message}"
            ),
            None => assert!(message.contains("no routing key"), "{message}"),
        }
    }
    assert_eq!(read_all(&mut c, "d", 2).await?, [vec!["1"], vec!["1", "2"]]);
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn unmatched_batches_go_to_the_alternate_topic_by_its_own_mode() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(
        &mut c,
        "main",
        2,
        &[("routing", "direct"), ("alternate.topic", "spill")],
    )
    .await?;
    c.call(&bind("main", "known", &[1])).await?;
    let d = describe(&mut c, "main").await?;
    assert_eq!(config(&d, "alternate.topic"), Some("spill"));

    // The alternate topic does not exist yet: UNROUTABLE, naming it.
    let r = routed(&mut c, "main", Some("stray"), batch(&["a"])?).await?;
    assert_eq!(r.error_code, ErrorCode::UNROUTABLE);
    let message = r.error_message.context("no message")?;
    assert!(
        message.contains("spill") && message.contains("does not exist"),
        "{message}"
    );

    // A hash alternate: the key's hash picks the partition (round-robin without a key).
    create(&mut c, "spill", 3, &[]).await?;
    let want = warren_protocol::partition_for_key(b"stray", 3);
    let r = routed(&mut c, "main", Some("stray"), batch(&["b"])?).await?;
    assert_eq!(r.error_code, ErrorCode::NONE);
    assert_eq!(r.alternate_topic.as_deref(), Some("spill"));
    assert_eq!((r.partition, r.base_offset), (i32::try_from(want)?, 0));
    let r = routed(&mut c, "main", None, batch(&["keyless"])?).await?;
    assert_eq!(r.alternate_topic.as_deref(), Some("spill"));
    // A matching key still goes to the topic itself.
    let r = routed(&mut c, "main", Some("known"), batch(&["c"])?).await?;
    assert_eq!((r.partition, r.alternate_topic), (1, None));
    let spilled: usize = read_all(&mut c, "spill", 3)
        .await?
        .iter()
        .map(Vec::len)
        .sum();
    assert_eq!(spilled, 2);
    assert_eq!(
        read(&mut c, "spill", want)
            .await?
            .0
            .first()
            .map(String::as_str),
        Some("b")
    );
    assert_eq!(read_all(&mut c, "main", 2).await?, [vec![], vec!["c"]]);

    // A direct alternate routes by its own bindings, and its own alternate is
    // never followed (no loops, even a -> b -> a).
    create(
        &mut c,
        "a",
        1,
        &[("routing", "direct"), ("alternate.topic", "b")],
    )
    .await?;
    create(
        &mut c,
        "b",
        2,
        &[("routing", "direct"), ("alternate.topic", "a")],
    )
    .await?;
    c.call(&bind("b", "only-b", &[1])).await?;
    let r = routed(&mut c, "a", Some("only-b"), batch(&["to-b"])?).await?;
    assert_eq!(
        (r.error_code, r.partition, r.alternate_topic.as_deref()),
        (ErrorCode::NONE, 1, Some("b"))
    );
    let r = routed(&mut c, "a", Some("nowhere"), batch(&["x"])?).await?;
    assert_eq!(r.error_code, ErrorCode::UNROUTABLE);
    let message = r.error_message.context("no message")?;
    assert!(message.contains("alternate topic b"), "{message}");
    assert_eq!(read_all(&mut c, "a", 1).await?, [Vec::<String>::new()]);
    assert_eq!(read_all(&mut c, "b", 2).await?, [vec![], vec!["to-b"]]);
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn bindings_survive_a_restart() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "t", 3, &[("routing", "topic")]).await?;
    create(
        &mut c,
        "d",
        2,
        &[("routing", "direct"), ("alternate.topic", "t")],
    )
    .await?;
    c.call(&bind("t", "a.#", &[0, 2])).await?;
    c.call(&bind("t", "*.b", &[1])).await?;
    c.call(&bind("t", "gone", &[1])).await?;
    c.call(&unbind("t", "gone", &[1])).await?;
    c.call(&bind("d", "x", &[1])).await?;
    let before_t = describe(&mut c, "t").await?.bindings;
    let before_d = describe(&mut c, "d").await?.bindings;
    drop(c);
    broker.shutdown().await?;

    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    let after = describe(&mut c, "t").await?;
    assert_eq!(after.bindings, before_t);
    assert_eq!(
        after.bindings,
        [binding("*.b", &[1]), binding("a.#", &[0, 2])]
    );
    let d = describe(&mut c, "d").await?;
    assert_eq!(d.bindings, before_d);
    assert_eq!(config(&d, "routing"), Some("direct"));
    assert_eq!(config(&d, "alternate.topic"), Some("t"));
    let r = routed(&mut c, "t", Some("a.b"), batch(&["after"])?).await?;
    let mut got = vec![r.partition];
    got.extend(
        r.more
            .iter()
            .map(|m| i32::try_from(m.partition).unwrap_or(-1)),
    );
    assert_eq!(got, [0, 1, 2]);
    let r = routed(&mut c, "t", Some("gone"), batch(&["x"])?).await?;
    assert_eq!(r.error_code, ErrorCode::UNROUTABLE);
    // And d's alternate still leads to t.
    let r = routed(&mut c, "d", Some("a"), batch(&["via-d"])?).await?;
    assert_eq!(r.alternate_topic.as_deref(), Some("t"));
    assert_eq!((r.partition, r.more.len()), (0, 1));
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn deleting_a_topic_removes_its_bindings() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "d", 2, &[("routing", "direct")]).await?;
    create(&mut c, "d2", 2, &[("routing", "direct")]).await?;
    c.call(&bind("d", "k", &[0, 1])).await?;
    c.call(&bind("d2", "k", &[1])).await?;
    c.call(&DeleteTopicRequest { name: "d".into() }).await?;
    create(&mut c, "d", 2, &[("routing", "direct")]).await?;
    assert!(describe(&mut c, "d").await?.bindings.is_empty());
    let r = routed(&mut c, "d", Some("k"), batch(&["x"])?).await?;
    assert_eq!(r.error_code, ErrorCode::UNROUTABLE);
    // Another topic whose name starts the same keeps its own.
    assert_eq!(describe(&mut c, "d2").await?.bindings, [binding("k", &[1])]);
    drop(c);
    broker.shutdown().await?;

    // Nothing comes back from the store after a restart either.
    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    assert!(describe(&mut c, "d").await?.bindings.is_empty());
    assert_eq!(describe(&mut c, "d2").await?.bindings, [binding("k", &[1])]);
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn invalid_binds_and_routing_configs_are_refused_with_a_reason() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "h", 2, &[]).await?;
    create(&mut c, "d", 2, &[("routing", "direct")]).await?;
    let long = "k".repeat(256);
    let cases: [(BindRequest, ErrorCode, &str); 5] = [
        (
            bind("h", "k", &[0]),
            ErrorCode::INVALID_BINDING,
            "routes by hash",
        ),
        (
            bind("d", "k", &[2]),
            ErrorCode::INVALID_BINDING,
            "partition 2 does not exist: the topic has 2 partitions",
        ),
        (
            bind("d", &long, &[0]),
            ErrorCode::INVALID_BINDING,
            "256 bytes long, the limit is 255",
        ),
        (
            bind("d", "k", &[]),
            ErrorCode::INVALID_BINDING,
            "no partitions",
        ),
        (bind("nope", "k", &[0]), ErrorCode::UNKNOWN_TOPIC, "nope"),
    ];
    for (req, code, reason) in cases {
        let (got, message) = refused(&mut c, &req).await?;
        assert_eq!(got, code, "{message}");
        assert!(message.contains(reason), "{message}");
        let unbind = unbind(&req.topic, &req.key, &req.partitions);
        assert_eq!(refused(&mut c, &unbind).await?.0, code);
    }
    // A 255-byte key is fine.
    c.call(&bind("d", &"k".repeat(255), &[0])).await?;
    assert_eq!(describe(&mut c, "d").await?.bindings.len(), 1);
    assert!(describe(&mut c, "h").await?.bindings.is_empty());

    let bad_configs: [&[(&str, &str)]; 4] = [
        &[("routing", "fanout")],
        &[("alternate.topic", "x")],
        &[("routing", "direct"), ("alternate.topic", "z")],
        &[("routing", "topic"), ("alternate.topic", "no/such")],
    ];
    for configs in bad_configs {
        let req = CreateTopicRequest {
            name: "z".into(),
            partitions: 1,
            configs: configs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        let (code, message) = refused(&mut c, &req).await?;
        assert_eq!(code, ErrorCode::INVALID_CONFIG, "{configs:?}: {message}");
    }
    let (_, message) = refused(
        &mut c,
        &CreateTopicRequest {
            name: "z".into(),
            partitions: 1,
            configs: vec![("exchange".into(), "x".into())],
        },
    )
    .await?;
    assert!(message.contains("routing, alternate.topic"), "{message}");
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn stored_bindings_no_topic_can_take_are_dropped_at_start() -> Result<()> {
    use warren_storage::{KvConfig, KvOp, KvStore};
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "d", 2, &[("routing", "direct")]).await?;
    create(&mut c, "h", 2, &[]).await?;
    c.call(&bind("d", "k", &[1])).await?;
    drop(c);
    broker.shutdown().await?;

    // What a crash between a DeleteTopic's steps, or a hand-edited store,
    // could leave: bindings of a missing topic, of a hash topic, of a
    // partition out of range, and a key that does not parse.
    let kv_dir = dir.path().join("meta").join("kv");
    let kv = KvStore::open(&kv_dir, KvConfig::default())?;
    let strays = [
        warren_broker::metadata::bindings::key("deleted", "k", 0),
        warren_broker::metadata::bindings::key("h", "k", 0),
        warren_broker::metadata::bindings::key("d", "k", 7),
        b"bd\0no-partition".to_vec(),
    ];
    let ops: Vec<KvOp<'_>> = strays.iter().map(|k| KvOp::Put(k, b"")).collect();
    kv.apply_durable(&ops)?;
    kv.close()?;
    drop(kv);

    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    assert_eq!(describe(&mut c, "d").await?.bindings, [binding("k", &[1])]);
    assert!(describe(&mut c, "h").await?.bindings.is_empty());
    // A topic created under the deleted name starts with nothing.
    create(&mut c, "deleted", 1, &[("routing", "direct")]).await?;
    assert!(describe(&mut c, "deleted").await?.bindings.is_empty());
    drop(c);
    broker.shutdown().await?;

    // The strays were removed from the store, not just skipped.
    let kv = KvStore::open(&kv_dir, KvConfig::default())?;
    let left: Vec<Vec<u8>> = kv
        .scan_prefix(b"b")
        .into_iter()
        .map(|(k, _)| k.to_vec())
        .collect();
    assert_eq!(left, [warren_broker::metadata::bindings::key("d", "k", 1)]);
    kv.close()?;
    Ok(())
}
