//! The HTTP auth layer against the real broker over real sockets: open while
//! no user exists; then 401 without (or with wrong) credentials, 403 without
//! the permission, and through to the route with it, by Basic and by a
//! bearer token from `POST /api/auth/token`; the probes stay exempt.
//!
//! The second test runs the real admin API routes behind the layer: what a
//! user with a permission gets is the route's own answer (201, 200, 204),
//! listings are filtered, and a missing permission is 403 before the route
//! runs.
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use base64::Engine;
use common::{Raw, create_user, login, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warren_protocol::api::auth::{AclEntry, Permission};
use warren_protocol::api::auth::{CreateAclRequest, DeleteUserRequest};

struct Reply {
    status: u16,
    head: String,
    body: String,
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`).
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> Result<Reply> {
    let mut s = TcpStream::connect(addr).await?;
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n{auth}\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw))
        .await
        .context("no HTTP response in 10 s")??;
    let text = String::from_utf8(raw)?;
    let (head, body) = text.split_once("\r\n\r\n").context("no header end")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .context("no status")?
        .parse()?;
    Ok(Reply {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_owned(),
    })
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn passed(r: &Reply) -> bool {
    r.status != 401 && r.status != 403
}

#[tokio::test]
async fn http_is_open_without_users_and_checked_with_them() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let addr = broker.http_addr();

    // No users: everything passes; no token is needed.
    assert!(passed(
        &http(addr, "GET", "/api/connections", None, "").await?
    ));
    assert!(passed(&http(addr, "GET", "/metrics", None, "").await?));
    let r = http(addr, "POST", "/api/auth/token", Some(&basic("x", "y")), "").await?;
    assert_eq!(r.status, 400);

    let mut c = Raw::connect(broker.local_addr()).await?;
    c.call(&create_user("root", "root-pw", true)?).await?;
    login(&mut c, "root", "root-pw").await?;
    c.call(&create_user("bob", "bob-pw", false)?).await?;
    c.call(&create_user("alice", "alice-pw", false)?).await?;
    c.call(&CreateAclRequest {
        acl: AclEntry {
            user: "bob".into(),
            resource: "topic:orders*".parse()?,
            permission: Permission::Admin,
        },
    })
    .await?;

    // The probes stay exempt.
    let r = http(addr, "GET", "/healthz", None, "").await?;
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
    assert!(passed(&http(addr, "GET", "/readyz", None, "").await?));
    assert!(passed(
        &http(addr, "GET", "/ui/index.html", None, "").await?
    ));

    // Unauthenticated and wrong passwords: 401 with the JSON error shape.
    for auth in [
        None,
        Some(basic("bob", "wrong")),
        Some(basic("ghost", "x")),
        Some("Bearer nope".into()),
        Some("Digest x".into()),
    ] {
        let r = http(addr, "GET", "/api/topics/orders", auth.as_deref(), "").await?;
        assert_eq!(r.status, 401, "{auth:?}");
        assert!(r.body.contains("\"error\":\"UNAUTHORIZED\""), "{}", r.body);
        assert!(
            r.head.contains("www-authenticate: bearer realm=\"warren\""),
            "{}",
            r.head
        );
    }

    // Basic: permission or not, per route.
    let bob = basic("bob", "bob-pw");
    let alice = basic("alice", "alice-pw");
    for (method, path, body) in [
        ("GET", "/api/topics/orders", ""),
        (
            "GET",
            "/api/topics/orders/partitions/0/messages?offset=0",
            "",
        ),
        ("DELETE", "/api/topics/orders.eu", ""),
        (
            "POST",
            "/api/topics/orders/bindings",
            "{\"key\":\"k\",\"partitions\":[0]}",
        ),
        (
            "POST",
            "/api/topics",
            "{\"name\":\"orders-new\",\"partitions\":1}",
        ),
        ("GET", "/api/overview", ""),
        ("GET", "/api/topics", ""),
    ] {
        let r = http(addr, method, path, Some(&bob), body).await?;
        assert!(passed(&r), "bob {method} {path}: {} {}", r.status, r.body);
    }
    for (method, path, body) in [
        ("GET", "/api/topics/payments", ""),
        (
            "POST",
            "/api/topics",
            "{\"name\":\"payments\",\"partitions\":1}",
        ),
        ("GET", "/api/groups/billing", ""),
        ("GET", "/api/connections", ""),
        ("GET", "/metrics", ""),
    ] {
        let r = http(addr, method, path, Some(&bob), body).await?;
        assert_eq!(r.status, 403, "bob {method} {path}: {}", r.body);
        assert!(r.body.contains("\"error\":\"FORBIDDEN\""), "{}", r.body);
    }
    let r = http(addr, "GET", "/api/topics/orders", Some(&alice), "").await?;
    assert_eq!(r.status, 403);
    let r = http(addr, "POST", "/api/topics", Some(&bob), "not json").await?;
    assert_eq!(r.status, 400);
    // The superuser passes everywhere.
    for path in [
        "/api/connections",
        "/metrics",
        "/api/groups/billing",
        "/api/anything",
    ] {
        let r = http(addr, "GET", path, Some(&basic("root", "root-pw")), "").await?;
        assert!(passed(&r), "root GET {path}: {}", r.status);
    }

    // Tokens: issued for Basic, accepted as Bearer, gone with the user.
    let r = http(
        addr,
        "POST",
        "/api/auth/token",
        Some(&basic("bob", "wrong")),
        "",
    )
    .await?;
    assert_eq!(r.status, 401);
    let r = http(addr, "POST", "/api/auth/token", Some(&bob), "").await?;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.head.contains("content-type: application/json"));
    let json: serde_json::Value = serde_json::from_str(&r.body)?;
    let token = json["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 43, "256 bits, base64url without padding");
    let expires = json["expires_at_ms"].as_u64().unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as u64;
    assert!(
        expires > now_ms + 3_500_000 && expires <= now_ms + 3_600_000 + 60_000,
        "{expires}"
    );
    let bearer = format!("Bearer {token}");
    assert!(passed(
        &http(addr, "GET", "/api/topics/orders", Some(&bearer), "").await?
    ));
    assert_eq!(
        http(addr, "GET", "/api/topics/payments", Some(&bearer), "")
            .await?
            .status,
        403
    );
    let r = http(addr, "POST", "/api/auth/token", Some(&bearer), "").await?;
    assert_eq!(r.status, 401, "a token does not buy a token");
    c.call(&DeleteUserRequest { name: "bob".into() }).await?;
    assert_eq!(
        http(addr, "GET", "/api/topics/orders", Some(&bearer), "")
            .await?
            .status,
        401
    );
    assert_eq!(
        http(addr, "GET", "/api/topics/orders", Some(&bob), "")
            .await?
            .status,
        401
    );
    broker.shutdown().await?;
    Ok(())
}

async fn json(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: &str,
    body: &str,
    status: u16,
) -> Result<serde_json::Value> {
    let r = http(addr, method, path, Some(auth), body).await?;
    anyhow::ensure!(
        r.status == status,
        "{method} {path}: {} {}",
        r.status,
        r.body
    );
    Ok(if r.body.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&r.body)?
    })
}

fn names(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn the_admin_api_routes_answer_only_what_the_user_may_do() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let addr = broker.http_addr();
    let mut c = Raw::connect(broker.local_addr()).await?;
    c.call(&create_user("root", "root-pw", true)?).await?;
    login(&mut c, "root", "root-pw").await?;
    c.call(&create_user("bob", "bob-pw", false)?).await?;
    for (resource, permission) in [
        ("topic:orders*", Permission::Admin),
        ("group:billing", Permission::Read),
    ] {
        c.call(&CreateAclRequest {
            acl: AclEntry {
                user: "bob".into(),
                resource: resource.parse()?,
                permission,
            },
        })
        .await?;
    }
    let root = basic("root", "root-pw");
    let bob = basic("bob", "bob-pw");
    json(
        addr,
        "POST",
        "/api/topics",
        &root,
        r#"{"name":"payments","partitions":1}"#,
        201,
    )
    .await?;
    json(
        addr,
        "POST",
        "/api/topics",
        &bob,
        r#"{"name":"orders","partitions":2}"#,
        201,
    )
    .await?;
    let denied = json(
        addr,
        "POST",
        "/api/topics",
        &bob,
        r#"{"name":"ledger","partitions":1}"#,
        403,
    )
    .await?;
    assert_eq!(denied["error"], "FORBIDDEN");
    // Listings: bob sees his topics only, root everything.
    assert_eq!(
        names(&json(addr, "GET", "/api/topics", &bob, "", 200).await?),
        ["orders"]
    );
    assert_eq!(
        names(&json(addr, "GET", "/api/topics", &root, "", 200).await?),
        ["orders", "payments"]
    );
    // Per-topic routes.
    let detail = json(addr, "GET", "/api/topics/orders", &bob, "", 200).await?;
    assert_eq!(detail["partitions"], 2);
    json(addr, "GET", "/api/topics/orders/partitions", &bob, "", 200).await?;
    json(
        addr,
        "GET",
        "/api/topics/orders/partitions/0/messages?offset=0&limit=5",
        &bob,
        "",
        200,
    )
    .await?;
    json(addr, "GET", "/api/topics/payments", &bob, "", 403).await?;
    json(
        addr,
        "GET",
        "/api/topics/payments/partitions/0/messages",
        &bob,
        "",
        403,
    )
    .await?;
    json(addr, "DELETE", "/api/topics/payments", &bob, "", 403).await?;
    // Groups: committed offsets make them exist.
    for group in ["billing", "audit"] {
        c.call(&warren_protocol::api::groups::CommitOffsetsRequest {
            group: group.into(),
            member_id: String::new(),
            generation: 0,
            topics: vec![warren_protocol::api::groups::CommitTopic {
                topic: "orders".into(),
                partitions: vec![warren_protocol::api::groups::CommitPartition {
                    partition: 0,
                    offset: 0,
                    metadata: None,
                }],
            }],
        })
        .await?;
    }
    assert_eq!(
        names(&json(addr, "GET", "/api/groups", &bob, "", 200).await?),
        ["billing"]
    );
    assert_eq!(
        names(&json(addr, "GET", "/api/groups", &root, "", 200).await?),
        ["audit", "billing"]
    );
    json(addr, "GET", "/api/groups/billing", &bob, "", 200).await?;
    json(addr, "GET", "/api/groups/audit", &bob, "", 403).await?;
    // Cluster-wide routes.
    json(addr, "GET", "/api/overview", &bob, "", 200).await?;
    json(addr, "GET", "/api/openapi.json", &bob, "", 200).await?;
    json(addr, "GET", "/api/connections", &bob, "", 403).await?;
    let connections = json(addr, "GET", "/api/connections", &root, "", 200).await?;
    let users: Vec<&str> = connections
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["user"].as_str())
        .collect();
    assert_eq!(
        users,
        ["root"],
        "the native connection shows its authenticated user"
    );
    assert_eq!(http(addr, "GET", "/readyz", None, "").await?.status, 200);
    // A token works on the real routes too, and bob's admin deletes his topic.
    let token = json(addr, "POST", "/api/auth/token", &bob, "", 200).await?;
    let bearer = format!("Bearer {}", token["token"].as_str().unwrap());
    json(addr, "DELETE", "/api/topics/orders", &bearer, "", 204).await?;
    assert!(names(&json(addr, "GET", "/api/topics", &bearer, "", 200).await?).is_empty());
    broker.shutdown().await?;
    Ok(())
}
