//! Users and permissions against the real broker over real sockets: the
//! matrix of every api key × (no auth, wrong password, authenticated without
//! permission, authenticated with permission), SCRAM, PLAIN refused without
//! TLS, anonymous access only while no user exists, the first user a
//! superuser, revocation on the next request, and users/ACLs across a
//! restart.
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;

use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use common::{Raw, batch, create_user, fetch, produce, start};
use warren_protocol::ErrorCode;
use warren_protocol::api::api_versions::ApiVersionsRequest;
use warren_protocol::api::auth::{
    AclEntry, AuthenticateRequest, CreateAclRequest, DeleteAclRequest, DeleteUserRequest,
    ListAclsRequest, ListUsersRequest, Permission,
};
use warren_protocol::api::bindings::{BindRequest, UnbindRequest};
use warren_protocol::api::fetch::FetchResponse;
use warren_protocol::api::groups::{
    CommitOffsetsRequest, CommitOffsetsResponse, CommitPartition, CommitTopic,
    DescribeGroupRequest, FetchOffsetsRequest, FetchOffsetsResponse, HeartbeatRequest,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, ListGroupsRequest, ListGroupsResponse,
    TopicPartitions,
};
use warren_protocol::api::list_offsets::{
    LATEST, ListOffsetsRequest, ListOffsetsResponse, ListOffsetsTopic,
};
use warren_protocol::api::metadata::{MetadataRequest, MetadataResponse};
use warren_protocol::api::produce::ProduceResponse;
use warren_protocol::api::share::{
    AckBatch, AckKind, ShareAckPartition, ShareAckRequest, ShareAckResponse, ShareFetchRequest,
    ShareFetchResponse,
};
use warren_protocol::api::topics::{
    CreateTopicRequest, DeleteTopicRequest, DescribeTopicRequest, ListTopicsRequest,
    ListTopicsResponse,
};
use warren_protocol::api::{self, ApiKey};
use warren_protocol::frame::ResponseFrame;
use warren_protocol::scram::ScramClient;

const ROOT_PW: &str = "root-secret";
const ALICE_PW: &str = "alice-secret";
const BOB_PW: &str = "bob-secret";

/// Logs in with SCRAM-SHA-256; `Ok(Err(code))` when the broker refuses.
async fn login(c: &mut Raw, user: &str, password: &str) -> Result<Result<(), ErrorCode>> {
    let client = ScramClient::new(user, password)?;
    let first = c
        .try_call(&AuthenticateRequest {
            mechanism: "SCRAM-SHA-256".into(),
            auth_bytes: Bytes::from(client.client_first()),
        })
        .await?;
    let first = match first {
        Ok(r) => r,
        Err(code) => return Ok(Err(code)),
    };
    let (fin, client_final) = client.handle_server_first(&first.auth_bytes)?;
    match c
        .try_call(&AuthenticateRequest {
            mechanism: "SCRAM-SHA-256".into(),
            auth_bytes: Bytes::from(client_final),
        })
        .await?
    {
        Ok(r) => {
            // The broker proves it holds the credential.
            fin.verify_server_final(&r.auth_bytes)?;
            Ok(Ok(()))
        }
        Err(code) => Ok(Err(code)),
    }
}

async fn connect_as(addr: std::net::SocketAddr, user: &str, password: &str) -> Result<Raw> {
    let mut c = Raw::connect(addr).await?;
    login(&mut c, user, password)
        .await?
        .map_err(|code| anyhow::anyhow!("login as {user} refused: {code:?}"))?;
    Ok(c)
}

fn acl(user: &str, resource: &str, permission: Permission) -> CreateAclRequest {
    CreateAclRequest {
        acl: AclEntry {
            user: user.into(),
            resource: resource.parse().unwrap(),
            permission,
        },
    }
}

/// State the "with permission" requests build on (JoinGroup's member id).
#[derive(Default)]
struct Ctx {
    member_id: String,
    generation: u32,
}

/// A request body for `key` that succeeds for a user with permission.
/// Exhaustive on purpose: a new api key does not compile until it is here.
fn request(key: ApiKey, ctx: &Ctx) -> Result<Bytes> {
    Ok(match key {
        ApiKey::ApiVersions => api::encode(&ApiVersionsRequest)?,
        ApiKey::Metadata => api::encode(&MetadataRequest {
            topics: vec!["t".into()],
        })?,
        ApiKey::CreateTopic => api::encode(&CreateTopicRequest {
            name: "t-created".into(),
            partitions: 1,
            configs: vec![],
        })?,
        ApiKey::DeleteTopic => api::encode(&DeleteTopicRequest {
            name: "t-doomed".into(),
        })?,
        ApiKey::DescribeTopic => api::encode(&DescribeTopicRequest { name: "t".into() })?,
        ApiKey::ListTopics => api::encode(&ListTopicsRequest)?,
        ApiKey::Produce => api::encode(&produce("t", 0, batch(&["v"])?, 1))?,
        ApiKey::Fetch => api::encode(&fetch("t", 0, 0))?,
        ApiKey::ListOffsets => api::encode(&ListOffsetsRequest {
            topics: vec![ListOffsetsTopic {
                topic: "t".into(),
                partitions: vec![(0, LATEST)],
            }],
        })?,
        ApiKey::JoinGroup => api::encode(&JoinGroupRequest {
            group: "g1".into(),
            member_id: String::new(),
            session_timeout_ms: 30_000,
            topics: vec!["t".into()],
        })?,
        ApiKey::Heartbeat => api::encode(&HeartbeatRequest {
            group: "g1".into(),
            member_id: ctx.member_id.clone(),
            generation: ctx.generation,
            owned: vec![],
        })?,
        ApiKey::LeaveGroup => api::encode(&LeaveGroupRequest {
            group: "g1".into(),
            member_id: ctx.member_id.clone(),
        })?,
        ApiKey::CommitOffsets => api::encode(&CommitOffsetsRequest {
            group: "g1".into(),
            member_id: String::new(),
            generation: 0,
            topics: vec![CommitTopic {
                topic: "t".into(),
                partitions: vec![CommitPartition {
                    partition: 0,
                    offset: 1,
                    metadata: None,
                }],
            }],
        })?,
        ApiKey::FetchOffsets => api::encode(&FetchOffsetsRequest {
            group: "g1".into(),
            member_id: String::new(),
            generation: 0,
            topics: vec![TopicPartitions {
                topic: "t".into(),
                partitions: vec![0],
            }],
        })?,
        ApiKey::Bind => api::encode(&BindRequest {
            topic: "t-direct".into(),
            key: "k".into(),
            partitions: vec![0],
        })?,
        ApiKey::Unbind => api::encode(&UnbindRequest {
            topic: "t-direct".into(),
            key: "k".into(),
            partitions: vec![0],
        })?,
        ApiKey::ShareFetch => api::encode(&ShareFetchRequest {
            group: "g-share".into(),
            member_id: "m1".into(),
            topic: "t".into(),
            max_records: 10,
            max_wait_ms: 0,
            partitions: vec![],
        })?,
        ApiKey::ShareAck => api::encode(&ShareAckRequest {
            group: "g-share".into(),
            member_id: "m1".into(),
            topic: "t".into(),
            partitions: vec![],
        })?,
        ApiKey::ListGroups => api::encode(&ListGroupsRequest)?,
        ApiKey::DescribeGroup => api::encode(&DescribeGroupRequest { group: "g0".into() })?,
        // The matrix runs a whole login for this row (see `row`).
        ApiKey::Authenticate => Bytes::new(),
        ApiKey::CreateUser => api::encode(&create_user("newcomer", "pw", false)?)?,
        ApiKey::DeleteUser => api::encode(&DeleteUserRequest {
            name: "newcomer".into(),
        })?,
        ApiKey::ListUsers => api::encode(&ListUsersRequest)?,
        ApiKey::CreateAcl => api::encode(&acl("alice", "topic:x", Permission::Read))?,
        ApiKey::DeleteAcl => api::encode(&DeleteAclRequest {
            acl: acl("alice", "topic:x", Permission::Read).acl,
        })?,
        ApiKey::ListAcls => api::encode(&ListAclsRequest { user: None })?,
    })
}

/// What an authenticated user without any ACL gets. `HIDDEN`: a listing
/// that succeeds but leaves the resource out.
fn denied_without_permission(key: ApiKey) -> &'static str {
    match key {
        ApiKey::ApiVersions => "NONE",
        ApiKey::Metadata
        | ApiKey::CreateTopic
        | ApiKey::DeleteTopic
        | ApiKey::DescribeTopic
        | ApiKey::Produce
        | ApiKey::Fetch
        | ApiKey::ListOffsets
        | ApiKey::Bind
        | ApiKey::Unbind => "TOPIC_AUTHORIZATION_FAILED",
        ApiKey::ListTopics | ApiKey::ListGroups => "HIDDEN",
        ApiKey::JoinGroup
        | ApiKey::Heartbeat
        | ApiKey::LeaveGroup
        | ApiKey::CommitOffsets
        | ApiKey::FetchOffsets
        | ApiKey::DescribeGroup
        | ApiKey::ShareFetch
        | ApiKey::ShareAck => "GROUP_AUTHORIZATION_FAILED",
        // Already authenticated: a second login is out of turn.
        ApiKey::Authenticate => "ILLEGAL_SASL_STATE",
        ApiKey::CreateUser
        | ApiKey::DeleteUser
        | ApiKey::ListUsers
        | ApiKey::CreateAcl
        | ApiKey::DeleteAcl
        | ApiKey::ListAcls => "CLUSTER_AUTHORIZATION_FAILED",
    }
}

/// The outcome of a response: the header's code, else the first entry's code
/// for apis with per-entry errors, or `HIDDEN` for a listing without the
/// resource the matrix looks for.
fn outcome(key: ApiKey, f: ResponseFrame, ctx: &mut Ctx) -> Result<String> {
    if f.header.error_code != 0 {
        return Ok(ErrorCode(f.header.error_code).name().to_string());
    }
    let first = |codes: Vec<ErrorCode>| -> Result<String> {
        Ok(codes.first().context("no entry")?.name().to_string())
    };
    match key {
        ApiKey::Metadata => {
            let r: MetadataResponse = api::decode(f.body)?;
            first(r.topics.iter().map(|t| t.error_code).collect())
        }
        ApiKey::Produce => {
            let r: ProduceResponse = api::decode(f.body)?;
            first(
                r.topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .map(|p| p.error_code)
                    .collect(),
            )
        }
        ApiKey::Fetch => {
            let r: FetchResponse = api::decode(f.body)?;
            first(
                r.topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .map(|p| p.error_code)
                    .collect(),
            )
        }
        ApiKey::ListOffsets => {
            let r: ListOffsetsResponse = api::decode(f.body)?;
            first(
                r.topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .map(|p| p.error_code)
                    .collect(),
            )
        }
        ApiKey::CommitOffsets => {
            let r: CommitOffsetsResponse = api::decode(f.body)?;
            first(
                r.topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .map(|p| p.1)
                    .collect(),
            )
        }
        ApiKey::FetchOffsets => {
            let r: FetchOffsetsResponse = api::decode(f.body)?;
            first(
                r.topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .map(|p| p.error_code)
                    .collect(),
            )
        }
        ApiKey::ListTopics => {
            let r: ListTopicsResponse = api::decode(f.body)?;
            Ok(if r.topics.iter().any(|t| t.name == "t") {
                "NONE"
            } else {
                "HIDDEN"
            }
            .into())
        }
        ApiKey::ListGroups => {
            let r: ListGroupsResponse = api::decode(f.body)?;
            Ok(if r.groups.iter().any(|g| g.group == "g0") {
                "NONE"
            } else {
                "HIDDEN"
            }
            .into())
        }
        ApiKey::JoinGroup => {
            let r: JoinGroupResponse = api::decode(f.body)?;
            ctx.member_id = r.member_id;
            ctx.generation = r.generation;
            Ok("NONE".into())
        }
        _ => Ok("NONE".into()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    NoAuth,
    WrongPassword,
    WithoutPermission,
    WithPermission,
}

/// One cell of the matrix on a fresh connection.
async fn row(addr: std::net::SocketAddr, key: ApiKey, who: Who, ctx: &mut Ctx) -> Result<String> {
    let mut c = Raw::connect(addr).await?;
    let login_result = match who {
        Who::NoAuth => None,
        Who::WrongPassword => Some(login(&mut c, "bob", "not-bobs-password").await?),
        Who::WithoutPermission => Some(login(&mut c, "alice", ALICE_PW).await?),
        Who::WithPermission => Some(login(&mut c, "bob", BOB_PW).await?),
    };
    if key == ApiKey::Authenticate {
        return Ok(match (who, login_result) {
            // Unauthenticated, Authenticate itself is always answered.
            (Who::NoAuth, _) => match login(&mut c, "bob", BOB_PW).await? {
                Ok(()) => "NONE".into(),
                Err(code) => code.name().into(),
            },
            (_, Some(Err(code))) => code.name().into(),
            (Who::WithoutPermission, _) => match login(&mut c, "alice", ALICE_PW).await? {
                Ok(()) => "NONE".into(),
                Err(code) => code.name().into(),
            },
            _ => "NONE".into(),
        });
    }
    match (who, login_result) {
        (Who::WrongPassword, Some(Err(ErrorCode::SASL_AUTHENTICATION_FAILED))) => {}
        (Who::WrongPassword, other) => bail!("wrong password gave {other:?}"),
        (_, Some(Err(code))) => bail!("login failed: {code:?}"),
        _ => {}
    }
    let id = c.send_frame(key as u16, 0, request(key, ctx)?).await?;
    let f = c.recv().await?;
    assert_eq!(f.header.correlation_id, id);
    outcome(key, f, ctx)
}

#[tokio::test]
async fn every_api_key_checks_authentication_and_permission() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let addr = broker.local_addr();
    {
        // Anonymous while no user exists: set the stage.
        let mut c = Raw::connect(addr).await?;
        for (name, configs) in [
            ("t", vec![]),
            ("t-doomed", vec![]),
            (
                "t-direct",
                vec![("routing".to_string(), "direct".to_string())],
            ),
        ] {
            c.call(&CreateTopicRequest {
                name: name.into(),
                partitions: 1,
                configs,
            })
            .await?;
        }
        c.call(&CommitOffsetsRequest {
            group: "g0".into(),
            member_id: String::new(),
            generation: 0,
            topics: vec![CommitTopic {
                topic: "t".into(),
                partitions: vec![CommitPartition {
                    partition: 0,
                    offset: 0,
                    metadata: None,
                }],
            }],
        })
        .await?;
        c.call(&create_user("root", ROOT_PW, true)?).await?;
        let mut root = connect_as(addr, "root", ROOT_PW).await?;
        root.call(&create_user("alice", ALICE_PW, false)?).await?;
        root.call(&create_user("bob", BOB_PW, false)?).await?;
        root.call(&acl("bob", "topic:t*", Permission::Admin))
            .await?;
        root.call(&acl("bob", "group:g*", Permission::Read)).await?;
        root.call(&acl("bob", "cluster", Permission::Admin)).await?;
    }
    let mut ctx = Ctx::default();
    let mut failures = Vec::new();
    let mut cells = 0;
    for who in [
        Who::NoAuth,
        Who::WrongPassword,
        Who::WithoutPermission,
        Who::WithPermission,
    ] {
        for (key, _, _) in ApiKey::SUPPORTED {
            let expected = match (who, key) {
                (Who::NoAuth, ApiKey::ApiVersions | ApiKey::Authenticate) => "NONE",
                (Who::WrongPassword, ApiKey::ApiVersions) => "NONE",
                (Who::WrongPassword, ApiKey::Authenticate) => "SASL_AUTHENTICATION_FAILED",
                (Who::NoAuth | Who::WrongPassword, _) => "AUTHENTICATION_REQUIRED",
                (Who::WithoutPermission, k) => denied_without_permission(*k),
                (Who::WithPermission, _) => "NONE",
            };
            let got = row(addr, *key, who, &mut ctx).await?;
            cells += 1;
            if got != expected {
                failures.push(format!(
                    "{who:?} × {}: expected {expected}, got {got}",
                    key.name()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(cells, 4 * ApiKey::SUPPORTED.len());
    // The "with permission" row really acted.
    let mut root = connect_as(addr, "root", ROOT_PW).await?;
    let topics: ListTopicsResponse = root.call(&ListTopicsRequest).await?;
    let names: Vec<&str> = topics.topics.iter().map(|t| t.name.as_str()).collect();
    assert!(
        names.contains(&"t-created") && !names.contains(&"t-doomed"),
        "{names:?}"
    );
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn write_does_not_imply_read_and_topics_are_checked_per_entry() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let addr = broker.local_addr();
    let mut c = Raw::connect(addr).await?;
    for name in ["t", "u"] {
        c.call(&CreateTopicRequest {
            name: name.into(),
            partitions: 1,
            configs: vec![],
        })
        .await?;
    }
    c.call(&create_user("root", ROOT_PW, true)?).await?;
    let mut root = connect_as(addr, "root", ROOT_PW).await?;
    root.call(&create_user("writer", "w", false)?).await?;
    root.call(&create_user("reader", "r", false)?).await?;
    root.call(&acl("writer", "topic:t", Permission::Write))
        .await?;
    root.call(&acl("reader", "topic:t", Permission::Read))
        .await?;
    root.call(&acl("reader", "group:g", Permission::Read))
        .await?;

    let mut w = connect_as(addr, "writer", "w").await?;
    // acks=-1: `t` is an fsync topic, so the record is visible to the reader's
    // max_wait=0 fetch below only once fsynced; acks=1 raced the background sync.
    let r = w.call(&produce("t", 0, batch(&["a"])?, -1)).await?;
    assert_eq!(r.topics[0].partitions[0].error_code, ErrorCode::NONE);
    let f = w.call(&fetch("t", 0, 0)).await?;
    assert_eq!(
        f.topics[0].partitions[0].error_code,
        ErrorCode::TOPIC_AUTHORIZATION_FAILED
    );

    let mut rd = connect_as(addr, "reader", "r").await?;
    let r = rd.call(&produce("t", 0, batch(&["a"])?, 1)).await?;
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        ErrorCode::TOPIC_AUTHORIZATION_FAILED
    );
    let f = rd.call(&fetch("t", 0, 0)).await?;
    assert_eq!(f.topics[0].partitions[0].error_code, ErrorCode::NONE);
    assert_eq!(
        common::values_of(f.topics[0].partitions[0].records.clone())?,
        ["a"]
    );
    // Readable group, one readable and one unreadable topic: per-partition errors.
    let commit = rd
        .call(&CommitOffsetsRequest {
            group: "g".into(),
            member_id: String::new(),
            generation: 0,
            topics: ["t", "u"]
                .iter()
                .map(|t| CommitTopic {
                    topic: (*t).into(),
                    partitions: vec![CommitPartition {
                        partition: 0,
                        offset: 1,
                        metadata: None,
                    }],
                })
                .collect(),
        })
        .await?;
    let codes: Vec<(String, ErrorCode)> = commit
        .topics
        .iter()
        .map(|t| (t.topic.clone(), t.partitions[0].1))
        .collect();
    assert_eq!(
        codes,
        vec![
            ("t".to_string(), ErrorCode::NONE),
            ("u".to_string(), ErrorCode::TOPIC_AUTHORIZATION_FAILED)
        ]
    );
    // Joining with an unreadable topic is refused as a whole.
    let join = rd
        .try_call(&JoinGroupRequest {
            group: "g".into(),
            member_id: String::new(),
            session_timeout_ms: 30_000,
            topics: vec!["t".into(), "u".into()],
        })
        .await?;
    assert_eq!(join.unwrap_err(), ErrorCode::TOPIC_AUTHORIZATION_FAILED);
    // Metadata of everything lists only what the user may read.
    let m: MetadataResponse = rd.call(&MetadataRequest { topics: vec![] }).await?;
    assert_eq!(
        m.topics.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        ["t"]
    );
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn anonymous_access_ends_with_the_first_user_who_must_be_a_superuser() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    c.call(&CreateTopicRequest {
        name: "t".into(),
        partitions: 1,
        configs: vec![],
    })
    .await?;
    assert_eq!(
        c.try_call(&create_user("bob", "b", false)?)
            .await?
            .unwrap_err(),
        ErrorCode::SUPERUSER_REQUIRED
    );
    // Still open: the refused user was not created.
    c.call(&ListTopicsRequest).await?;
    c.call(&create_user("root", ROOT_PW, true)?).await?;
    // The same connection, anonymous, is now refused; the connection stays open.
    assert_eq!(
        c.try_call(&ListTopicsRequest).await?.unwrap_err(),
        ErrorCode::AUTHENTICATION_REQUIRED
    );
    c.call(&ApiVersionsRequest).await?;
    login(&mut c, "root", ROOT_PW).await?.unwrap();
    c.call(&ListTopicsRequest).await?;
    // The last superuser cannot go while another user exists.
    c.call(&create_user("bob", "b", false)?).await?;
    assert_eq!(
        c.try_call(&DeleteUserRequest {
            name: "root".into()
        })
        .await?
        .unwrap_err(),
        ErrorCode::SUPERUSER_REQUIRED
    );
    assert_eq!(
        c.try_call(&create_user("bob", "b", false)?)
            .await?
            .unwrap_err(),
        ErrorCode::USER_ALREADY_EXISTS
    );
    assert_eq!(
        c.try_call(&DeleteUserRequest {
            name: "ghost".into()
        })
        .await?
        .unwrap_err(),
        ErrorCode::USER_NOT_FOUND
    );
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn plain_is_refused_without_tls_and_unknown_mechanisms_and_users_fail() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    c.call(&create_user("root", ROOT_PW, true)?).await?;
    let id = c
        .send(&AuthenticateRequest {
            mechanism: "PLAIN".into(),
            auth_bytes: Bytes::from(format!("\0root\0{ROOT_PW}")),
        })
        .await?;
    let f = c.recv().await?;
    assert_eq!(f.header.correlation_id, id);
    assert_eq!(
        ErrorCode(f.header.error_code),
        ErrorCode::SASL_AUTHENTICATION_FAILED
    );
    let message: api::ErrorBody = api::decode(f.body)?;
    assert!(message.message.contains("TLS"), "{}", message.message);
    assert_eq!(
        c.try_call(&AuthenticateRequest {
            mechanism: "GSSAPI".into(),
            auth_bytes: Bytes::new(),
        })
        .await?
        .unwrap_err(),
        ErrorCode::UNSUPPORTED_SASL_MECHANISM
    );
    // An unknown user fails like a wrong password, at the proof.
    assert_eq!(
        login(&mut c, "ghost", "x").await?.unwrap_err(),
        ErrorCode::SASL_AUTHENTICATION_FAILED
    );
    // Garbage as client-first, then a good login on the same connection.
    assert_eq!(
        c.try_call(&AuthenticateRequest {
            mechanism: "SCRAM-SHA-256".into(),
            auth_bytes: Bytes::from_static(b"\xff\x00garbage"),
        })
        .await?
        .unwrap_err(),
        ErrorCode::SASL_AUTHENTICATION_FAILED
    );
    login(&mut c, "root", ROOT_PW).await?.unwrap();
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_revoke_or_delete_takes_effect_on_the_next_request() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let addr = broker.local_addr();
    let mut c = Raw::connect(addr).await?;
    c.call(&CreateTopicRequest {
        name: "t".into(),
        partitions: 1,
        configs: vec![],
    })
    .await?;
    c.call(&create_user("root", ROOT_PW, true)?).await?;
    let mut root = connect_as(addr, "root", ROOT_PW).await?;
    root.call(&create_user("bob", BOB_PW, false)?).await?;
    let grant = acl("bob", "topic:t", Permission::Read);
    root.call(&grant).await?;
    let mut bob = connect_as(addr, "bob", BOB_PW).await?;
    bob.call(&DescribeTopicRequest { name: "t".into() }).await?;
    root.call(&DeleteAclRequest {
        acl: grant.acl.clone(),
    })
    .await?;
    assert_eq!(
        bob.try_call(&DescribeTopicRequest { name: "t".into() })
            .await?
            .unwrap_err(),
        ErrorCode::TOPIC_AUTHORIZATION_FAILED
    );
    root.call(&grant).await?;
    bob.call(&DescribeTopicRequest { name: "t".into() }).await?;
    root.call(&DeleteUserRequest { name: "bob".into() }).await?;
    assert_eq!(
        bob.try_call(&DescribeTopicRequest { name: "t".into() })
            .await?
            .unwrap_err(),
        ErrorCode::AUTHENTICATION_REQUIRED
    );
    // Its ACLs went with it.
    let acls = root.call(&ListAclsRequest { user: None }).await?;
    assert!(acls.acls.is_empty(), "{:?}", acls.acls);
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn users_and_acls_survive_a_restart() -> Result<()> {
    let dir = tempfile::tempdir()?;
    {
        let broker = start(dir.path()).await?;
        let addr = broker.local_addr();
        let mut c = Raw::connect(addr).await?;
        c.call(&create_user("root", ROOT_PW, true)?).await?;
        login(&mut c, "root", ROOT_PW).await?.unwrap();
        c.call(&create_user("bob", BOB_PW, false)?).await?;
        c.call(&acl("bob", "topic:orders.*", Permission::Write))
            .await?;
        broker.shutdown().await?;
    }
    let broker = start(dir.path()).await?;
    let addr = broker.local_addr();
    let mut anon = Raw::connect(addr).await?;
    assert_eq!(
        anon.try_call(&ListTopicsRequest).await?.unwrap_err(),
        ErrorCode::AUTHENTICATION_REQUIRED
    );
    assert_eq!(
        login(&mut anon, "bob", "wrong").await?.unwrap_err(),
        ErrorCode::SASL_AUTHENTICATION_FAILED
    );
    let mut root = connect_as(addr, "root", ROOT_PW).await?;
    let users = root.call(&ListUsersRequest).await?;
    assert_eq!(
        users
            .users
            .iter()
            .map(|u| (u.name.as_str(), u.superuser))
            .collect::<Vec<_>>(),
        [("bob", false), ("root", true)]
    );
    let acls = root
        .call(&ListAclsRequest {
            user: Some("bob".into()),
        })
        .await?;
    assert_eq!(acls.acls.len(), 1);
    assert_eq!(acls.acls[0].to_string(), "bob topic:orders.* write");
    connect_as(addr, "bob", BOB_PW).await?;
    broker.shutdown().await?;
    Ok(())
}

/// A user who may administer the cluster and `a.*` topics, and write only
/// there, plus the topic `victim` nobody but root writes. Returns root's and
/// mallory's connections.
async fn trespass_setup(addr: std::net::SocketAddr) -> Result<(Raw, Raw)> {
    let mut c = Raw::connect(addr).await?;
    common::create(&mut c, "victim", 1, "none").await?;
    c.call(&create_user("root", ROOT_PW, true)?).await?;
    let mut root = connect_as(addr, "root", ROOT_PW).await?;
    root.call(&create_user("mallory", "m", false)?).await?;
    for (resource, permission) in [
        ("cluster", Permission::Admin),
        ("topic:a.*", Permission::Admin),
        ("group:g*", Permission::Read),
    ] {
        root.call(&acl("mallory", resource, permission)).await?;
    }
    let mallory = connect_as(addr, "mallory", "m").await?;
    Ok((root, mallory))
}

/// Records in `victim` (its high watermark), as root sees them.
async fn victim_end(root: &mut Raw) -> Result<i64> {
    let r: ListOffsetsResponse = root
        .call(&ListOffsetsRequest {
            topics: vec![ListOffsetsTopic {
                topic: "victim".into(),
                partitions: vec![(0, LATEST)],
            }],
        })
        .await?;
    Ok(r.topics[0].partitions[0].offset)
}

fn create_topic(name: &str, configs: &[(&str, &str)]) -> CreateTopicRequest {
    CreateTopicRequest {
        name: name.into(),
        partitions: 1,
        configs: configs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

#[tokio::test]
async fn write_on_a_star_only_cannot_route_a_record_into_victim_through_an_alternate_topic()
-> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let addr = broker.local_addr();
    let (mut root, mut mallory) = trespass_setup(addr).await?;

    // Creating a topic that sends records to victim needs write on victim.
    for configs in [
        vec![("routing", "direct"), ("alternate.topic", "victim")],
        vec![("dead.letter.topic", "victim")],
    ] {
        let refused = mallory.try_call(&create_topic("a.t", &configs)).await?;
        assert_eq!(
            refused.err(),
            Some(ErrorCode::TOPIC_AUTHORIZATION_FAILED),
            "{configs:?}"
        );
    }
    // The HTTP API runs the same check (after admin on the name).
    let auth = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "mallory:m")
    );
    let http = broker.http_addr();
    for body in [
        serde_json::json!({"name": "a.h", "partitions": 1, "routing": "direct", "alternate_topic": "victim"}),
        serde_json::json!({"name": "a.h", "partitions": 1, "configs": {"dead.letter.topic": "victim"}}),
    ] {
        let r =
            common::http::call_as(http, "POST", "/api/topics", Some(&auth), Some(&body)).await?;
        assert_eq!(
            r.status,
            403,
            "{body}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.json()?["error"], "FORBIDDEN");
    }
    let allowed = serde_json::json!({"name": "a.h", "partitions": 1, "routing": "direct", "alternate_topic": "a.other"});
    let r = common::http::call_as(http, "POST", "/api/topics", Some(&auth), Some(&allowed)).await?;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));

    // Allowed at creation, revoked after: produce checks again.
    root.call(&acl("mallory", "topic:victim", Permission::Write))
        .await?;
    mallory
        .call(&create_topic(
            "a.route",
            &[("routing", "direct"), ("alternate.topic", "victim")],
        ))
        .await?;
    root.call(&DeleteAclRequest {
        acl: acl("mallory", "topic:victim", Permission::Write).acl,
    })
    .await?;
    let mut unroutable = produce("a.route", -1, batch(&["trespass"])?, -1);
    unroutable.topics[0].partitions[0].routing_key = Some("no.binding".into());
    let r: ProduceResponse = mallory.call(&unroutable).await?;
    let p = &r.topics[0].partitions[0];
    assert_eq!(p.error_code, ErrorCode::TOPIC_AUTHORIZATION_FAILED);
    let message = p.error_message.as_deref().unwrap_or_default();
    assert!(message.contains("alternate topic victim"), "{message}");
    assert_eq!(victim_end(&mut root).await?, 0);
    // Root may still use the alternate hop.
    let r: ProduceResponse = root.call(&unroutable).await?;
    let p = &r.topics[0].partitions[0];
    assert_eq!(p.error_code, ErrorCode::NONE);
    assert_eq!(p.alternate_topic.as_deref(), Some("victim"));
    assert_eq!(victim_end(&mut root).await?, 1);
    broker.shutdown().await?;
    Ok(())
}

/// On paused time (the lock and the dead-letter retry are tokio timers): the
/// clock jumps to each deadline once the broker is idle, so the second-long
/// lock and the 5 s retry cost no wall time.
#[tokio::test(start_paused = true)]
async fn write_on_a_star_only_cannot_dead_letter_into_victim_and_the_records_wait_for_a_grant()
-> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let addr = broker.local_addr();
    let (mut root, mut mallory) = trespass_setup(addr).await?;
    root.call(&acl("mallory", "topic:victim", Permission::Write))
        .await?;
    mallory
        .call(&create_topic(
            "a.share",
            &[
                ("dead.letter.topic", "victim"),
                ("max.delivery.attempts", "1"),
                ("share.lock.timeout.ms", "1000"),
            ],
        ))
        .await?;
    root.call(&DeleteAclRequest {
        acl: acl("mallory", "topic:victim", Permission::Write).acl,
    })
    .await?;
    let r: ProduceResponse = mallory
        .call(&produce("a.share", 0, batch(&["r0", "r1", "r2"])?, -1))
        .await?;
    assert_eq!(r.topics[0].partitions[0].error_code, ErrorCode::NONE);
    let share_fetch = |group: &str, max_records| ShareFetchRequest {
        group: group.into(),
        member_id: "m".into(),
        topic: "a.share".into(),
        max_records,
        max_wait_ms: 0,
        partitions: vec![0],
    };
    let ack = |group: &str, batches: &[(u64, AckKind)]| ShareAckRequest {
        group: group.into(),
        member_id: "m".into(),
        topic: "a.share".into(),
        partitions: vec![ShareAckPartition {
            partition: 0,
            batches: batches
                .iter()
                .map(|(offset, kind)| AckBatch {
                    first_offset: *offset,
                    last_offset: *offset,
                    kind: *kind,
                })
                .collect(),
        }],
    };
    let acquired = |r: &ShareFetchResponse| -> Vec<(u64, u64)> {
        r.partitions
            .iter()
            .flat_map(|p| &p.acquired)
            .map(|a| (a.first_offset, a.last_offset))
            .collect()
    };

    // The timer's path (no session): g1 acks offset 0 (mallory is its last
    // acknowledging user), then lets offset 1's lock expire at its one
    // allowed delivery.
    let r = mallory.call(&share_fetch("g1", 1)).await?;
    assert_eq!(acquired(&r), [(0, 0)]);
    let a: ShareAckResponse = mallory.call(&ack("g1", &[(0, AckKind::Accept)])).await?;
    assert_eq!(a.partitions, [(0, ErrorCode::NONE)]);
    let r = mallory.call(&share_fetch("g1", 1)).await?;
    assert_eq!(acquired(&r), [(1, 1)]);
    let expiring_since = tokio::time::Instant::now();

    // The session's path: g2 rejects offset 0 and releases offset 1 out of
    // attempts. The reject is recorded; the copies are refused.
    let r = mallory.call(&share_fetch("g2", 2)).await?;
    assert_eq!(acquired(&r), [(0, 1)]);
    let a: ShareAckResponse = mallory
        .call(&ack("g2", &[(0, AckKind::Reject), (1, AckKind::Release)]))
        .await?;
    assert_eq!(a.partitions, [(0, ErrorCode::NONE)]);
    assert_eq!(victim_end(&mut root).await?, 0, "rejected into victim");
    // Neither comes back to the group: they wait for the dead-letter topic.
    let r = mallory.call(&share_fetch("g2", 10)).await?;
    assert_eq!(acquired(&r), [(2, 2)]);
    let a: ShareAckResponse = mallory.call(&ack("g2", &[(2, AckKind::Accept)])).await?;
    assert_eq!(a.partitions, [(0, ErrorCode::NONE)]);

    // Past g1's lock (1 s) and the timer's refused attempt: still nothing.
    let wait = Duration::from_millis(2500).saturating_sub(expiring_since.elapsed());
    tokio::time::sleep(wait).await;
    assert_eq!(
        victim_end(&mut root).await?,
        0,
        "dead-lettered by the timer into victim"
    );

    // Nothing was lost: once mallory may write to victim, the retries (every
    // 5 s) copy all three.
    root.call(&acl("mallory", "topic:victim", Permission::Write))
        .await?;
    let mut end = 0;
    for _ in 0..300 {
        end = victim_end(&mut root).await?;
        if end >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(end, 3);
    let f: FetchResponse = root.call(&fetch("victim", 0, 0)).await?;
    let mut values = common::values_of(f.topics[0].partitions[0].records.clone())?;
    values.sort();
    assert_eq!(values, ["r0", "r1", "r1"]);
    broker.shutdown().await?;
    Ok(())
}

/// On paused time, like the test above: the 1 s lock costs no wall time.
#[tokio::test(start_paused = true)]
async fn a_consumer_that_never_acks_still_gets_its_poison_record_dead_lettered() -> Result<()> {
    // The timer dead-letters a record whose lock expired at its last allowed
    // delivery as the user who acquired it: before, only an ack named that
    // user, so a consumer that crashed on the record (the case dead-letter
    // topics exist for) left it waiting for ever once users existed.
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let addr = broker.local_addr();
    let (mut root, mut mallory) = trespass_setup(addr).await?;
    root.call(&acl("mallory", "topic:victim", Permission::Write))
        .await?;
    mallory
        .call(&create_topic(
            "a.poison",
            &[
                ("dead.letter.topic", "victim"),
                ("max.delivery.attempts", "1"),
                ("share.lock.timeout.ms", "1000"),
            ],
        ))
        .await?;
    let r: ProduceResponse = mallory
        .call(&produce("a.poison", 0, batch(&["poison"])?, -1))
        .await?;
    assert_eq!(r.topics[0].partitions[0].error_code, ErrorCode::NONE);
    let r: ShareFetchResponse = mallory
        .call(&ShareFetchRequest {
            group: "g1".into(),
            member_id: "m".into(),
            topic: "a.poison".into(),
            max_records: 1,
            max_wait_ms: 0,
            partitions: vec![0],
        })
        .await?;
    assert_eq!(r.partitions[0].acquired.len(), 1, "{r:?}");
    // The consumer dies: no ack. The lock expires after 1 s; the first
    // dead-letter attempt follows it, retries every 5 s.
    drop(mallory);
    let mut end = 0;
    for _ in 0..300 {
        end = victim_end(&mut root).await?;
        if end >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(end, 1, "the poison record reached the dead-letter topic");
    let f: FetchResponse = root.call(&fetch("victim", 0, 0)).await?;
    assert_eq!(
        common::values_of(f.topics[0].partitions[0].records.clone())?,
        ["poison"]
    );
    broker.shutdown().await?;
    Ok(())
}
