//! Authentication from the client's side against the real broker: every
//! connection (producer, consumer, a group consumer's two, reconnects after a
//! broker restart) authenticates first; auth failures are typed errors; the
//! Admin manages users and ACLs.

use std::time::Duration;

use warren_client::{
    AclEntry, Admin, ConnectionConfig, ConsumerConfig, Credentials, Error, ErrorCode, GroupConfig,
    GroupConsumer, Mechanism, Permission, Producer, ProducerConfig,
};

mod common;

use common::{TestBroker, TestResult, bounded};

fn as_user(mut connection: ConnectionConfig, user: &str, password: &str) -> ConnectionConfig {
    connection.credentials = Some(Credentials::new(user, password));
    connection
}

fn acl(
    user: &str,
    resource: &str,
    permission: Permission,
) -> Result<AclEntry, Box<dyn std::error::Error + Send + Sync>> {
    Ok(AclEntry {
        user: user.into(),
        resource: resource.parse()?,
        permission,
    })
}

/// A broker with a superuser `root` and a user `app` that may write and read
/// `orders` and read group `billing`.
async fn secured() -> Result<TestBroker, Box<dyn std::error::Error + Send + Sync>> {
    let broker = TestBroker::start().await?;
    let anonymous = broker.admin().await?;
    anonymous.create_topic("orders", 2, &[]).await?;
    anonymous.create_user("root", "root-pw", true).await?;
    let root = Admin::connect(as_user(broker.connection(), "root", "root-pw")).await?;
    root.create_user("app", "app-pw", false).await?;
    root.grant(acl("app", "topic:orders", Permission::Write)?)
        .await?;
    root.grant(acl("app", "topic:orders", Permission::Read)?)
        .await?;
    root.grant(acl("app", "group:billing", Permission::Read)?)
        .await?;
    Ok(broker)
}

#[tokio::test]
async fn auth_failures_are_typed_errors() -> TestResult {
    bounded(async {
        let broker = secured().await?;
        // No credentials: connecting works (ApiVersions), requests are refused.
        let anonymous = broker.admin().await?;
        let err = anonymous.list_topics().await.unwrap_err();
        assert!(
            matches!(err, Error::AuthenticationRequired { .. }),
            "{err:?}"
        );
        assert_eq!(err.code(), Some(ErrorCode::AUTHENTICATION_REQUIRED));
        // A wrong password fails the connect.
        let err = Admin::connect(as_user(broker.connection(), "app", "nope"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::AuthenticationFailed { ref user, .. } if user == "app"),
            "{err:?}"
        );
        assert!(!err.is_retriable());
        // PLAIN is refused on plaintext, and says why.
        let mut plain = as_user(broker.connection(), "app", "app-pw");
        if let Some(c) = plain.credentials.as_mut() {
            c.mechanism = Mechanism::Plain;
        }
        let err = Admin::connect(plain).await.unwrap_err();
        assert!(err.to_string().contains("TLS"), "{err}");
        // Authenticated without permission.
        let app = Admin::connect(as_user(broker.connection(), "app", "app-pw")).await?;
        let err = app.create_topic("other", 1, &[]).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::NotAuthorized {
                    code: ErrorCode::TOPIC_AUTHORIZATION_FAILED,
                    ..
                }
            ),
            "{err:?}"
        );
        let err = app.list_users().await.unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::CLUSTER_AUTHORIZATION_FAILED));
        // Listing shows only what app may read.
        let names: Vec<String> = app
            .list_topics()
            .await?
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(names, ["orders"]);
        // The password is not in the config's Debug output.
        let config = as_user(broker.connection(), "app", "app-pw");
        assert!(!format!("{config:?}").contains("app-pw"));
        Ok(())
    })
    .await
}

#[tokio::test]
async fn producer_group_consumer_and_reconnects_authenticate() -> TestResult {
    bounded(async {
        let mut broker = secured().await?;
        let connection = as_user(broker.connection(), "app", "app-pw");
        let producer = Producer::connect(ProducerConfig {
            connection: connection.clone(),
            ..broker.producer_config()
        })
        .await?;
        let d = producer.send("orders", Some(b"k"), b"one").await?;
        producer.flush().await?;
        d.await?;
        // The group consumer has two connections (fetch, membership); both log in.
        let mut consumer = GroupConsumer::join(
            ConsumerConfig {
                connection: connection.clone(),
                ..broker.consumer_config()
            },
            GroupConfig {
                session_timeout: Duration::from_millis(3_000),
                auto_commit: None,
                ..GroupConfig::new("billing", &["orders"])
            },
        )
        .await?;
        let mut got = Vec::new();
        for _ in 0..100 {
            got.extend(consumer.poll(Duration::from_millis(50)).await?);
            if !got.is_empty() {
                break;
            }
        }
        assert_eq!(got.len(), 1);
        consumer.commit().await?;
        consumer.close().await?;
        // A group app may not read is refused.
        let err = GroupConsumer::join(
            ConsumerConfig {
                connection: connection.clone(),
                ..broker.consumer_config()
            },
            GroupConfig::new("audit", &["orders"]),
        )
        .await
        .err()
        .ok_or("joining audit succeeded")?;
        assert_eq!(
            err.code(),
            Some(ErrorCode::GROUP_AUTHORIZATION_FAILED),
            "{err:?}"
        );
        // After a restart the producer's new connection logs in again.
        broker.restart().await?;
        let d = producer.send("orders", Some(b"k"), b"two").await?;
        producer.flush().await?;
        d.await?;
        producer.close().await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn admin_manages_users_and_acls() -> TestResult {
    bounded(async {
        let broker = secured().await?;
        let root = Admin::connect(as_user(broker.connection(), "root", "root-pw")).await?;
        let users: Vec<(String, bool)> = root
            .list_users()
            .await?
            .into_iter()
            .map(|u| (u.name, u.superuser))
            .collect();
        assert_eq!(
            users,
            [("app".to_string(), false), ("root".to_string(), true)]
        );
        let acls: Vec<String> = root
            .list_acls(Some("app"))
            .await?
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            acls,
            // Sorted by user, resource (topics, groups, cluster), permission.
            [
                "app topic:orders read",
                "app topic:orders write",
                "app group:billing read"
            ]
        );
        root.revoke(acl("app", "group:billing", Permission::Read)?)
            .await?;
        assert_eq!(root.list_acls(Some("app")).await?.len(), 2);
        let err = root.delete_user("root").await.unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::SUPERUSER_REQUIRED));
        root.delete_user("app").await?;
        let err = Admin::connect(as_user(broker.connection(), "app", "app-pw"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::AuthenticationFailed { .. }), "{err:?}");
        assert!(root.list_acls(None).await?.is_empty());
        Ok(())
    })
    .await
}
