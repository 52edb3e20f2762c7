//! Authenticate (SCRAM-SHA-256 in two round trips, PLAIN on TLS only) and the
//! user/ACL management apis (CreateUser, DeleteUser, ListUsers, CreateAcl,
//! DeleteAcl, ListAcls), which the access service
//! ([`crate::services::access`]) does, checking `admin` on `cluster`.
//!
//! Authenticate runs on the reader task, so a request pipelined right behind
//! a successful client-final is already checked as the new user. SCRAM costs
//! the server a few HMACs (no PBKDF2: it holds StoredKey); PLAIN costs one
//! PBKDF2 (milliseconds), accepted on the reader task since it happens once
//! per connection. Management changes are fsynced on a blocking thread.

use std::sync::Arc;

use bytes::Bytes;
use warren_protocol::ErrorCode;
use warren_protocol::api::auth::{
    AuthenticateRequest, AuthenticateResponse, CreateAclRequest, CreateUserRequest,
    DeleteAclRequest, DeleteUserRequest, ListAclsRequest, ListAclsResponse, ListUsersResponse,
    PLAIN,
};
use warren_protocol::scram::{self, ClientFirst, ScramCredential};

use super::Reply;
use super::response;
use crate::auth::{Auth, Grants, SaslState, Session};
use crate::state::Shared;

pub fn authenticate(
    cid: u32,
    req: AuthenticateRequest,
    shared: &Arc<Shared>,
    session: &mut Session,
) -> Reply {
    let fail = |code, message: String| Reply::Now(response::error(cid, code, message));
    if matches!(session.sasl, SaslState::Done) {
        return fail(
            ErrorCode::ILLEGAL_SASL_STATE,
            "this connection is already authenticated".into(),
        );
    }
    match req.mechanism.as_str() {
        scram::MECHANISM => match std::mem::take(&mut session.sasl) {
            SaslState::Idle => scram_first(cid, &req.auth_bytes, shared, session),
            SaslState::ScramFirstSent(server) => {
                let user = server.user().to_owned();
                match server.handle_client_final(&req.auth_bytes) {
                    Ok((user, server_final)) => {
                        session.authenticated(user);
                        Reply::Now(response::ok(
                            cid,
                            &AuthenticateResponse {
                                auth_bytes: Bytes::from(server_final),
                            },
                        ))
                    }
                    Err(e) => {
                        tracing::info!(user = %user, peer = %session.info.peer, error = %e, "SCRAM authentication failed");
                        fail(ErrorCode::SASL_AUTHENTICATION_FAILED, e.to_string())
                    }
                }
            }
            SaslState::Done => fail(
                ErrorCode::ILLEGAL_SASL_STATE,
                "this connection is already authenticated".into(),
            ),
        },
        PLAIN => match plain(&shared.auth, session, &req.auth_bytes) {
            Ok(()) => Reply::Now(response::ok(cid, &AuthenticateResponse::default())),
            Err((code, message)) => fail(code, message),
        },
        other => fail(
            ErrorCode::UNSUPPORTED_SASL_MECHANISM,
            format!(
                "unsupported SASL mechanism {other:?} (this broker offers SCRAM-SHA-256 and PLAIN over TLS)"
            ),
        ),
    }
}

/// SASL PLAIN: refused without TLS; otherwise checks the password against
/// the stored credential and authenticates the session.
///
/// # Errors
/// The code and message to answer with.
fn plain(auth: &Auth, session: &mut Session, msg: &[u8]) -> Result<(), (ErrorCode, String)> {
    if !matches!(session.sasl, SaslState::Idle) {
        session.sasl = SaslState::Idle;
        return Err((
            ErrorCode::ILLEGAL_SASL_STATE,
            "PLAIN sent in the middle of a SCRAM exchange".into(),
        ));
    }
    if !session.info.tls {
        return Err((
            ErrorCode::SASL_AUTHENTICATION_FAILED,
            "PLAIN is accepted only over TLS (the password would cross the network in clear); \
             use SCRAM-SHA-256"
                .into(),
        ));
    }
    match parse_plain(msg) {
        Some((user, password)) if auth.verify_password_cached(user, password) => {
            session.authenticated(user.to_owned());
            Ok(())
        }
        parsed => {
            tracing::info!(user = ?parsed.map(|(u, _)| u), peer = %session.info.peer, "PLAIN authentication failed");
            Err((
                ErrorCode::SASL_AUTHENTICATION_FAILED,
                "authentication failed: wrong user name or password".into(),
            ))
        }
    }
}

fn scram_first(cid: u32, msg: &[u8], shared: &Arc<Shared>, session: &mut Session) -> Reply {
    let started = ClientFirst::parse(msg).and_then(|first| {
        let credential = shared
            .auth
            .snapshot()
            .users
            .get(&first.user)
            .map(|u| u.credential.clone());
        first.server_first(credential, shared.auth.decoy_secret(), &scram::new_nonce()?)
    });
    match started {
        Ok((server, server_first)) => {
            session.sasl = SaslState::ScramFirstSent(Box::new(server));
            Reply::Now(response::ok(
                cid,
                &AuthenticateResponse {
                    auth_bytes: Bytes::from(server_first),
                },
            ))
        }
        Err(e) => Reply::Now(response::error(
            cid,
            ErrorCode::SASL_AUTHENTICATION_FAILED,
            e.to_string(),
        )),
    }
}

/// `authzid \0 user \0 password` (RFC 4616); the authzid must be empty or the
/// user.
fn parse_plain(raw: &[u8]) -> Option<(&str, &str)> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut parts = text.split('\0');
    let (authzid, user, password) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || user.is_empty() || !(authzid.is_empty() || authzid == user) {
        return None;
    }
    Some((user, password))
}

/// Answers a user/ACL change once it is done: an empty body, or its error.
fn change(cid: u32, change: crate::services::access::Change) -> Reply {
    match change {
        Ok(done) => Reply::later(async move { super::create_topic::answer(cid, done.await) }),
        Err(e) => Reply::Now(super::error::response(cid, &e)),
    }
}

/// CreateUser from a client at `peer` (the first user only from loopback).
pub fn create_user(
    cid: u32,
    req: CreateUserRequest,
    shared: &Arc<Shared>,
    grants: &Grants,
    peer: std::net::SocketAddr,
) -> Reply {
    let credential = ScramCredential {
        salt: req.salt.to_vec(),
        iterations: req.iterations,
        stored_key: req.stored_key,
        server_key: req.server_key,
    };
    let access = &shared.services.access;
    change(
        cid,
        access.create_user(grants, req.name, credential, req.superuser, peer.ip()),
    )
}

pub fn delete_user(
    cid: u32,
    req: DeleteUserRequest,
    shared: &Arc<Shared>,
    grants: &Grants,
) -> Reply {
    change(cid, shared.services.access.delete_user(grants, req.name))
}

pub fn list_users(cid: u32, shared: &Arc<Shared>, grants: &Grants) -> Reply {
    match shared.services.access.list_users(grants) {
        Ok(users) => Reply::Now(response::ok(cid, &ListUsersResponse { users })),
        Err(e) => Reply::Now(super::error::response(cid, &e)),
    }
}

pub fn create_acl(cid: u32, req: CreateAclRequest, shared: &Arc<Shared>, grants: &Grants) -> Reply {
    change(cid, shared.services.access.grant(grants, req.acl))
}

pub fn delete_acl(cid: u32, req: DeleteAclRequest, shared: &Arc<Shared>, grants: &Grants) -> Reply {
    change(cid, shared.services.access.revoke(grants, req.acl))
}

pub fn list_acls(cid: u32, req: ListAclsRequest, shared: &Arc<Shared>, grants: &Grants) -> Reply {
    match shared
        .services
        .access
        .list_acls(grants, req.user.as_deref())
    {
        Ok(acls) => Reply::Now(response::ok(cid, &ListAclsResponse { acls })),
        Err(e) => Reply::Now(super::error::response(cid, &e)),
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used)]
    use super::*;
    use crate::connections::Connections;

    /// The session decides by its connection's TLS flag (client/tests/tls.rs
    /// `plain_authentication_works_over_tls` runs it over a real TLS listener).
    #[test]
    fn plain_works_on_tls_and_is_refused_without() {
        let dir = tempfile::tempdir().unwrap();
        let kv = warren_storage::KvStore::open(dir.path(), Default::default()).unwrap();
        let auth = Auth::load(&kv);
        let credential = ScramCredential::derive("pw", b"0123456789abcdef", 4096).unwrap();
        auth.create_user(&kv, "root", credential, true).unwrap();
        let connections = Connections::default();
        let peer = ([127, 0, 0, 1], 1).into();
        let plaintext = connections.register(peer, false);
        let mut session = Session::new(Arc::clone(&plaintext.info));
        let (code, message) = plain(&auth, &mut session, b"\0root\0pw").unwrap_err();
        assert_eq!(code, ErrorCode::SASL_AUTHENTICATION_FAILED);
        assert!(message.contains("TLS"), "{message}");
        assert!(!session.grants(&auth).is_authenticated());

        let tls = connections.register(peer, true);
        let mut session = Session::new(Arc::clone(&tls.info));
        let (code, _) = plain(&auth, &mut session, b"\0root\0wrong").unwrap_err();
        assert_eq!(code, ErrorCode::SASL_AUTHENTICATION_FAILED);
        plain(&auth, &mut session, b"\0root\0pw").unwrap();
        assert!(session.grants(&auth).is_authenticated());
        assert_eq!(tls.info.user().as_deref(), Some("root"));
    }

    #[test]
    fn plain_messages_parse_strictly() {
        assert_eq!(parse_plain(b"\0alice\0pw"), Some(("alice", "pw")));
        assert_eq!(parse_plain(b"alice\0alice\0pw"), Some(("alice", "pw")));
        assert_eq!(parse_plain(b"bob\0alice\0pw"), None);
        assert_eq!(parse_plain(b"\0\0pw"), None);
        assert_eq!(parse_plain(b"\0alice"), None);
        assert_eq!(parse_plain(b"\0alice\0pw\0x"), None);
        assert_eq!(parse_plain(b"\0al\xffice\0pw"), None);
    }
}
