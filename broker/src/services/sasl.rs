//! Authentication, for every front-end: the SASL exchange of one
//! connection, SCRAM-SHA-256 in two round trips (RFC 5802/7677), PLAIN
//! (RFC 4616) on TLS only. A front-end carries the mechanism name and the
//! opaque messages in its own frames (the native Authenticate, Kafka's
//! SaslHandshake/SaslAuthenticate) and keeps the connection's [`Session`].
//!
//! A step runs on the connection's reader task, so a request pipelined
//! right behind a successful final message is already checked as the new
//! user. SCRAM costs the server a few HMACs (no PBKDF2: it holds the
//! StoredKey); PLAIN costs one PBKDF2 (milliseconds, cached per password),
//! accepted on the reader task since it happens once per connection.
//!
//! An unknown user still gets a server-first message (from a decoy secret,
//! [`Auth::decoy_secret`]) so the exchange does not tell which users exist.

use std::sync::Arc;

use warren_protocol::scram::{self, ClientFirst};

use super::{ErrorKind, ServiceError, ServiceResult};
use crate::auth::{Auth, SaslState, Session};

/// The SCRAM-SHA-256 mechanism's name.
pub const SCRAM_SHA_256: &str = scram::MECHANISM;
/// The PLAIN mechanism's name.
pub const PLAIN: &str = "PLAIN";

/// The authentication service; see the module docs.
#[derive(Clone)]
pub struct Sasl {
    auth: Arc<Auth>,
}

impl Sasl {
    /// The service over `auth`'s users.
    pub fn new(auth: Arc<Auth>) -> Sasl {
        Sasl { auth }
    }

    /// The mechanisms a connection may use: SCRAM-SHA-256 always, PLAIN
    /// only over TLS.
    pub fn mechanisms(tls: bool) -> &'static [&'static str] {
        if tls {
            &[SCRAM_SHA_256, PLAIN]
        } else {
            &[SCRAM_SHA_256]
        }
    }

    /// One step of `session`'s exchange: the client's `message` for
    /// `mechanism` in, the server's answer out (SCRAM's server-first, then
    /// server-final; nothing for PLAIN). The session is authenticated once
    /// the last step succeeds.
    ///
    /// # Errors
    /// `IllegalSaslState` for a message out of turn (the session is
    /// already authenticated, or PLAIN in the middle of SCRAM);
    /// `SaslAuthenticationFailed` for a wrong password, an unknown user, a
    /// malformed message or PLAIN without TLS (the exchange starts over);
    /// `UnsupportedSaslMechanism`.
    pub fn step(
        &self,
        session: &mut Session,
        mechanism: &str,
        message: &[u8],
    ) -> ServiceResult<Vec<u8>> {
        if matches!(session.sasl, SaslState::Done) {
            return Err(already_authenticated());
        }
        match mechanism {
            SCRAM_SHA_256 => match std::mem::take(&mut session.sasl) {
                SaslState::Idle => self.scram_first(session, message),
                SaslState::ScramFirstSent(server) => {
                    let user = server.user().to_owned();
                    match server.handle_client_final(message) {
                        Ok((user, server_final)) => {
                            session.authenticated(user);
                            Ok(server_final.into_bytes())
                        }
                        Err(e) => {
                            tracing::info!(user = %user, peer = %session.info.peer, error = %e, "SCRAM authentication failed");
                            Err(failed(e.to_string()))
                        }
                    }
                }
                SaslState::Done => Err(already_authenticated()),
            },
            PLAIN => self.plain(session, message).map(|()| Vec::new()),
            other => Err(ServiceError::new(
                ErrorKind::UnsupportedSaslMechanism,
                format!(
                    "unsupported SASL mechanism {other:?} (this broker offers SCRAM-SHA-256 and PLAIN over TLS)"
                ),
            )),
        }
    }

    fn scram_first(&self, session: &mut Session, message: &[u8]) -> ServiceResult<Vec<u8>> {
        let started = ClientFirst::parse(message).and_then(|first| {
            let credential = self
                .auth
                .snapshot()
                .users
                .get(&first.user)
                .map(|u| u.credential.clone());
            first.server_first(credential, self.auth.decoy_secret(), &scram::new_nonce()?)
        });
        match started {
            Ok((server, server_first)) => {
                session.sasl = SaslState::ScramFirstSent(Box::new(server));
                Ok(server_first.into_bytes())
            }
            Err(e) => Err(failed(e.to_string())),
        }
    }

    /// SASL PLAIN: refused without TLS; otherwise checks the password
    /// against the stored credential and authenticates the session.
    fn plain(&self, session: &mut Session, message: &[u8]) -> ServiceResult<()> {
        if !matches!(session.sasl, SaslState::Idle) {
            session.sasl = SaslState::Idle;
            return Err(ServiceError::new(
                ErrorKind::IllegalSaslState,
                "PLAIN sent in the middle of a SCRAM exchange",
            ));
        }
        if !session.info.tls {
            return Err(failed(
                "PLAIN is accepted only over TLS (the password would cross the network in clear); \
                 use SCRAM-SHA-256"
                    .into(),
            ));
        }
        match parse_plain(message) {
            Some((user, password)) if self.auth.verify_password_cached(user, password) => {
                session.authenticated(user.to_owned());
                Ok(())
            }
            parsed => {
                tracing::info!(user = ?parsed.map(|(u, _)| u), peer = %session.info.peer, "PLAIN authentication failed");
                Err(failed(
                    "authentication failed: wrong user name or password".into(),
                ))
            }
        }
    }
}

fn already_authenticated() -> ServiceError {
    ServiceError::new(
        ErrorKind::IllegalSaslState,
        "this connection is already authenticated",
    )
}

fn failed(message: String) -> ServiceError {
    ServiceError::new(ErrorKind::SaslAuthenticationFailed, message)
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

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used)]
    use warren_protocol::scram::ScramCredential;

    use super::*;
    use crate::connections::Connections;

    /// The session decides by its connection's TLS flag (client/tests/tls.rs
    /// `plain_authentication_works_over_tls` runs it over a real TLS listener).
    #[test]
    fn plain_works_on_tls_and_is_refused_without() {
        let dir = tempfile::tempdir().unwrap();
        let kv = warren_storage::KvStore::open(dir.path(), Default::default()).unwrap();
        let auth = Arc::new(Auth::load(&kv));
        let credential = ScramCredential::derive("pw", b"0123456789abcdef", 4096).unwrap();
        auth.create_user(&kv, "root", credential, true).unwrap();
        let sasl = Sasl::new(Arc::clone(&auth));
        let connections = Connections::default();
        let peer = ([127, 0, 0, 1], 1).into();
        let plaintext = connections.register(peer, false);
        let mut session = Session::new(Arc::clone(&plaintext.info));
        let e = sasl.step(&mut session, PLAIN, b"\0root\0pw").unwrap_err();
        assert_eq!(e.kind, ErrorKind::SaslAuthenticationFailed);
        assert!(e.message().contains("TLS"), "{e}");
        assert!(!session.grants(&auth).is_authenticated());

        let tls = connections.register(peer, true);
        let mut session = Session::new(Arc::clone(&tls.info));
        let e = sasl
            .step(&mut session, PLAIN, b"\0root\0wrong")
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::SaslAuthenticationFailed);
        assert_eq!(sasl.step(&mut session, PLAIN, b"\0root\0pw").unwrap(), b"");
        assert!(session.grants(&auth).is_authenticated());
        assert_eq!(tls.info.user().as_deref(), Some("root"));
        let e = sasl.step(&mut session, PLAIN, b"\0root\0pw").unwrap_err();
        assert_eq!(e.kind, ErrorKind::IllegalSaslState);
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

    #[test]
    fn plain_is_offered_only_over_tls() {
        assert_eq!(Sasl::mechanisms(false), [SCRAM_SHA_256]);
        assert_eq!(Sasl::mechanisms(true), [SCRAM_SHA_256, PLAIN]);
    }
}
