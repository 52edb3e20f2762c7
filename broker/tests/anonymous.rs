//! With no users every client has full access, so the broker keeps that to
//! loopback: on a non-loopback address it starts only once a user exists,
//! or with `allow_anonymous` set on purpose, and its last user cannot be
//! deleted. Binding 0.0.0.0 needs no network beyond loopback.

mod common;

use anyhow::Result;
use bytes::Bytes;
use common::{Raw, login};
use warren_broker::{Broker, BrokerConfig, Error};
use warren_protocol::ErrorCode;
use warren_protocol::api::auth::{CreateUserRequest, DeleteUserRequest};
use warren_protocol::scram::ScramCredential;

fn config(dir: &std::path::Path, listen: &str, http: &str) -> Result<BrokerConfig> {
    Ok(BrokerConfig {
        data_dir: dir.to_path_buf(),
        listen: listen.parse()?,
        http: http.parse()?,
        ..BrokerConfig::default()
    })
}

#[tokio::test]
async fn no_users_on_a_public_address_refuses_to_start_naming_both_ways_out() -> Result<()> {
    let dir = tempfile::tempdir()?;
    for (listen, http) in [("0.0.0.0:0", "127.0.0.1:0"), ("127.0.0.1:0", "[::]:0")] {
        let refused = Broker::start(config(dir.path(), listen, http)?).await;
        let Err(err) = refused else {
            panic!("{listen} / {http} with no users started");
        };
        assert!(matches!(err, Error::AnonymousNotLoopback { .. }), "{err}");
        let message = err.to_string();
        assert!(!message.contains('\n'), "one line: {message}");
        assert!(message.contains("warren user add"), "{message}");
        assert!(message.contains("--allow-anonymous"), "{message}");
    }
    // Refused before anything listened, and the data dir is not left locked.
    let broker = Broker::start(config(dir.path(), "127.0.0.1:0", "127.0.0.1:0")?).await?;
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn allow_anonymous_or_an_existing_user_lets_a_public_address_start() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = Broker::start(BrokerConfig {
        allow_anonymous: true,
        ..config(dir.path(), "0.0.0.0:0", "0.0.0.0:0")?
    })
    .await?;
    assert!(broker.local_addr().ip().is_unspecified());
    broker.shutdown().await?;

    // The documented way: start on loopback, create a superuser, restart.
    let broker = Broker::start(config(dir.path(), "127.0.0.1:0", "127.0.0.1:0")?).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    let credential = ScramCredential::generate("root-secret")?;
    c.call(&CreateUserRequest {
        name: "root".into(),
        superuser: true,
        salt: Bytes::from(credential.salt),
        iterations: credential.iterations,
        stored_key: credential.stored_key,
        server_key: credential.server_key,
    })
    .await?;
    drop(c);
    broker.shutdown().await?;
    let broker = Broker::start(config(dir.path(), "0.0.0.0:0", "0.0.0.0:0")?).await?;
    // And it stays closed: its last user cannot be deleted.
    let port = broker.local_addr().port();
    let mut c = Raw::connect(([127, 0, 0, 1], port).into()).await?;
    login(&mut c, "root", "root-secret").await?;
    let refused = c
        .try_call(&DeleteUserRequest {
            name: "root".into(),
        })
        .await?;
    assert_eq!(refused.err(), Some(ErrorCode::SUPERUSER_REQUIRED));
    drop(c);
    broker.shutdown().await?;
    Ok(())
}
