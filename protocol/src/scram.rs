//! SCRAM-SHA-256 (RFC 5802 with RFC 7677's hash): the stored credential, a
//! client state machine and a server state machine. Used by the client crate
//! (to log in and to derive the credential that CreateUser sends) and by the
//! broker (Authenticate, and PLAIN / HTTP Basic checks against the stored
//! credential).
//!
//! ```text
//! client-first  = gs2-header client-first-bare        gs2-header = "n,," | "y,," | "n,a=USER,"
//! client-first-bare = "n=" user "," "r=" c-nonce
//! server-first  = "r=" c-nonce s-nonce "," "s=" base64(salt) "," "i=" iterations
//! client-final  = "c=" base64(gs2-header) "," "r=" c-nonce s-nonce "," "p=" base64(proof)
//! server-final  = "v=" base64(ServerSignature)
//!
//! SaltedPassword  = PBKDF2-HMAC-SHA-256(password, salt, iterations, 32 bytes)
//! ClientKey       = HMAC(SaltedPassword, "Client Key")    StoredKey = SHA-256(ClientKey)
//! ServerKey       = HMAC(SaltedPassword, "Server Key")
//! AuthMessage     = client-first-bare "," server-first "," client-final-without-proof
//! ClientProof     = ClientKey XOR HMAC(StoredKey, AuthMessage)
//! ServerSignature = HMAC(ServerKey, AuthMessage)
//! ```
//!
//! Differences from the RFC, on purpose: channel binding is not offered (`p=`
//! is refused; `y` is accepted, since we advertise no `-PLUS` mechanism);
//! passwords are used as their UTF-8 bytes without SASLprep (identical for
//! ASCII passwords); mandatory extensions (`m=`) are refused. Iteration counts
//! outside [`MIN_ITERATIONS`]..=[`MAX_ITERATIONS`] are refused by both sides,
//! so a hostile server cannot make a client spin and a weak credential cannot
//! be stored.
//!
//! Every message from the peer is parsed without panicking; anything
//! malformed is a [`ScramError`]. Proofs are compared in constant time. The
//! state machines are plain values (not shared), consumed step by step, so a
//! step cannot be replayed.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The mechanism name, as SASL spells it.
pub const MECHANISM: &str = "SCRAM-SHA-256";
/// The fewest PBKDF2 iterations accepted (RFC 7677's minimum).
pub const MIN_ITERATIONS: u32 = 4096;
/// The most PBKDF2 iterations accepted: about a second of CPU on a laptop.
pub const MAX_ITERATIONS: u32 = 1_000_000;
/// Iterations used when deriving a new credential.
pub const DEFAULT_ITERATIONS: u32 = MIN_ITERATIONS;
/// Bytes of salt in a new credential.
pub const SALT_BYTES: usize = 16;
/// Longest salt accepted from the wire or the store.
pub const MAX_SALT_BYTES: usize = 256;
/// Length of StoredKey, ServerKey, proofs and signatures (SHA-256 output).
pub const KEY_BYTES: usize = 32;
/// Longest SCRAM message accepted from a peer.
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// Random bytes in a nonce (base64-encoded on the wire).
const NONCE_BYTES: usize = 24;

type HmacSha256 = Hmac<Sha256>;

/// Why a SCRAM exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScramError {
    /// A message that does not follow the grammar above.
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    /// The peer asked for something we do not do (channel binding, `m=`).
    #[error("unsupported SCRAM feature: {0}")]
    Unsupported(&'static str),
    /// An iteration count outside the accepted range.
    #[error("SCRAM iteration count {0} is outside {MIN_ITERATIONS}..={MAX_ITERATIONS}")]
    Iterations(u32),
    /// The server's nonce does not extend the client's.
    #[error("the server's nonce does not start with the client's")]
    NonceMismatch,
    /// The client's proof is wrong (wrong password, or no such user).
    #[error("authentication failed: wrong user name or password")]
    InvalidProof,
    /// The server's signature is wrong: it does not know the credential.
    #[error("the server's signature is wrong (it does not hold this user's credential)")]
    InvalidServerSignature,
    /// The server answered with `e=...`.
    #[error("the server refused the login: {0}")]
    ServerError(String),
    /// The operating system's random source failed.
    #[error("random source failed: {0}")]
    Random(String),
}

/// Result alias for this module.
pub type ScramResult<T> = std::result::Result<T, ScramError>;

/// What the server stores for a user: never the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: [u8; KEY_BYTES],
    pub server_key: [u8; KEY_BYTES],
}

impl std::fmt::Debug for ScramCredential {
    // Keys stay out of logs: they are password-equivalent for this server.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredential")
            .field("salt_bytes", &self.salt.len())
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramCredential {
    /// Derives the credential of `password` with a fresh random salt and
    /// [`DEFAULT_ITERATIONS`].
    ///
    /// # Errors
    /// [`ScramError::Random`] if the OS random source fails.
    pub fn generate(password: &str) -> ScramResult<ScramCredential> {
        let mut salt = vec![0u8; SALT_BYTES];
        fill_random(&mut salt)?;
        ScramCredential::derive(password, &salt, DEFAULT_ITERATIONS)
    }

    /// Derives the credential of `password` with `salt` and `iterations`.
    ///
    /// # Errors
    /// [`ScramError::Iterations`] outside the accepted range;
    /// [`ScramError::Malformed`] for an empty or oversized salt.
    pub fn derive(password: &str, salt: &[u8], iterations: u32) -> ScramResult<ScramCredential> {
        check_iterations(iterations)?;
        check_salt(salt)?;
        let salted = salted_password(password, salt, iterations);
        let client_key = hmac(&salted, b"Client Key");
        Ok(ScramCredential {
            salt: salt.to_vec(),
            iterations,
            stored_key: sha256(&client_key),
            server_key: hmac(&salted, b"Server Key"),
        })
    }

    /// Checks the ranges a credential from the wire or the store must hold.
    ///
    /// # Errors
    /// As [`derive`](Self::derive).
    pub fn validate(&self) -> ScramResult<()> {
        check_iterations(self.iterations)?;
        check_salt(&self.salt)
    }

    /// Whether `password` is this credential's: derives with the stored salt
    /// and compares StoredKey in constant time. Costs one PBKDF2 (about
    /// `iterations` HMACs), so callers that check often cache the answer.
    pub fn verify_password(&self, password: &str) -> bool {
        match ScramCredential::derive(password, &self.salt, self.iterations) {
            Ok(c) => bool::from(c.stored_key.ct_eq(&self.stored_key)),
            Err(_) => false,
        }
    }
}

fn check_iterations(iterations: u32) -> ScramResult<()> {
    if (MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
        Ok(())
    } else {
        Err(ScramError::Iterations(iterations))
    }
}

fn check_salt(salt: &[u8]) -> ScramResult<()> {
    if salt.is_empty() || salt.len() > MAX_SALT_BYTES {
        Err(ScramError::Malformed("salt is empty or too long"))
    } else {
        Ok(())
    }
}

fn salted_password(password: &str, salt: &[u8], iterations: u32) -> [u8; KEY_BYTES] {
    let mut out = [0u8; KEY_BYTES];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut out);
    out
}

fn hmac(key: &[u8], message: &[u8]) -> [u8; KEY_BYTES] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here;
    // the fallback keeps this free of unwrap all the same.
    match HmacSha256::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(message);
            mac.finalize().into_bytes().into()
        }
        Err(_) => [0u8; KEY_BYTES],
    }
}

fn sha256(data: &[u8]) -> [u8; KEY_BYTES] {
    Sha256::digest(data).into()
}

fn xor(a: &[u8; KEY_BYTES], b: &[u8; KEY_BYTES]) -> [u8; KEY_BYTES] {
    let mut out = [0u8; KEY_BYTES];
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        *o = x ^ y;
    }
    out
}

/// Fills `buf` from the operating system's random source.
///
/// # Errors
/// [`ScramError::Random`] if the source fails.
pub fn fill_random(buf: &mut [u8]) -> ScramResult<()> {
    getrandom::fill(buf).map_err(|e| ScramError::Random(e.to_string()))
}

/// A fresh random nonce: printable, without `,`.
///
/// # Errors
/// [`ScramError::Random`] if the source fails.
pub fn new_nonce() -> ScramResult<String> {
    let mut raw = [0u8; NONCE_BYTES];
    fill_random(&mut raw)?;
    Ok(BASE64.encode(raw))
}

/// Escapes a user name for `n=`: `=` becomes `=3D`, `,` becomes `=2C`.
pub fn escape_user(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

/// Reverses [`escape_user`].
///
/// # Errors
/// [`ScramError::Malformed`] for a `=` not followed by `2C` or `3D`.
pub fn unescape_user(raw: &str) -> ScramResult<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('=') {
        out.push_str(rest.get(..at).unwrap_or_default());
        let after = rest.get(at..).unwrap_or_default();
        if let Some(r) = after.strip_prefix("=2C") {
            out.push(',');
            rest = r;
        } else if let Some(r) = after.strip_prefix("=3D") {
            out.push('=');
            rest = r;
        } else {
            return Err(ScramError::Malformed("bad escape in user name"));
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn check_nonce(nonce: &str) -> ScramResult<()> {
    if nonce.is_empty()
        || !nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
    {
        return Err(ScramError::Malformed(
            "nonce is empty or has invalid characters",
        ));
    }
    Ok(())
}

/// Splits a message into its `k=value` attributes, checking the message is
/// UTF-8 and not longer than [`MAX_MESSAGE_BYTES`].
fn as_text(msg: &[u8]) -> ScramResult<&str> {
    if msg.len() > MAX_MESSAGE_BYTES {
        return Err(ScramError::Malformed("message too long"));
    }
    std::str::from_utf8(msg).map_err(|_| ScramError::Malformed("message is not UTF-8"))
}

/// Takes the attribute `key` (`k=value`) off the front of `parts`.
fn attr<'a>(parts: &mut std::str::Split<'a, char>, key: char) -> ScramResult<&'a str> {
    let part = parts
        .next()
        .ok_or(ScramError::Malformed("missing attribute"))?;
    let mut chars = part.chars();
    if chars.next() == Some(key) && chars.next() == Some('=') {
        Ok(part.get(2..).unwrap_or_default())
    } else {
        Err(ScramError::Malformed("unexpected attribute"))
    }
}

fn decode_key(b64: &str) -> ScramResult<[u8; KEY_BYTES]> {
    let raw = BASE64
        .decode(b64)
        .map_err(|_| ScramError::Malformed("invalid base64"))?;
    raw.try_into()
        .map_err(|_| ScramError::Malformed("proof or signature is not 32 bytes"))
}

// ---------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------

/// A client's exchange before the server's first message.
#[derive(Debug)]
pub struct ScramClient {
    password: String,
    client_nonce: String,
    client_first_bare: String,
}

/// A client's exchange after it sent client-final: it checks the server.
#[derive(Debug)]
pub struct ScramClientFinal {
    server_signature: [u8; KEY_BYTES],
}

impl ScramClient {
    /// Starts an exchange for `user` with a random nonce.
    ///
    /// # Errors
    /// [`ScramError::Random`] if the OS random source fails.
    pub fn new(user: &str, password: &str) -> ScramResult<ScramClient> {
        Ok(ScramClient::with_nonce(user, password, &new_nonce()?))
    }

    /// Starts an exchange with a given nonce (tests use RFC 7677's).
    pub fn with_nonce(user: &str, password: &str, nonce: &str) -> ScramClient {
        ScramClient {
            password: password.to_owned(),
            client_nonce: nonce.to_owned(),
            client_first_bare: format!("n={},r={nonce}", escape_user(user)),
        }
    }

    /// The client-first message.
    pub fn client_first(&self) -> String {
        format!("n,,{}", self.client_first_bare)
    }

    /// Reads server-first and returns client-final, and the state that checks
    /// server-final.
    ///
    /// # Errors
    /// Malformed input, a nonce that does not extend ours, an iteration count
    /// out of range, `e=` from the server.
    pub fn handle_server_first(self, msg: &[u8]) -> ScramResult<(ScramClientFinal, String)> {
        let text = as_text(msg)?;
        if let Some(e) = text.strip_prefix("e=") {
            return Err(ScramError::ServerError(e.to_owned()));
        }
        let mut parts = text.split(',');
        if text.starts_with("m=") {
            return Err(ScramError::Unsupported("mandatory extension"));
        }
        let nonce = attr(&mut parts, 'r')?;
        let salt = attr(&mut parts, 's')?;
        let iterations = attr(&mut parts, 'i')?;
        check_nonce(nonce)?;
        if !nonce.starts_with(&self.client_nonce) || nonce.len() == self.client_nonce.len() {
            return Err(ScramError::NonceMismatch);
        }
        let salt = BASE64
            .decode(salt)
            .map_err(|_| ScramError::Malformed("invalid base64 salt"))?;
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| ScramError::Malformed("iteration count is not a number"))?;
        let credential = ScramCredential::derive(&self.password, &salt, iterations)?;
        // We recompute the keys from the salted password rather than keep
        // them in the credential, since the client needs ClientKey itself.
        let salted = salted_password(&self.password, &salt, iterations);
        let client_key = hmac(&salted, b"Client Key");
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.client_first_bare);
        let client_signature = hmac(&credential.stored_key, auth_message.as_bytes());
        let proof = xor(&client_key, &client_signature);
        let server_signature = hmac(&credential.server_key, auth_message.as_bytes());
        Ok((
            ScramClientFinal { server_signature },
            format!("{without_proof},p={}", BASE64.encode(proof)),
        ))
    }
}

impl ScramClientFinal {
    /// Checks server-final: the server proves it holds the credential.
    ///
    /// # Errors
    /// Malformed input, `e=`, or a wrong signature.
    pub fn verify_server_final(&self, msg: &[u8]) -> ScramResult<()> {
        let text = as_text(msg)?;
        if let Some(e) = text.strip_prefix("e=") {
            return Err(ScramError::ServerError(e.to_owned()));
        }
        let mut parts = text.split(',');
        let signature = decode_key(attr(&mut parts, 'v')?)?;
        if bool::from(signature.ct_eq(&self.server_signature)) {
            Ok(())
        } else {
            Err(ScramError::InvalidServerSignature)
        }
    }
}

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

/// A parsed client-first message; the server looks up [`user`](Self::user)
/// and answers with [`server_first`](Self::server_first).
#[derive(Debug)]
pub struct ClientFirst {
    /// The user name, unescaped.
    pub user: String,
    gs2_header: String,
    client_nonce: String,
    client_first_bare: String,
}

/// The server's exchange after server-first: it checks client-final.
#[derive(Debug)]
pub struct ScramServer {
    user: String,
    credential: ScramCredential,
    /// False when the user does not exist: the exchange runs on a decoy
    /// credential (so the reply does not reveal which users exist) and fails.
    known: bool,
    gs2_header: String,
    nonce: String,
    client_first_bare: String,
    server_first: String,
}

impl ClientFirst {
    /// Parses client-first.
    ///
    /// # Errors
    /// Malformed input; channel binding or mandatory extensions.
    pub fn parse(msg: &[u8]) -> ScramResult<ClientFirst> {
        let text = as_text(msg)?;
        let (flag, rest) = text
            .split_once(',')
            .ok_or(ScramError::Malformed("missing gs2 header"))?;
        match flag {
            "n" | "y" => {}
            f if f.starts_with("p=") => return Err(ScramError::Unsupported("channel binding")),
            _ => return Err(ScramError::Malformed("bad gs2 channel-binding flag")),
        }
        let (authzid, bare) = rest
            .split_once(',')
            .ok_or(ScramError::Malformed("missing gs2 header"))?;
        let mut parts = bare.split(',');
        if bare.starts_with("m=") {
            return Err(ScramError::Unsupported("mandatory extension"));
        }
        let user = unescape_user(attr(&mut parts, 'n')?)?;
        let nonce = attr(&mut parts, 'r')?;
        check_nonce(nonce)?;
        if user.is_empty() {
            return Err(ScramError::Malformed("empty user name"));
        }
        if !authzid.is_empty() {
            let id = authzid
                .strip_prefix("a=")
                .ok_or(ScramError::Malformed("bad authzid"))?;
            if unescape_user(id)? != user {
                return Err(ScramError::Unsupported(
                    "authorization identity other than the user",
                ));
            }
        }
        Ok(ClientFirst {
            user,
            gs2_header: format!("{flag},{authzid},"),
            client_nonce: nonce.to_owned(),
            client_first_bare: bare.to_owned(),
        })
    }

    /// Answers with server-first, using the user's stored `credential`, or
    /// `None` when no such user exists: the exchange then goes on with a decoy
    /// derived from `decoy_secret` (the same salt every time for a given name,
    /// as a real user's would be) and fails at the proof.
    /// `server_nonce` is appended to the client's nonce.
    ///
    /// # Errors
    /// [`ScramError::Malformed`] for a server nonce with invalid characters.
    pub fn server_first(
        self,
        credential: Option<ScramCredential>,
        decoy_secret: &[u8],
        server_nonce: &str,
    ) -> ScramResult<(ScramServer, String)> {
        check_nonce(server_nonce)?;
        let known = credential.is_some();
        let credential = credential.unwrap_or_else(|| {
            let salt = hmac(decoy_secret, self.user.as_bytes());
            ScramCredential {
                salt: salt.get(..SALT_BYTES).unwrap_or(&salt).to_vec(),
                iterations: DEFAULT_ITERATIONS,
                stored_key: hmac(decoy_secret, b"decoy stored key"),
                server_key: hmac(decoy_secret, b"decoy server key"),
            }
        });
        let nonce = format!("{}{server_nonce}", self.client_nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            BASE64.encode(&credential.salt),
            credential.iterations
        );
        Ok((
            ScramServer {
                user: self.user,
                credential,
                known,
                gs2_header: self.gs2_header,
                nonce,
                client_first_bare: self.client_first_bare,
                server_first: server_first.clone(),
            },
            server_first,
        ))
    }
}

impl ScramServer {
    /// The user this exchange is for.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Checks client-final; on success returns the user name and
    /// server-final.
    ///
    /// # Errors
    /// Malformed input, a changed nonce or gs2 header, or a wrong proof
    /// ([`ScramError::InvalidProof`], also for an unknown user).
    pub fn handle_client_final(self, msg: &[u8]) -> ScramResult<(String, String)> {
        let text = as_text(msg)?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed("missing proof"))?;
        let mut parts = without_proof.split(',');
        let binding = attr(&mut parts, 'c')?;
        let nonce = attr(&mut parts, 'r')?;
        let binding = BASE64
            .decode(binding)
            .map_err(|_| ScramError::Malformed("invalid base64 channel binding"))?;
        if binding != self.gs2_header.as_bytes() {
            return Err(ScramError::Malformed(
                "channel binding does not match the gs2 header",
            ));
        }
        if nonce != self.nonce {
            return Err(ScramError::NonceMismatch);
        }
        let proof = decode_key(proof)?;
        let auth_message = format!(
            "{},{},{without_proof}",
            self.client_first_bare, self.server_first
        );
        let client_signature = hmac(&self.credential.stored_key, auth_message.as_bytes());
        let client_key = xor(&proof, &client_signature);
        let matches = bool::from(sha256(&client_key).ct_eq(&self.credential.stored_key));
        if !matches || !self.known {
            return Err(ScramError::InvalidProof);
        }
        let signature = hmac(&self.credential.server_key, auth_message.as_bytes());
        Ok((self.user, format!("v={}", BASE64.encode(signature))))
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used)]
    use super::*;

    // RFC 7677, section 3.
    const C_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    const S_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const SALT_B64: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
    const SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn rfc_credential() -> ScramCredential {
        ScramCredential::derive("pencil", &BASE64.decode(SALT_B64).unwrap(), 4096).unwrap()
    }

    #[test]
    fn the_client_reproduces_rfc_7677() {
        let client = ScramClient::with_nonce("user", "pencil", C_NONCE);
        assert_eq!(client.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let (fin, client_final) = client.handle_server_first(SERVER_FIRST.as_bytes()).unwrap();
        assert_eq!(client_final, CLIENT_FINAL);
        fin.verify_server_final(SERVER_FINAL.as_bytes()).unwrap();
        assert_eq!(
            fin.verify_server_final(b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            Err(ScramError::InvalidServerSignature)
        );
    }

    #[test]
    fn the_server_reproduces_rfc_7677() {
        let first = ClientFirst::parse(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO").unwrap();
        assert_eq!(first.user, "user");
        let (server, server_first) = first
            .server_first(Some(rfc_credential()), b"secret", S_NONCE)
            .unwrap();
        assert_eq!(server_first, SERVER_FIRST);
        let (user, server_final) = server.handle_client_final(CLIENT_FINAL.as_bytes()).unwrap();
        assert_eq!(user, "user");
        assert_eq!(server_final, SERVER_FINAL);
    }

    fn exchange(
        user: &str,
        password: &str,
        stored: Option<ScramCredential>,
    ) -> ScramResult<String> {
        let client = ScramClient::new(user, password)?;
        let first = ClientFirst::parse(client.client_first().as_bytes())?;
        let (server, server_first) = first.server_first(stored, b"decoy", &new_nonce()?)?;
        let (fin, client_final) = client.handle_server_first(server_first.as_bytes())?;
        let (user, server_final) = server.handle_client_final(client_final.as_bytes())?;
        fin.verify_server_final(server_final.as_bytes())?;
        Ok(user)
    }

    #[test]
    fn round_trips_succeed_with_the_password_and_fail_without() {
        let cred = ScramCredential::generate("s3cret, with = signs").unwrap();
        assert_eq!(
            exchange("al,i=ce", "s3cret, with = signs", Some(cred.clone())).unwrap(),
            "al,i=ce"
        );
        assert_eq!(
            exchange("alice", "wrong", Some(cred)),
            Err(ScramError::InvalidProof)
        );
        assert_eq!(
            exchange("nobody", "anything", None),
            Err(ScramError::InvalidProof)
        );
    }

    #[test]
    fn an_unknown_user_gets_the_same_salt_each_time() {
        let salt_of = |user: &str| {
            let first = ClientFirst::parse(format!("n,,n={user},r=abc").as_bytes()).unwrap();
            first.server_first(None, b"decoy", "xyz").unwrap().1
        };
        assert_eq!(salt_of("ghost"), salt_of("ghost"));
        assert_ne!(salt_of("ghost"), salt_of("spirit"));
    }

    #[test]
    fn verify_password_checks_the_stored_key() {
        let cred = rfc_credential();
        assert!(cred.verify_password("pencil"));
        assert!(!cred.verify_password("pencil "));
    }

    #[test]
    fn user_names_escape_and_unescape() {
        assert_eq!(escape_user("a,b=c"), "a=2Cb=3Dc");
        assert_eq!(unescape_user("a=2Cb=3Dc").unwrap(), "a,b=c");
        assert!(unescape_user("a=2").is_err());
        assert!(unescape_user("a=41").is_err());
    }

    #[test]
    fn hostile_messages_are_errors() {
        for bad in [
            &b""[..],
            b"n",
            b"n,",
            b"x,,n=u,r=a",
            b"p=tls-unique,,n=u,r=a",
            b"n,,m=ext,n=u,r=a",
            b"n,,n=u",
            b"n,,n=,r=a",
            b"n,,n=u,r=",
            b"n,,n=u,r=a b",
            b"n,a=other,n=u,r=a",
            b"n,,r=a,n=u",
            b"n,,n=u,r=\xff",
        ] {
            assert!(ClientFirst::parse(bad).is_err(), "{bad:?}");
        }
        let client = || ScramClient::with_nonce("user", "pencil", C_NONCE);
        for bad in [
            "",
            "e=other-error",
            "r=other,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "r=rOprNGfwEbeRWgbNEkqOx,s=!!,i=4096",
            "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1",
            "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4000000000",
            "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=x",
            "r=rOprNGfwEbeRWgbNEkqOx,s=,i=4096",
        ] {
            assert!(
                client().handle_server_first(bad.as_bytes()).is_err(),
                "{bad}"
            );
        }
        let server = || {
            ClientFirst::parse(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
                .unwrap()
                .server_first(Some(rfc_credential()), b"s", S_NONCE)
                .unwrap()
                .0
        };
        for bad in [
            "",
            "c=biws",
            "c=biws,r=x,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            "c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AA==",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=eHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        ] {
            assert!(
                server().handle_client_final(bad.as_bytes()).is_err(),
                "{bad}"
            );
        }
        let too_long = vec![b'a'; MAX_MESSAGE_BYTES + 1];
        assert!(ClientFirst::parse(&too_long).is_err());
    }

    #[test]
    fn credentials_out_of_range_are_refused() {
        assert_eq!(
            ScramCredential::derive("p", b"salt", 4095),
            Err(ScramError::Iterations(4095))
        );
        assert!(ScramCredential::derive("p", b"", 4096).is_err());
        let mut cred = rfc_credential();
        assert!(cred.validate().is_ok());
        cred.salt = vec![0; MAX_SALT_BYTES + 1];
        assert!(cred.validate().is_err());
    }
}
