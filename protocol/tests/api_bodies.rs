//! Api bodies and the request codec against hostile input, Produce and Fetch
//! round trips, and docs/PROTOCOL.md checked against the real encoder (its hex
//! examples, api key table, error code table and partitioner example), so the
//! document cannot drift from the code.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::any::type_name;
use std::fmt::Debug;

use bytes::{BufMut, Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use tokio_util::codec::{Decoder, Encoder};
use warren_protocol::api::api_versions::{ApiVersionsRequest, ApiVersionsResponse};
use warren_protocol::api::auth::{
    AclEntry, AuthenticateRequest, AuthenticateResponse, CreateAclRequest, CreateUserRequest,
    DeleteAclRequest, DeleteUserRequest, ListAclsRequest, ListAclsResponse, ListUsersRequest,
    ListUsersResponse, Permission, Resource, ResourceType, UserListing,
};
use warren_protocol::api::bindings::{BindRequest, RoutingMode, UnbindRequest};
use warren_protocol::api::fetch::{
    FetchPartition, FetchPartitionResponse, FetchRequest, FetchResponse, FetchTopic,
    FetchTopicResponse,
};
use warren_protocol::api::groups::{
    CommitOffsetsRequest, CommitOffsetsResponse, CommitPartition, CommitTopic, CommittedOffset,
    CommittedTopic, DescribeGroupRequest, DescribeGroupResponse, FetchOffsetsRequest,
    FetchOffsetsResponse, GroupListing, GroupMember, HeartbeatRequest, HeartbeatResponse,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, ListGroupsRequest, ListGroupsResponse,
    PartitionErrors, PartitionLag, TopicLag, TopicPartitions,
};
use warren_protocol::api::list_offsets::{
    EARLIEST, LATEST, ListOffsetsPartitionResponse, ListOffsetsRequest, ListOffsetsResponse,
    ListOffsetsTopic, ListOffsetsTopicResponse,
};
use warren_protocol::api::metadata::{
    BrokerMetadata, MetadataRequest, MetadataResponse, PartitionMetadata, TopicMetadata,
};
use warren_protocol::api::produce::{
    ProduceCopy, ProducePartition, ProducePartitionResponse, ProduceRequest, ProduceResponse,
    ProduceTopic, ProduceTopicResponse, ROUTE_BY_KEY,
};
use warren_protocol::api::share::{
    AckBatch, AckKind, AcquiredRecords, ShareAckPartition, ShareAckRequest, ShareAckResponse,
    ShareFetchPartition, ShareFetchRequest, ShareFetchResponse,
};
use warren_protocol::api::topics::{
    BindingDescription, CreateTopicRequest, DeleteTopicRequest, DescribeTopicRequest,
    DescribeTopicResponse, EmptyResponse, ListTopicsRequest, ListTopicsResponse,
    PartitionDescription, TopicListing,
};
use warren_protocol::api::{self, ApiKey, Body, ErrorBody, Request};
use warren_protocol::frame::{
    DEFAULT_MAX_FRAME_BYTES, LENGTH_FIELD_BYTES, REQUEST_HEADER_BYTES, RequestCodec, RequestFrame,
    RequestHeader, ResponseCodec, ResponseFrame, ResponseHeader,
};
use warren_protocol::partitioner::murmur2;
use warren_protocol::{Error, ErrorCode, partition_for_key};

/// The document under test, read at compile time so a moved file fails the build.
const PROTOCOL_MD: &str = include_str!("../../docs/PROTOCOL.md");

// ---------------------------------------------------------------------------
// Decoding arbitrary bytes
// ---------------------------------------------------------------------------

/// Decodes `body` as `T`. Decoding may fail but must not panic, and whatever
/// decodes must encode back to exactly `body`: every layout is canonical (no
/// padding, no optional fields, trailing bytes refused), so a body that decodes
/// was understood byte for byte.
fn decode_is_total_and_canonical<T: Body + Debug>(body: &Bytes) -> Result<(), TestCaseError> {
    if let Ok(value) = api::decode::<T>(body.clone()) {
        let again = api::encode(&value)?;
        prop_assert_eq!(
            &again,
            body,
            "{} decoded {:?} but re-encodes differently",
            type_name::<T>(),
            value
        );
    }
    Ok(())
}

/// Runs [`decode_is_total_and_canonical`] for every body type of the protocol.
fn decode_as_every_body(body: &Bytes) -> Result<(), TestCaseError> {
    decode_is_total_and_canonical::<ApiVersionsRequest>(body)?;
    decode_is_total_and_canonical::<ApiVersionsResponse>(body)?;
    decode_is_total_and_canonical::<MetadataRequest>(body)?;
    decode_is_total_and_canonical::<MetadataResponse>(body)?;
    decode_is_total_and_canonical::<CreateTopicRequest>(body)?;
    decode_is_total_and_canonical::<DeleteTopicRequest>(body)?;
    decode_is_total_and_canonical::<DescribeTopicRequest>(body)?;
    decode_is_total_and_canonical::<DescribeTopicResponse>(body)?;
    decode_is_total_and_canonical::<ListTopicsRequest>(body)?;
    decode_is_total_and_canonical::<ListTopicsResponse>(body)?;
    decode_is_total_and_canonical::<EmptyResponse>(body)?;
    decode_is_total_and_canonical::<ProduceRequest>(body)?;
    decode_is_total_and_canonical::<ProduceResponse>(body)?;
    decode_is_total_and_canonical::<FetchRequest>(body)?;
    decode_is_total_and_canonical::<FetchResponse>(body)?;
    decode_is_total_and_canonical::<ListOffsetsRequest>(body)?;
    decode_is_total_and_canonical::<ListOffsetsResponse>(body)?;
    decode_is_total_and_canonical::<JoinGroupRequest>(body)?;
    decode_is_total_and_canonical::<JoinGroupResponse>(body)?;
    decode_is_total_and_canonical::<HeartbeatRequest>(body)?;
    decode_is_total_and_canonical::<HeartbeatResponse>(body)?;
    decode_is_total_and_canonical::<LeaveGroupRequest>(body)?;
    decode_is_total_and_canonical::<CommitOffsetsRequest>(body)?;
    decode_is_total_and_canonical::<CommitOffsetsResponse>(body)?;
    decode_is_total_and_canonical::<FetchOffsetsRequest>(body)?;
    decode_is_total_and_canonical::<FetchOffsetsResponse>(body)?;
    decode_is_total_and_canonical::<ListGroupsRequest>(body)?;
    decode_is_total_and_canonical::<ListGroupsResponse>(body)?;
    decode_is_total_and_canonical::<DescribeGroupRequest>(body)?;
    decode_is_total_and_canonical::<DescribeGroupResponse>(body)?;
    decode_is_total_and_canonical::<BindRequest>(body)?;
    decode_is_total_and_canonical::<UnbindRequest>(body)?;
    decode_is_total_and_canonical::<ShareFetchRequest>(body)?;
    decode_is_total_and_canonical::<ShareFetchResponse>(body)?;
    decode_is_total_and_canonical::<ShareAckRequest>(body)?;
    decode_is_total_and_canonical::<ShareAckResponse>(body)?;
    decode_is_total_and_canonical::<AuthenticateRequest>(body)?;
    decode_is_total_and_canonical::<AuthenticateResponse>(body)?;
    decode_is_total_and_canonical::<CreateUserRequest>(body)?;
    decode_is_total_and_canonical::<DeleteUserRequest>(body)?;
    decode_is_total_and_canonical::<ListUsersRequest>(body)?;
    decode_is_total_and_canonical::<ListUsersResponse>(body)?;
    decode_is_total_and_canonical::<CreateAclRequest>(body)?;
    decode_is_total_and_canonical::<DeleteAclRequest>(body)?;
    decode_is_total_and_canonical::<ListAclsRequest>(body)?;
    decode_is_total_and_canonical::<ListAclsResponse>(body)?;
    decode_is_total_and_canonical::<ErrorBody>(body)?;
    Ok(())
}

/// Bytes skewed towards `00` and `ff`, so that counts and lengths are often
/// small (and decoding gets past them) or null/huge (and must be refused).
fn wire_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        5 => Just(0u8),
        1 => Just(0xffu8),
        2 => 1u8..8,
        3 => any::<u8>(),
    ]
}

/// One valid encoding of every body type, with the fields that matter non-empty.
fn sample_bodies() -> Vec<Bytes> {
    let assignment = vec![TopicPartitions {
        topic: "orders".into(),
        partitions: vec![0, 3],
    }];
    let produce = ProduceRequest {
        acks: -1,
        timeout_ms: 30_000,
        topics: vec![ProduceTopic {
            topic: "orders".into(),
            partitions: vec![
                ProducePartition {
                    partition: 3,
                    routing_key: None,
                    records: Bytes::from_static(b"batch"),
                },
                ProducePartition {
                    partition: ROUTE_BY_KEY,
                    routing_key: Some("eu.paris".into()),
                    records: Bytes::from_static(b"more"),
                },
            ],
        }],
    };
    let fetch = FetchRequest {
        max_wait_ms: 500,
        min_bytes: 1,
        max_bytes: 1 << 20,
        topics: vec![FetchTopic {
            topic: "orders".into(),
            partitions: vec![FetchPartition {
                partition: 2,
                fetch_offset: 99,
                partition_max_bytes: 65536,
            }],
        }],
    };
    let bodies = [
        api::encode(&ApiVersionsResponse::supported()),
        api::encode(&MetadataRequest {
            topics: vec!["a".into(), "orders".into()],
        }),
        api::encode(&MetadataResponse {
            brokers: vec![BrokerMetadata {
                node_id: 0,
                host: "127.0.0.1".into(),
                port: 7171,
            }],
            topics: vec![TopicMetadata {
                error_code: ErrorCode::NONE,
                name: "orders".into(),
                routing: RoutingMode::Direct,
                partitions: vec![PartitionMetadata {
                    partition: 0,
                    leader: 0,
                }],
            }],
        }),
        api::encode(&CreateTopicRequest {
            name: "orders".into(),
            partitions: 3,
            configs: vec![("retention.ms".into(), "86400000".into())],
        }),
        api::encode(&DeleteTopicRequest {
            name: "orders".into(),
        }),
        api::encode(&DescribeTopicResponse {
            name: "orders".into(),
            configs: vec![("durability".into(), "fsync".into())],
            partitions: vec![PartitionDescription {
                partition: 0,
                log_start_offset: 1,
                log_end_offset: 9,
                high_watermark: 8,
                size_bytes: 4096,
                segments: 1,
            }],
            bindings: vec![BindingDescription {
                key: "orders.*.eu".into(),
                partitions: vec![0, 2],
            }],
        }),
        api::encode(&ListTopicsResponse {
            topics: vec![TopicListing {
                name: "orders".into(),
                partitions: 3,
            }],
        }),
        api::encode(&produce),
        api::encode(&ProduceResponse {
            topics: vec![ProduceTopicResponse {
                topic: "orders".into(),
                partitions: vec![
                    ProducePartitionResponse {
                        partition: 3,
                        error_code: ErrorCode::NONE,
                        base_offset: 42,
                        more: vec![ProduceCopy {
                            partition: 5,
                            base_offset: 7,
                        }],
                        alternate_topic: Some("unrouted".into()),
                        error_message: None,
                    },
                    ProducePartitionResponse {
                        error_message: Some("no binding of orders matches \"x\"".into()),
                        ..ProducePartitionResponse::new(-1, ErrorCode::UNROUTABLE, -1)
                    },
                ],
            }],
        }),
        api::encode(&fetch),
        api::encode(&FetchResponse {
            topics: vec![FetchTopicResponse {
                topic: "orders".into(),
                partitions: vec![FetchPartitionResponse {
                    partition: 2,
                    error_code: ErrorCode::NONE,
                    high_watermark: 120,
                    log_start_offset: 0,
                    records: Bytes::from_static(b"batches"),
                }],
            }],
        }),
        api::encode(&ListOffsetsRequest {
            topics: vec![ListOffsetsTopic {
                topic: "t".into(),
                partitions: vec![(0, LATEST), (1, EARLIEST)],
            }],
        }),
        api::encode(&ListOffsetsResponse {
            topics: vec![ListOffsetsTopicResponse {
                topic: "t".into(),
                partitions: vec![ListOffsetsPartitionResponse {
                    partition: 0,
                    error_code: ErrorCode::NONE,
                    offset: 42,
                    timestamp: -1,
                }],
            }],
        }),
        api::encode(&JoinGroupRequest {
            group: "billing".into(),
            member_id: String::new(),
            session_timeout_ms: 10_000,
            topics: vec!["orders".into()],
        }),
        api::encode(&JoinGroupResponse {
            member_id: "m-1".into(),
            generation: 1,
            heartbeat_interval_ms: 300,
            assignment: assignment.clone(),
        }),
        api::encode(&HeartbeatRequest {
            group: "billing".into(),
            member_id: "m-1".into(),
            generation: 1,
            owned: assignment.clone(),
        }),
        api::encode(&HeartbeatResponse {
            generation: 2,
            heartbeat_interval_ms: 300,
            assignment: assignment.clone(),
        }),
        api::encode(&LeaveGroupRequest {
            group: "billing".into(),
            member_id: "m-1".into(),
        }),
        api::encode(&CommitOffsetsRequest {
            group: "billing".into(),
            member_id: "m-1".into(),
            generation: 2,
            topics: vec![CommitTopic {
                topic: "orders".into(),
                partitions: vec![CommitPartition {
                    partition: 3,
                    offset: 42,
                    metadata: Some("host-a".into()),
                }],
            }],
        }),
        api::encode(&CommitOffsetsResponse {
            topics: vec![PartitionErrors {
                topic: "orders".into(),
                partitions: vec![(3, ErrorCode::STALE_GENERATION)],
            }],
        }),
        api::encode(&FetchOffsetsRequest {
            group: "billing".into(),
            member_id: "m-1".into(),
            generation: 2,
            topics: assignment.clone(),
        }),
        api::encode(&ListGroupsRequest),
        api::encode(&ListGroupsResponse {
            groups: vec![GroupListing {
                group: "billing".into(),
                members: 2,
            }],
        }),
        api::encode(&DescribeGroupRequest {
            group: "billing".into(),
        }),
        api::encode(&DescribeGroupResponse {
            group: "billing".into(),
            members: vec![GroupMember {
                member_id: "m-1".into(),
                generation: 2,
                session_timeout_ms: 10_000,
                topics: vec!["orders".into()],
                assignment,
            }],
            offsets: vec![TopicLag {
                topic: "orders".into(),
                partitions: vec![PartitionLag {
                    partition: 3,
                    committed: 40,
                    log_end_offset: 42,
                    lag: 2,
                    owner: "m-1".into(),
                }],
            }],
        }),
        api::encode(&FetchOffsetsResponse {
            topics: vec![CommittedTopic {
                topic: "orders".into(),
                partitions: vec![CommittedOffset {
                    partition: 3,
                    error_code: ErrorCode::NONE,
                    offset: 42,
                    metadata: None,
                }],
            }],
        }),
        api::encode(&BindRequest {
            topic: "orders".into(),
            key: "orders.#".into(),
            partitions: vec![1, 3],
        }),
        api::encode(&UnbindRequest {
            topic: "orders".into(),
            key: "eu".into(),
            partitions: vec![0],
        }),
        api::encode(&ErrorBody {
            message: "no such topic".into(),
        }),
        api::encode(&ShareFetchRequest {
            group: "billing".into(),
            member_id: "host-a".into(),
            topic: "orders".into(),
            max_records: 500,
            max_wait_ms: 1000,
            partitions: vec![0, 3],
        }),
        api::encode(&ShareFetchResponse {
            acquisition_lock_timeout_ms: 30_000,
            partitions: vec![ShareFetchPartition {
                partition: 3,
                error_code: ErrorCode::NONE,
                acquired: vec![AcquiredRecords {
                    first_offset: 7,
                    last_offset: 9,
                    delivery_count: 2,
                }],
                records: Bytes::from_static(b"batches"),
            }],
        }),
        api::encode(&ShareAckRequest {
            group: "billing".into(),
            member_id: "host-a".into(),
            topic: "orders".into(),
            partitions: vec![ShareAckPartition {
                partition: 3,
                batches: vec![AckBatch {
                    first_offset: 7,
                    last_offset: 9,
                    kind: AckKind::Release,
                }],
            }],
        }),
        api::encode(&ShareAckResponse {
            partitions: vec![(3, ErrorCode::INVALID_RECORD_STATE)],
        }),
        api::encode(&AuthenticateRequest {
            mechanism: "SCRAM-SHA-256".into(),
            auth_bytes: Bytes::from_static(b"n,,n=alice,r=abc"),
        }),
        api::encode(&AuthenticateResponse {
            auth_bytes: Bytes::from_static(b"r=abcdef,s=c2FsdA==,i=4096"),
        }),
        api::encode(&CreateUserRequest {
            name: "alice".into(),
            superuser: true,
            salt: Bytes::from_static(b"salt"),
            iterations: 4096,
            stored_key: [1; 32],
            server_key: [2; 32],
        }),
        api::encode(&DeleteUserRequest {
            name: "alice".into(),
        }),
        api::encode(&ListUsersResponse {
            users: vec![UserListing {
                name: "alice".into(),
                superuser: true,
            }],
        }),
        api::encode(&CreateAclRequest {
            acl: AclEntry {
                user: "bob".into(),
                resource: "topic:orders.*".parse().unwrap(),
                permission: Permission::Write,
            },
        }),
        api::encode(&ListAclsRequest {
            user: Some("bob".into()),
        }),
        api::encode(&ListAclsResponse {
            acls: vec![AclEntry {
                user: "bob".into(),
                resource: "group:billing".parse().unwrap(),
                permission: Permission::Admin,
            }],
        }),
    ];
    bodies.into_iter().map(Result::unwrap).collect()
}

// ---------------------------------------------------------------------------
// The request codec against any byte stream
// ---------------------------------------------------------------------------

/// How a whole byte stream should end according to frame.rs's rules.
#[derive(Debug, PartialEq, Eq)]
enum StreamEnd {
    /// Every byte was consumed by whole frames.
    Clean,
    /// Some bytes are buffered, waiting for the rest of a frame.
    NeedMore,
    /// A length prefix out of bounds: the connection must be closed.
    Refused,
}

/// A reference model of `RequestCodec` over the whole stream at once.
fn model_split(stream: &[u8], max_frame_bytes: usize) -> (Vec<RequestFrame>, StreamEnd) {
    let mut frames = Vec::new();
    let mut rest = stream;
    loop {
        if rest.is_empty() {
            return (frames, StreamEnd::Clean);
        }
        let Some((len, after)) = rest.split_first_chunk::<4>() else {
            return (frames, StreamEnd::NeedMore);
        };
        let len = u32::from_be_bytes(*len) as usize;
        if len > max_frame_bytes || len < REQUEST_HEADER_BYTES {
            return (frames, StreamEnd::Refused);
        }
        if after.len() < len {
            return (frames, StreamEnd::NeedMore);
        }
        let (frame, next) = after.split_at(len);
        let (header, body) = frame.split_at(REQUEST_HEADER_BYTES);
        frames.push(RequestFrame {
            header: RequestHeader {
                api_key: u16::from_be_bytes([header[0], header[1]]),
                api_version: u16::from_be_bytes([header[2], header[3]]),
                correlation_id: u32::from_be_bytes([header[4], header[5], header[6], header[7]]),
            },
            body: Bytes::copy_from_slice(body),
        });
        rest = next;
    }
}

/// A piece of a generated stream: mostly well-formed frames (some over the
/// limit), with garbage and bare length prefixes mixed in.
#[derive(Debug, Clone)]
enum Piece {
    Frame {
        api_key: u16,
        api_version: u16,
        correlation_id: u32,
        body: Vec<u8>,
    },
    Garbage(Vec<u8>),
    Length(u32),
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        6 => (0u16..18, 0u16..2, any::<u32>(), vec(any::<u8>(), 0..300)).prop_map(
            |(api_key, api_version, correlation_id, body)| Piece::Frame {
                api_key,
                api_version,
                correlation_id,
                body,
            }
        ),
        1 => vec(any::<u8>(), 0..16).prop_map(Piece::Garbage),
        1 => any::<u32>().prop_map(Piece::Length),
    ]
}

fn stream_of(pieces: &[Piece]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in pieces {
        match p {
            Piece::Frame {
                api_key,
                api_version,
                correlation_id,
                body,
            } => {
                out.extend_from_slice(&((REQUEST_HEADER_BYTES + body.len()) as u32).to_be_bytes());
                out.extend_from_slice(&api_key.to_be_bytes());
                out.extend_from_slice(&api_version.to_be_bytes());
                out.extend_from_slice(&correlation_id.to_be_bytes());
                out.extend_from_slice(body);
            }
            Piece::Garbage(g) => out.extend_from_slice(g),
            Piece::Length(n) => out.extend_from_slice(&n.to_be_bytes()),
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------

fn produce_request() -> impl Strategy<Value = ProduceRequest> {
    let partition = (
        prop_oneof![Just(ROUTE_BY_KEY), any::<i32>()],
        proptest::option::of(".{0,24}"),
        vec(any::<u8>(), 0..256),
    )
        .prop_map(|(partition, routing_key, records)| ProducePartition {
            partition,
            routing_key,
            records: Bytes::from(records),
        });
    let topic = (".{0,32}", vec(partition, 0..5))
        .prop_map(|(topic, partitions)| ProduceTopic { topic, partitions });
    (
        prop_oneof![Just(0i16), Just(1), Just(-1), any::<i16>()],
        any::<u32>(),
        vec(topic, 0..5),
    )
        .prop_map(|(acks, timeout_ms, topics)| ProduceRequest {
            acks,
            timeout_ms,
            topics,
        })
}

fn fetch_request() -> impl Strategy<Value = FetchRequest> {
    let partition = (any::<u32>(), any::<u64>(), any::<u32>()).prop_map(
        |(partition, fetch_offset, partition_max_bytes)| FetchPartition {
            partition,
            fetch_offset,
            partition_max_bytes,
        },
    );
    let topic = (".{0,32}", vec(partition, 0..6))
        .prop_map(|(topic, partitions)| FetchTopic { topic, partitions });
    (any::<u32>(), any::<u32>(), any::<u32>(), vec(topic, 0..5)).prop_map(
        |(max_wait_ms, min_bytes, max_bytes, topics)| FetchRequest {
            max_wait_ms,
            min_bytes,
            max_bytes,
            topics,
        },
    )
}

fn bind_request() -> impl Strategy<Value = BindRequest> {
    (".{0,32}", ".{0,64}", vec(any::<u32>(), 0..8)).prop_map(|(topic, key, partitions)| {
        BindRequest {
            topic,
            key,
            partitions,
        }
    })
}

fn acl_entry() -> impl Strategy<Value = AclEntry> {
    (
        ".{0,32}",
        prop::sample::select(ResourceType::ALL.to_vec()),
        ".{0,32}",
        prop::sample::select(Permission::ALL.to_vec()),
    )
        .prop_map(|(user, resource_type, pattern, permission)| AclEntry {
            user,
            resource: Resource {
                resource_type,
                pattern,
            },
            permission,
        })
}

fn create_user_request() -> impl Strategy<Value = CreateUserRequest> {
    (
        ".{0,32}",
        any::<bool>(),
        vec(any::<u8>(), 0..64),
        any::<u32>(),
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
    )
        .prop_map(
            |(name, superuser, salt, iterations, stored_key, server_key)| CreateUserRequest {
                name,
                superuser,
                salt: Bytes::from(salt),
                iterations,
                stored_key,
                server_key,
            },
        )
}

fn produce_response() -> impl Strategy<Value = ProduceResponse> {
    let copy = (any::<u32>(), any::<i64>()).prop_map(|(partition, base_offset)| ProduceCopy {
        partition,
        base_offset,
    });
    let entry = (
        any::<i32>(),
        any::<u16>(),
        any::<i64>(),
        vec(copy, 0..4),
        proptest::option::of(".{0,16}"),
        proptest::option::of(".{0,32}"),
    )
        .prop_map(
            |(partition, code, base_offset, more, alternate_topic, error_message)| {
                ProducePartitionResponse {
                    partition,
                    error_code: ErrorCode(code),
                    base_offset,
                    more,
                    alternate_topic,
                    error_message,
                }
            },
        );
    let topic = (".{0,32}", vec(entry, 0..5))
        .prop_map(|(topic, partitions)| ProduceTopicResponse { topic, partitions });
    vec(topic, 0..4).prop_map(|topics| ProduceResponse { topics })
}

fn describe_topic_response() -> impl Strategy<Value = DescribeTopicResponse> {
    let binding = (".{0,24}", vec(any::<u32>(), 0..5))
        .prop_map(|(key, partitions)| BindingDescription { key, partitions });
    (".{0,16}", vec(binding, 0..6)).prop_map(|(name, bindings)| DescribeTopicResponse {
        name,
        configs: vec![("routing".into(), "topic".into())],
        partitions: Vec::new(),
        bindings,
    })
}

/// Encodes and decodes a body, which must come back unchanged.
fn body_round_trip<T: Body + PartialEq + Debug>(value: &T) -> Result<(), TestCaseError> {
    let body = api::encode(value)?;
    prop_assert_eq!(&api::decode::<T>(body)?, value);
    Ok(())
}

fn share_fetch_request() -> impl Strategy<Value = ShareFetchRequest> {
    (
        ".{0,24}",
        ".{0,24}",
        ".{0,32}",
        any::<u32>(),
        any::<u32>(),
        vec(any::<u32>(), 0..8),
    )
        .prop_map(
            |(group, member_id, topic, max_records, max_wait_ms, partitions)| ShareFetchRequest {
                group,
                member_id,
                topic,
                max_records,
                max_wait_ms,
                partitions,
            },
        )
}

fn share_ack_request() -> impl Strategy<Value = ShareAckRequest> {
    let kind = prop_oneof![
        Just(AckKind::Accept),
        Just(AckKind::Release),
        Just(AckKind::Reject)
    ];
    let batch =
        (any::<u64>(), any::<u64>(), kind).prop_map(|(first_offset, last_offset, kind)| AckBatch {
            first_offset,
            last_offset,
            kind,
        });
    let partition = (any::<u32>(), vec(batch, 0..6))
        .prop_map(|(partition, batches)| ShareAckPartition { partition, batches });
    (".{0,24}", ".{0,24}", ".{0,32}", vec(partition, 0..5)).prop_map(
        |(group, member_id, topic, partitions)| ShareAckRequest {
            group,
            member_id,
            topic,
            partitions,
        },
    )
}

/// Sends `request` the way a client does (body encoder, then `ResponseCodec`),
/// receives it the way the broker does (`RequestCodec`, then [`api::decode`]),
/// and checks both the body and the whole frame survive unchanged.
fn round_trip_through_frames<R>(request: &R, correlation_id: u32) -> Result<(), TestCaseError>
where
    R: Request + PartialEq + Debug,
{
    let body = api::encode(request)?;
    prop_assert_eq!(&api::decode::<R>(body.clone())?, request);

    let sent = RequestFrame {
        header: RequestHeader {
            api_key: R::API_KEY as u16,
            api_version: R::VERSION,
            correlation_id,
        },
        body,
    };
    let mut wire = BytesMut::new();
    ResponseCodec::default().encode(sent.clone(), &mut wire)?;
    prop_assert_eq!(
        wire.len(),
        LENGTH_FIELD_BYTES + REQUEST_HEADER_BYTES + sent.body.len()
    );
    let received = RequestCodec::default().decode(&mut wire)?;
    prop_assert!(wire.is_empty());
    prop_assert_eq!(received.as_ref(), Some(&sent));
    let received = received.unwrap();
    prop_assert_eq!(ApiKey::try_from(received.header.api_key)?, R::API_KEY);
    prop_assert_eq!(&api::decode::<R>(received.body)?, request);
    Ok(())
}

proptest! {
    /// Any bytes decode as any body type without panicking; whatever decodes
    /// re-encodes to the same bytes.
    #[test]
    fn decoding_arbitrary_bytes_never_panics(
        body in prop_oneof![vec(wire_byte(), 0..256), vec(any::<u8>(), 0..256)],
    ) {
        decode_as_every_body(&Bytes::from(body))?;
    }

    /// Valid bodies with bytes overwritten, cut short or extended: deep in the
    /// layout, where purely random bytes rarely reach.
    #[test]
    fn decoding_mutated_bodies_never_panics(
        which in any::<prop::sample::Index>(),
        writes in vec((any::<prop::sample::Index>(), wire_byte()), 0..6),
        cut in proptest::option::of(any::<prop::sample::Index>()),
        extra in vec(wire_byte(), 0..8),
    ) {
        let samples = sample_bodies();
        let mut body = samples[which.index(samples.len())].to_vec();
        // The unmutated sample must decode as its own type and re-encode.
        decode_as_every_body(&Bytes::from(body.clone()))?;
        if !body.is_empty() {
            for (at, byte) in &writes {
                let i = at.index(body.len());
                body[i] = *byte;
            }
        }
        if let Some(cut) = cut {
            body.truncate(cut.index(body.len() + 1));
        }
        body.extend_from_slice(&extra);
        decode_as_every_body(&Bytes::from(body))?;
    }

    /// Any byte stream fed to `RequestCodec` in random-sized chunks: it never
    /// panics; each call yields a frame, asks for more bytes without consuming
    /// any, or refuses the stream; and it agrees, frame for frame, with a model
    /// that splits the whole stream at once.
    #[test]
    fn request_codec_survives_any_byte_stream_in_any_chunks(
        pieces in vec(piece(), 0..12),
        max_frame_bytes in prop_oneof![8usize..400, Just(DEFAULT_MAX_FRAME_BYTES)],
        chunks in vec(1usize..80, 1..40),
    ) {
        let stream = stream_of(&pieces);
        let (want_frames, want_end) = model_split(&stream, max_frame_bytes);

        let mut codec = RequestCodec::new(max_frame_bytes);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut refused = None;
        let mut rest = &stream[..];
        let mut sizes = chunks.iter().cycle();
        'feed: while !rest.is_empty() {
            let (chunk, next) = rest.split_at((*sizes.next().unwrap()).min(rest.len()));
            buf.put_slice(chunk);
            rest = next;
            loop {
                let before = buf.len();
                match codec.decode(&mut buf) {
                    Ok(Some(frame)) => {
                        prop_assert_eq!(
                            before - buf.len(),
                            LENGTH_FIELD_BYTES + REQUEST_HEADER_BYTES + frame.body.len()
                        );
                        got.push(frame);
                    }
                    Ok(None) => {
                        prop_assert_eq!(buf.len(), before, "waiting consumed bytes");
                        if let Some(len) = buf.first_chunk::<4>() {
                            // The length is known and acceptable: room for the
                            // whole frame was reserved once.
                            let total = LENGTH_FIELD_BYTES + u32::from_be_bytes(*len) as usize;
                            prop_assert!(buf.capacity() >= total);
                        }
                        break;
                    }
                    Err(e) => {
                        refused = Some(e);
                        break 'feed;
                    }
                }
            }
        }

        prop_assert_eq!(&got, &want_frames);
        match want_end {
            StreamEnd::Refused => prop_assert!(
                matches!(refused, Some(Error::FrameTooLarge { .. } | Error::FrameTooShort { .. })),
                "expected a refusal, got {:?}",
                refused
            ),
            StreamEnd::NeedMore => {
                prop_assert!(refused.is_none(), "{:?}", refused);
                prop_assert!(!buf.is_empty());
            }
            StreamEnd::Clean => {
                prop_assert!(refused.is_none(), "{:?}", refused);
                prop_assert!(buf.is_empty());
            }
        }
    }

    /// A length prefix above `max_frame_bytes` is refused as soon as its four
    /// bytes are buffered (not before: three bytes are just "need more"), and
    /// the codec reserves nothing for the frame it claims.
    #[test]
    fn an_oversize_length_prefix_is_refused_after_four_bytes_without_reserving(
        max_frame_bytes in prop_oneof![8usize..(1 << 20), Just(DEFAULT_MAX_FRAME_BYTES)],
        excess in 1u64..=u64::from(u32::MAX),
        trailing in vec(any::<u8>(), 0..32),
    ) {
        let len = (max_frame_bytes as u64 + excess).min(u64::from(u32::MAX));
        prop_assume!(len > max_frame_bytes as u64);
        let prefix = (len as u32).to_be_bytes();

        let mut codec = RequestCodec::new(max_frame_bytes);
        let mut buf = BytesMut::with_capacity(LENGTH_FIELD_BYTES);
        for byte in &prefix[..3] {
            buf.put_u8(*byte);
            prop_assert!(codec.decode(&mut buf)?.is_none());
            prop_assert_eq!(buf.capacity(), LENGTH_FIELD_BYTES);
        }
        buf.put_u8(prefix[3]);
        let refused = codec.decode(&mut buf);
        prop_assert!(
            matches!(refused, Err(Error::FrameTooLarge { len: l, max }) if l as u64 == len && max == max_frame_bytes),
            "{:?}",
            refused
        );
        prop_assert_eq!(buf.capacity(), LENGTH_FIELD_BYTES, "reserved memory for a refused frame");

        // Bytes after the prefix change nothing.
        let mut buf = BytesMut::from(&prefix[..]);
        buf.extend_from_slice(&trailing);
        let capacity = buf.capacity();
        let refused = codec.decode(&mut buf);
        prop_assert!(matches!(refused, Err(Error::FrameTooLarge { .. })), "{:?}", refused);
        prop_assert_eq!(buf.capacity(), capacity);
    }

    /// Random ProduceRequests survive body and frame encoding unchanged.
    #[test]
    fn produce_requests_round_trip(request in produce_request(), correlation_id in any::<u32>()) {
        round_trip_through_frames(&request, correlation_id)?;
    }

    /// Random FetchRequests survive body and frame encoding unchanged.
    #[test]
    fn fetch_requests_round_trip(request in fetch_request(), correlation_id in any::<u32>()) {
        round_trip_through_frames(&request, correlation_id)?;
    }

    /// Random Bind and Unbind requests (the same layout) survive body and frame
    /// encoding unchanged.
    #[test]
    fn bind_and_unbind_requests_round_trip(bind in bind_request(), correlation_id in any::<u32>()) {
        round_trip_through_frames(&bind, correlation_id)?;
        let unbind = UnbindRequest {
            topic: bind.topic.clone(),
            key: bind.key.clone(),
            partitions: bind.partitions.clone(),
        };
        round_trip_through_frames(&unbind, correlation_id)?;
        // Same layout, different api key.
        prop_assert_eq!(api::encode(&bind)?, api::encode(&unbind)?);
    }

    /// User and ACL management bodies, any field values, survive framing.
    #[test]
    fn user_and_acl_requests_round_trip(
        user in create_user_request(),
        acl in acl_entry(),
        acls in vec(acl_entry(), 0..6),
        auth_bytes in vec(any::<u8>(), 0..128),
        correlation_id in any::<u32>(),
    ) {
        round_trip_through_frames(&user, correlation_id)?;
        round_trip_through_frames(&CreateAclRequest { acl: acl.clone() }, correlation_id)?;
        round_trip_through_frames(&DeleteAclRequest { acl: acl.clone() }, correlation_id)?;
        round_trip_through_frames(&ListAclsRequest { user: Some(acl.user) }, correlation_id)?;
        round_trip_through_frames(
            &AuthenticateRequest { mechanism: "SCRAM-SHA-256".into(), auth_bytes: Bytes::from(auth_bytes) },
            correlation_id,
        )?;
        body_round_trip(&ListAclsResponse { acls })?;
    }

    /// Random Produce responses (copies, alternate topic, messages) and
    /// DescribeTopic bindings survive encoding unchanged.
    #[test]
    fn routing_responses_round_trip(
        produce in produce_response(),
        describe in describe_topic_response(),
    ) {
        body_round_trip(&produce)?;
        body_round_trip(&describe)?;
    }

    /// Random ShareFetchRequests survive body and frame encoding unchanged.
    #[test]
    fn share_fetch_requests_round_trip(
        request in share_fetch_request(),
        correlation_id in any::<u32>(),
    ) {
        round_trip_through_frames(&request, correlation_id)?;
    }

    /// Random ShareAckRequests survive body and frame encoding unchanged.
    #[test]
    fn share_ack_requests_round_trip(
        request in share_ack_request(),
        correlation_id in any::<u32>(),
    ) {
        round_trip_through_frames(&request, correlation_id)?;
    }
}

#[test]
fn the_default_codec_refuses_a_frame_just_over_16_mib_and_waits_for_one_at_it()
-> warren_protocol::Result<()> {
    assert_eq!(DEFAULT_MAX_FRAME_BYTES, 16 * 1024 * 1024);
    let mut codec = RequestCodec::default();
    let over = (DEFAULT_MAX_FRAME_BYTES as u32 + 1).to_be_bytes();
    let mut buf = BytesMut::from(&over[..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(Error::FrameTooLarge { .. })
    ));
    assert_eq!(buf.capacity(), LENGTH_FIELD_BYTES);
    let at = (DEFAULT_MAX_FRAME_BYTES as u32).to_be_bytes();
    let mut buf = BytesMut::from(&at[..]);
    assert_eq!(codec.decode(&mut buf)?, None);
    Ok(())
}

// ---------------------------------------------------------------------------
// docs/PROTOCOL.md against the code
// ---------------------------------------------------------------------------

/// The lines after `<!-- {marker} -->` (which must appear exactly once).
fn after_marker(marker: &str) -> std::str::Lines<'static> {
    let tag = format!("<!-- {marker} -->");
    let mut found = PROTOCOL_MD.match_indices(&tag);
    let (at, _) = found
        .next()
        .unwrap_or_else(|| panic!("docs/PROTOCOL.md has no {tag}"));
    assert!(found.next().is_none(), "{tag} appears twice");
    PROTOCOL_MD[at + tag.len()..].lines()
}

/// The bytes of the `text` block after `<!-- hex-example: {name} -->`: on each
/// line, the leading two-digit hex tokens; the annotation after them is skipped
/// (it must not start with a two-letter hex word such as `ab` or `be`).
fn hex_example(name: &str) -> Vec<u8> {
    let mut lines = after_marker(&format!("hex-example: {name}")).skip_while(|l| l.is_empty());
    assert_eq!(lines.next(), Some("```text"), "{name}: no text block");
    let mut bytes = Vec::new();
    for line in lines.take_while(|l| !l.starts_with("```")) {
        let before = bytes.len();
        for token in line.split_whitespace() {
            if token.len() != 2 {
                break;
            }
            let Ok(b) = u8::from_str_radix(token, 16) else {
                break;
            };
            bytes.push(b);
        }
        assert!(
            bytes.len() > before,
            "{name}: a line without bytes: {line:?}"
        );
    }
    bytes
}

/// The cells of the Markdown table after `<!-- {marker} -->`, header excluded.
fn table_rows(marker: &str) -> Vec<Vec<String>> {
    after_marker(marker)
        .skip_while(|l| l.is_empty())
        .take_while(|l| l.starts_with('|'))
        .skip(2) // header and separator
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().trim_matches('`').to_string())
                .collect()
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn request_frame<R: Request>(request: &R, correlation_id: u32) -> warren_protocol::Result<Vec<u8>> {
    let mut wire = BytesMut::new();
    ResponseCodec::default().encode(
        RequestFrame {
            header: RequestHeader {
                api_key: R::API_KEY as u16,
                api_version: R::VERSION,
                correlation_id,
            },
            body: api::encode(request)?,
        },
        &mut wire,
    )?;
    Ok(wire.to_vec())
}

fn response_frame<B: Body>(
    body: &B,
    correlation_id: u32,
    error_code: ErrorCode,
) -> warren_protocol::Result<Vec<u8>> {
    let mut wire = BytesMut::new();
    RequestCodec::default().encode(
        ResponseFrame {
            header: ResponseHeader {
                correlation_id,
                error_code: error_code.0,
            },
            body: api::encode(body)?,
        },
        &mut wire,
    )?;
    Ok(wire.to_vec())
}

#[test]
fn protocol_md_hex_examples_match_the_encoder() -> warren_protocol::Result<()> {
    let create_topic = CreateTopicRequest {
        name: "orders".into(),
        partitions: 3,
        configs: vec![("retention.ms".into(), "86400000".into())],
    };
    let examples = [
        (
            "api_versions_request",
            request_frame(&ApiVersionsRequest, 1)?,
        ),
        (
            "api_versions_response",
            response_frame(&ApiVersionsResponse::supported(), 1, ErrorCode::NONE)?,
        ),
        ("create_topic_request", request_frame(&create_topic, 2)?),
        (
            "create_topic_error_response",
            response_frame(
                &ErrorBody {
                    message: "topic orders already exists".into(),
                },
                2,
                ErrorCode::TOPIC_ALREADY_EXISTS,
            )?,
        ),
    ];
    for (name, want) in examples {
        let documented = hex_example(name);
        assert_eq!(
            hex(&documented),
            hex(&want),
            "docs/PROTOCOL.md example {name} differs from the encoder"
        );
        // And the documented bytes decode back to a frame of the right size.
        let len = u32::from_be_bytes(*documented.first_chunk::<4>().unwrap()) as usize;
        assert_eq!(len + LENGTH_FIELD_BYTES, documented.len(), "{name}");
    }
    // The documented frame decodes to the documented request.
    let mut wire = BytesMut::from(&hex_example("create_topic_request")[..]);
    let frame = RequestCodec::default().decode(&mut wire)?.unwrap();
    assert_eq!(api::decode::<CreateTopicRequest>(frame.body)?, create_topic);

    // The inline success response: `00 00 00 06 00 00 00 02 00 00`.
    let success = response_frame(&EmptyResponse, 2, ErrorCode::NONE)?;
    assert!(
        PROTOCOL_MD.contains(&format!("`{}`", hex(&success))),
        "docs/PROTOCOL.md lacks the CreateTopic success response {}",
        hex(&success)
    );
    Ok(())
}

#[test]
fn protocol_md_api_key_table_matches_supported() {
    let documented: Vec<(String, String, String, String)> = table_rows("api-key-table")
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[2].clone(), r[3].clone()))
        .collect();
    let supported: Vec<(String, String, String, String)> = ApiKey::SUPPORTED
        .iter()
        .map(|(key, min, max)| {
            (
                key.name().to_string(),
                (*key as u16).to_string(),
                min.to_string(),
                max.to_string(),
            )
        })
        .collect();
    assert_eq!(documented, supported);
}

#[test]
fn protocol_md_error_code_table_matches_error_codes() {
    let documented: Vec<(String, String, String)> = table_rows("error-code-table")
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[2].clone()))
        .collect();
    let known: Vec<(String, String, String)> = ErrorCode::ALL
        .iter()
        .map(|c| {
            let retriable = if c.is_retriable() { "yes" } else { "no" };
            (c.0.to_string(), c.name().to_string(), retriable.to_string())
        })
        .collect();
    assert_eq!(documented, known);
}

#[test]
fn protocol_md_partitioner_example_matches() {
    // The step-by-step trace for "foobar", recomputed here, against the
    // value after the last `=` on each line of the documented block.
    const M: u32 = 0x5bd1_e995;
    let mut steps = Vec::new();
    let mut h: u32 = 0x9747_b28c ^ 6;
    steps.push(h);
    let mut k = u32::from_le_bytes(*b"foob");
    steps.push(k);
    k = k.wrapping_mul(M);
    steps.push(k);
    k ^= k >> 24;
    steps.push(k);
    k = k.wrapping_mul(M);
    steps.push(k);
    h = h.wrapping_mul(M);
    steps.push(h);
    h ^= k;
    steps.push(h);
    h ^= u32::from(b'r') << 8;
    steps.push(h);
    h ^= u32::from(b'a');
    steps.push(h);
    h = h.wrapping_mul(M);
    steps.push(h);
    h ^= h >> 13;
    steps.push(h);
    h = h.wrapping_mul(M);
    steps.push(h);
    h ^= h >> 15;
    steps.push(h);
    assert_eq!(h as i32, murmur2(b"foobar"));
    assert_eq!(murmur2(b"foobar"), -790_332_482);

    let mut want: Vec<String> = steps.iter().map(|s| format!("{s:#010x}")).collect();
    let positive = (murmur2(b"foobar") as u32) & 0x7fff_ffff;
    want.push(murmur2(b"foobar").to_string());
    want.push(positive.to_string());
    want.push(partition_for_key(b"foobar", 10).to_string());
    want.push(partition_for_key(b"foobar", 4).to_string());

    let mut lines = after_marker("murmur2-trace").skip_while(|l| l.is_empty());
    assert_eq!(lines.next(), Some("```text"));
    let documented: Vec<String> = lines
        .take_while(|l| !l.starts_with("```"))
        .map(|l| l.rsplit('=').next().unwrap().trim().to_string())
        .collect();
    assert_eq!(documented, want);

    // Every `murmur2("...") = n` quoted in the document is right.
    let mut quoted = 0;
    for (at, _) in PROTOCOL_MD.match_indices("murmur2(\"") {
        let rest = &PROTOCOL_MD[at + "murmur2(\"".len()..];
        let (key, rest) = rest.split_once("\")").unwrap();
        let Some(value) = rest.strip_prefix(" = ") else {
            continue;
        };
        // Only decimal values (`= -790332482`), not the trace's `= 0xd0e47bbe`.
        let value: String = value
            .chars()
            .take_while(|c| *c == '-' || c.is_ascii_alphanumeric())
            .collect();
        let Ok(value) = value.parse::<i32>() else {
            continue;
        };
        assert_eq!(value, murmur2(key.as_bytes()), "murmur2({key:?})");
        quoted += 1;
    }
    assert!(quoted >= 3, "found {quoted} quoted murmur2 values");
}
