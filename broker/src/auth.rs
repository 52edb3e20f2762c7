//! Users, ACLs and per-connection sessions: who may do what.
//!
//! - [`Auth`] (in [`Shared::auth`](crate::state::Shared::auth)) holds every
//!   user (name, SCRAM credential, superuser flag) and every ACL entry,
//!   loaded from the metadata store at start and written through it (durable,
//!   fsynced) on every change, before the change is visible. The password is
//!   never stored, only the SCRAM credential.
//! - **Anonymous access** is allowed (as if superuser) only while no user
//!   exists. The first user must be a superuser, and the last superuser cannot
//!   be deleted while other users exist, so someone can always manage users.
//! - [`Grants`] is what one connection may do, computed from a snapshot of the
//!   state. A [`Session`] (one per connection, owned by its reader task) keeps
//!   its `Arc<Grants>` and recomputes it only when [`Auth`]'s epoch counter
//!   has moved, so a check on the produce/fetch path reads one atomic and
//!   walks the user's own short ACL list: no lock shared across connections.
//!   A user deleted or an ACL revoked takes effect on that user's next
//!   request.
//!
//! Store layout: users under `u name`, ACL entries under
//! `a user \0 resource \0 permission`, keys and user records built and parsed
//! by [`crate::metadata::users`] (which draws the bytes). User names and
//! patterns never hold a NUL byte (they are checked against `[A-Za-z0-9._@-]`
//! and `[A-Za-z0-9._-*]`), so the key splits unambiguously. A record that does
//! not parse is skipped with a warning at load (the rest still loads).
//!
//! Thread-safe: `state` is an `RwLock<Arc<..>>` swapped whole on change
//! (copy-on-write; changes are rare), `write` serializes changes so each
//! check-then-write is atomic, and the epoch is bumped after the swap.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use warren_protocol::ErrorCode;
use warren_protocol::api::auth::{
    AclEntry, Permission, Resource, ResourceType, UserListing, valid_user_name,
};
use warren_protocol::scram::{DEFAULT_ITERATIONS, KEY_BYTES, ScramCredential, ScramServer};
use warren_storage::{KvOp, KvStore};

use crate::connections::ConnectionInfo;
use crate::error::{ErrorKind, ServiceError};
use crate::metadata::users::{self, StoredUser};

/// How long a successful HTTP Basic check is remembered (see
/// [`Auth::verify_password_cached`]). Not configurable.
pub const PASSWORD_CACHE_TTL: Duration = Duration::from_secs(60);
/// Lifetime of an HTTP bearer token (`POST /api/auth/token`). Tokens live in
/// memory only: a restart invalidates them. Not configurable.
pub const TOKEN_TTL: Duration = Duration::from_secs(3600);
/// Most live tokens over all users; issuing beyond it first drops the
/// expired ones, then refuses (a client asking for tokens in a loop should
/// reuse one). Not configurable; per user, `http_max_tokens_per_user`.
pub const MAX_TOKENS: usize = 65_536;
/// Random bytes in a token (256 bits).
const TOKEN_BYTES: usize = 32;

/// Most entries in the password cache; beyond it, expired ones are dropped and
/// then the whole cache if still full (a flood of distinct passwords costs
/// PBKDF2 each anyway).
const PASSWORD_CACHE_MAX: usize = 4096;

/// A stored user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub credential: ScramCredential,
    pub superuser: bool,
}

/// Every user and ACL entry at one moment.
#[derive(Debug, Default)]
pub struct AuthState {
    pub users: BTreeMap<String, User>,
    pub acls: BTreeSet<AclEntry>,
}

/// Why [`Auth::issue_token`] issued no token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// A token cap is reached (the message names it).
    #[error("{0}")]
    TooMany(String),
    /// The random source failed.
    #[error("no random bytes for a token: {0}")]
    Random(String),
}

/// Why a user or ACL change was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("user {0:?} already exists")]
    UserExists(String),
    #[error("user {0:?} does not exist")]
    UserNotFound(String),
    #[error("{0}")]
    InvalidUser(String),
    #[error("{0}")]
    InvalidAcl(String),
    #[error("{0}")]
    SuperuserRequired(&'static str),
    /// The first user may be created only from the broker's own machine:
    /// before it exists every client is anonymous, and a remote one would
    /// take the broker over.
    #[error(
        "the first user can be created only from a loopback address (this request came from \
         {peer}): run `warren user add NAME --superuser` on the broker's machine"
    )]
    FirstUserNotLocal { peer: std::net::IpAddr },
    #[error("writing to the metadata store failed: {0}")]
    Storage(#[from] warren_storage::Error),
}

impl AuthError {
    /// The code sent to the client.
    pub fn code(&self) -> ErrorCode {
        match self {
            AuthError::UserExists(_) => ErrorCode::USER_ALREADY_EXISTS,
            AuthError::UserNotFound(_) => ErrorCode::USER_NOT_FOUND,
            AuthError::InvalidUser(_) => ErrorCode::INVALID_USER,
            AuthError::InvalidAcl(_) => ErrorCode::INVALID_ACL,
            AuthError::SuperuserRequired(_) => ErrorCode::SUPERUSER_REQUIRED,
            AuthError::FirstUserNotLocal { .. } => ErrorCode::CLUSTER_AUTHORIZATION_FAILED,
            AuthError::Storage(e) => crate::error::storage_code(e, "writing users/ACLs"),
        }
    }

    /// The refusal as a service error (a storage failure logged as the
    /// services log one).
    pub fn into_service_error(self) -> ServiceError {
        let kind = match &self {
            AuthError::UserExists(_) => ErrorKind::UserAlreadyExists,
            AuthError::UserNotFound(_) => ErrorKind::UserNotFound,
            AuthError::InvalidUser(_) => ErrorKind::InvalidUser,
            AuthError::InvalidAcl(_) => ErrorKind::InvalidAcl,
            AuthError::SuperuserRequired(_) => ErrorKind::SuperuserRequired,
            AuthError::FirstUserNotLocal { .. } => ErrorKind::ClusterAuthorizationFailed,
            AuthError::Storage(e) => ServiceError::storage(e, "writing users/ACLs").kind,
        };
        ServiceError::new(kind, self.to_string())
    }
}

/// Users, ACLs, and the epoch sessions watch; see the module docs.
pub struct Auth {
    state: RwLock<Arc<AuthState>>,
    /// Held across check, store write and swap, so changes do not interleave.
    write: Mutex<()>,
    /// Bumped after every change; sessions recompute their grants when it moves.
    epoch: AtomicU64,
    /// Seeds the decoy SCRAM salt of unknown users (random per start).
    decoy_secret: [u8; KEY_BYTES],
    /// Successful password checks: (user, SHA-256 of password) -> when. Cleared
    /// on every change, so a changed or deleted user is checked again.
    password_cache: Mutex<HashMap<(String, [u8; KEY_BYTES]), Instant>>,
    /// HTTP bearer tokens: token -> (user, expiry).
    tokens: Mutex<HashMap<String, (String, Instant)>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.snapshot();
        f.debug_struct("Auth")
            .field("users", &state.users.len())
            .field("acls", &state.acls.len())
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// Loads users and ACLs from `kv` and logs whether auth is on. Malformed
    /// records are skipped with a warning.
    pub fn load(kv: &KvStore) -> Auth {
        let mut state = AuthState::default();
        for (key, value) in kv.scan_prefix(users::USERS) {
            match users::parse_user(&key, value) {
                Some(StoredUser {
                    name,
                    superuser,
                    credential,
                }) => {
                    state.users.insert(
                        name,
                        User {
                            credential,
                            superuser,
                        },
                    );
                }
                None => tracing::warn!(key = ?key, "skipping a malformed stored user"),
            }
        }
        for (key, _) in kv.scan_prefix(users::ACLS) {
            match users::parse_acl_key(&key) {
                Some(acl) if state.users.contains_key(&acl.user) => {
                    state.acls.insert(acl);
                }
                _ => tracing::warn!(key = ?key, "skipping a malformed or orphaned stored ACL"),
            }
        }
        if state.users.is_empty() {
            tracing::warn!(
                "no users defined: anonymous clients have full access; add a superuser \
                 (`warren user add NAME --superuser`) to require authentication"
            );
        } else {
            tracing::info!(
                users = state.users.len(),
                acls = state.acls.len(),
                "authentication required: users and ACLs loaded"
            );
        }
        let mut decoy_secret = [0u8; KEY_BYTES];
        if let Err(e) = warren_protocol::scram::fill_random(&mut decoy_secret) {
            // Only the decoy salts of unknown users become predictable.
            tracing::warn!(error = %e, "no random decoy secret");
        }
        Auth {
            state: RwLock::new(Arc::new(state)),
            write: Mutex::new(()),
            epoch: AtomicU64::new(0),
            decoy_secret,
            password_cache: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// The current users and ACLs.
    pub fn snapshot(&self) -> Arc<AuthState> {
        Arc::clone(&self.state.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Bumped on every change.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Whether any user exists (authentication is then required).
    pub fn has_users(&self) -> bool {
        !self.snapshot().users.is_empty()
    }

    /// The secret decoy salts are derived from.
    pub fn decoy_secret(&self) -> &[u8] {
        &self.decoy_secret
    }

    /// The grants of `user` (`None`: not authenticated) as of now.
    pub fn grants_for(&self, user: Option<&str>) -> Grants {
        Grants::compute(&self.snapshot(), user)
    }

    /// Users sorted by name.
    pub fn list_users(&self) -> Vec<UserListing> {
        self.snapshot()
            .users
            .iter()
            .map(|(name, u)| UserListing {
                name: name.clone(),
                superuser: u.superuser,
            })
            .collect()
    }

    /// ACL entries, of one user or all, sorted.
    pub fn list_acls(&self, user: Option<&str>) -> Vec<AclEntry> {
        self.snapshot()
            .acls
            .iter()
            .filter(|a| user.is_none_or(|u| a.user == u))
            .cloned()
            .collect()
    }

    /// Checks a user's password against the stored credential (one PBKDF2),
    /// remembering a success for [`PASSWORD_CACHE_TTL`] keyed by the user and
    /// the password's SHA-256. Blocking (PBKDF2 takes milliseconds): call it
    /// from a blocking thread in async code.
    pub fn verify_password_cached(&self, user: &str, password: &str) -> bool {
        use sha2::{Digest, Sha256};
        let key = (
            user.to_owned(),
            <[u8; KEY_BYTES]>::from(Sha256::digest(password)),
        );
        let now = Instant::now();
        {
            let cache = self.cache();
            if cache
                .get(&key)
                .is_some_and(|at| now.duration_since(*at) < PASSWORD_CACHE_TTL)
            {
                return true;
            }
        }
        let epoch = self.epoch();
        let ok = match self.snapshot().users.get(user) {
            Some(u) => u.credential.verify_password(password),
            None => {
                // As slow as a real check, so timing does not tell which
                // users exist.
                let _ = ScramCredential::derive(password, &self.decoy_secret, DEFAULT_ITERATIONS);
                false
            }
        };
        // Cached only if no change happened meanwhile (a change clears the
        // cache, and must not be undone by a check that read the old state).
        if ok && self.epoch() == epoch {
            let mut cache = self.cache();
            if cache.len() >= PASSWORD_CACHE_MAX {
                cache.retain(|_, at| now.duration_since(*at) < PASSWORD_CACHE_TTL);
                if cache.len() >= PASSWORD_CACHE_MAX {
                    cache.clear();
                }
            }
            cache.insert(key, now);
        }
        ok
    }

    /// Issues a bearer token for `user` valid for [`TOKEN_TTL`]; returns it
    /// and its expiry in ms since the Unix epoch. A user holds at most
    /// `max_per_user` live tokens (`http_max_tokens_per_user`), and the
    /// broker at most [`MAX_TOKENS`]: beyond either, expired tokens are
    /// dropped first, then the request is refused, so one user asking in a
    /// loop cannot take every slot from the others.
    ///
    /// # Errors
    /// [`TokenError::TooMany`] at a cap, [`TokenError::Random`] if the random
    /// source failed.
    pub fn issue_token(
        &self,
        user: &str,
        max_per_user: usize,
    ) -> Result<(String, u64), TokenError> {
        use base64::Engine;
        let mut raw = [0u8; TOKEN_BYTES];
        warren_protocol::scram::fill_random(&mut raw)
            .map_err(|e| TokenError::Random(e.to_string()))?;
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let now = Instant::now();
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        // One pass over at most MAX_TOKENS entries; a PBKDF2 check (which
        // every issue costs first) is far slower.
        let mut users_tokens = tokens.values().filter(|(u, _)| u == user).count();
        if tokens.len() >= MAX_TOKENS || users_tokens >= max_per_user {
            tokens.retain(|_, (_, expires)| *expires > now);
            users_tokens = tokens.values().filter(|(u, _)| u == user).count();
        }
        if users_tokens >= max_per_user {
            return Err(TokenError::TooMany(format!(
                "user {user} holds {users_tokens} live tokens, the most one user may \
                 (http_max_tokens_per_user = {max_per_user}); reuse one until it expires"
            )));
        }
        if tokens.len() >= MAX_TOKENS {
            return Err(TokenError::TooMany(format!(
                "the broker holds {MAX_TOKENS} live tokens, the most it keeps; reuse the ones issued"
            )));
        }
        tokens.insert(token.clone(), (user.to_owned(), now + TOKEN_TTL));
        let expires_at_ms = std::time::SystemTime::now()
            .checked_add(TOKEN_TTL)
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Ok((token, expires_at_ms))
    }

    /// The user of a live token. An expired token is dropped.
    pub fn token_user(&self, token: &str) -> Option<String> {
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        match tokens.get(token) {
            Some((user, expires)) if *expires > Instant::now() => Some(user.clone()),
            Some(_) => {
                tokens.remove(token);
                None
            }
            None => None,
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<(String, [u8; KEY_BYTES]), Instant>> {
        self.password_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates a user; durable when it returns. Blocking (fsync).
    ///
    /// # Errors
    /// `InvalidUser`, `UserExists`, `SuperuserRequired` (the first user must
    /// be a superuser), `Storage`.
    pub fn create_user(
        &self,
        kv: &KvStore,
        name: &str,
        credential: ScramCredential,
        superuser: bool,
    ) -> Result<(), AuthError> {
        self.create(kv, name, credential, superuser, None)
    }

    /// [`create_user`](Self::create_user) on behalf of a client at `peer`:
    /// the first user (the one that ends anonymous access) only from a
    /// loopback address, so a remote anonymous client cannot take the
    /// broker over. Blocking (fsync).
    ///
    /// # Errors
    /// As [`create_user`](Self::create_user), and `FirstUserNotLocal`.
    pub fn create_user_from(
        &self,
        kv: &KvStore,
        name: &str,
        credential: ScramCredential,
        superuser: bool,
        peer: std::net::IpAddr,
    ) -> Result<(), AuthError> {
        self.create(kv, name, credential, superuser, Some(peer))
    }

    fn create(
        &self,
        kv: &KvStore,
        name: &str,
        credential: ScramCredential,
        superuser: bool,
        peer: Option<std::net::IpAddr>,
    ) -> Result<(), AuthError> {
        if !valid_user_name(name) {
            return Err(AuthError::InvalidUser(format!(
                "invalid user name {name:?}: 1 to 255 bytes of [A-Za-z0-9._@-]"
            )));
        }
        credential
            .validate()
            .map_err(|e| AuthError::InvalidUser(format!("invalid credential: {e}")))?;
        self.change(|state| {
            if state.users.contains_key(name) {
                return Err(AuthError::UserExists(name.to_owned()));
            }
            if let Some(peer) = peer
                && state.users.is_empty()
                && !peer.to_canonical().is_loopback()
            {
                return Err(AuthError::FirstUserNotLocal { peer });
            }
            if state.users.is_empty() && !superuser {
                return Err(AuthError::SuperuserRequired(
                    "the first user must be a superuser (add it with --superuser): \
                     nobody could manage users otherwise",
                ));
            }
            let user = User {
                credential,
                superuser,
            };
            let key = users::user_key(name);
            let value = users::encode_user(user.superuser, &user.credential);
            kv.apply_durable(&[KvOp::Put(&key, &value)])?;
            if state.users.is_empty() {
                tracing::info!(
                    user = name,
                    "first user created: authentication is now required"
                );
            }
            state.users.insert(name.to_owned(), user);
            Ok(())
        })
    }

    /// Deletes a user and its ACL entries; durable when it returns. Blocking.
    ///
    /// # Errors
    /// `UserNotFound`, `SuperuserRequired` (the last superuser while other
    /// users exist), `Storage`.
    pub fn delete_user(&self, kv: &KvStore, name: &str) -> Result<(), AuthError> {
        self.delete_user_keeping_one(kv, name, false)
    }

    /// [`delete_user`](Self::delete_user), refusing to delete the last user
    /// when `keep_one` (a broker on a non-loopback address without
    /// `allow_anonymous`: deleting it would open the broker to everyone who
    /// can reach it, which such a broker refuses to start with). Blocking.
    ///
    /// # Errors
    /// As [`delete_user`](Self::delete_user); `SuperuserRequired` for the
    /// last user when `keep_one`.
    pub fn delete_user_keeping_one(
        &self,
        kv: &KvStore,
        name: &str,
        keep_one: bool,
    ) -> Result<(), AuthError> {
        self.change(|state| {
            let user = state
                .users
                .get(name)
                .ok_or_else(|| AuthError::UserNotFound(name.to_owned()))?;
            if keep_one && state.users.len() == 1 {
                return Err(AuthError::SuperuserRequired(
                    "cannot delete the last user of a broker on a non-loopback address: \
                     everyone who can reach it would have full access (restart it with \
                     --allow-anonymous first if that is what you want)",
                ));
            }
            let superusers = state.users.values().filter(|u| u.superuser).count();
            if user.superuser && superusers == 1 && state.users.len() > 1 {
                return Err(AuthError::SuperuserRequired(
                    "cannot delete the last superuser while other users exist: \
                     nobody could manage users afterwards",
                ));
            }
            let acls: Vec<AclEntry> = state
                .acls
                .iter()
                .filter(|a| a.user == name)
                .cloned()
                .collect();
            let acl_keys: Vec<Vec<u8>> = acls.iter().map(users::acl_key).collect();
            let user_key = users::user_key(name);
            let mut ops: Vec<KvOp<'_>> = acl_keys.iter().map(|k| KvOp::Delete(k)).collect();
            ops.push(KvOp::Delete(&user_key));
            kv.apply_durable(&ops)?;
            for a in &acls {
                state.acls.remove(a);
            }
            state.users.remove(name);
            if state.users.is_empty() {
                tracing::warn!("last user deleted: anonymous clients have full access again");
            }
            Ok(())
        })
    }

    /// Grants an ACL entry (a no-op if it exists); durable when it returns.
    ///
    /// # Errors
    /// `UserNotFound`, `InvalidAcl`, `Storage`.
    pub fn grant(&self, kv: &KvStore, acl: AclEntry) -> Result<(), AuthError> {
        acl.resource
            .validate()
            .map_err(|e| AuthError::InvalidAcl(e.to_string()))?;
        self.change(|state| {
            if !state.users.contains_key(&acl.user) {
                return Err(AuthError::UserNotFound(acl.user.clone()));
            }
            if state.acls.contains(&acl) {
                return Ok(());
            }
            kv.apply_durable(&[KvOp::Put(&users::acl_key(&acl), &[])])?;
            state.acls.insert(acl);
            Ok(())
        })
    }

    /// Revokes an ACL entry (a no-op if absent); durable when it returns.
    ///
    /// # Errors
    /// `InvalidAcl`, `Storage`.
    pub fn revoke(&self, kv: &KvStore, acl: &AclEntry) -> Result<(), AuthError> {
        acl.resource
            .validate()
            .map_err(|e| AuthError::InvalidAcl(e.to_string()))?;
        self.change(|state| {
            if !state.acls.contains(acl) {
                return Ok(());
            }
            kv.apply_durable(&[KvOp::Delete(&users::acl_key(acl))])?;
            state.acls.remove(acl);
            Ok(())
        })
    }

    /// Runs `f` on a copy of the state under the write lock; on success swaps
    /// the copy in, bumps the epoch and clears the password cache.
    fn change(
        &self,
        f: impl FnOnce(&mut AuthState) -> Result<(), AuthError>,
    ) -> Result<(), AuthError> {
        let _w = self.write.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.snapshot();
        let mut next = AuthState {
            users: current.users.clone(),
            acls: current.acls.clone(),
        };
        f(&mut next)?;
        *self.state.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(next);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.cache().clear();
        Ok(())
    }
}

/// What one connection may do. Computed from a state snapshot; cheap to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grants {
    /// No user exists: everything is allowed.
    Open,
    /// Users exist and this connection has not authenticated (or its user was
    /// deleted).
    Unauthenticated,
    /// An authenticated user.
    User {
        name: String,
        superuser: bool,
        /// The user's own entries.
        acls: Vec<(Resource, Permission)>,
    },
}

/// Why a check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// Not authenticated: `AUTHENTICATION_REQUIRED`.
    Unauthenticated,
    /// Authenticated without the permission: the resource's
    /// `*_AUTHORIZATION_FAILED`.
    Unauthorized,
}

impl Grants {
    fn compute(state: &AuthState, user: Option<&str>) -> Grants {
        if state.users.is_empty() {
            return Grants::Open;
        }
        let Some((name, u)) = user.and_then(|n| state.users.get_key_value(n)) else {
            return Grants::Unauthenticated;
        };
        Grants::User {
            name: name.clone(),
            superuser: u.superuser,
            acls: state
                .acls
                .iter()
                .filter(|a| a.user == *name)
                .map(|a| (a.resource.clone(), a.permission))
                .collect(),
        }
    }

    /// Whether the connection may send requests beyond ApiVersions and
    /// Authenticate.
    pub fn is_authenticated(&self) -> bool {
        !matches!(self, Grants::Unauthenticated)
    }

    /// Checks `needed` on the resource `name` of type `resource_type` (any
    /// name for `Cluster`).
    ///
    /// # Errors
    /// [`Denied`] saying why.
    pub fn check(
        &self,
        resource_type: ResourceType,
        name: &str,
        needed: Permission,
    ) -> Result<(), Denied> {
        match self {
            Grants::Open => Ok(()),
            Grants::Unauthenticated => Err(Denied::Unauthenticated),
            Grants::User {
                superuser: true, ..
            } => Ok(()),
            Grants::User { acls, .. } => {
                if acls
                    .iter()
                    .any(|(r, p)| p.allows(needed) && r.matches(resource_type, name))
                {
                    Ok(())
                } else {
                    Err(Denied::Unauthorized)
                }
            }
        }
    }

    /// Checks "describe" on a topic: seeing that it exists, its partitions and
    /// configs. Any of read or write allows it (admin implies both), so a
    /// write-only producer can learn partition counts and limits (Kafka's
    /// DESCRIBE is implied by READ and WRITE the same way).
    ///
    /// # Errors
    /// [`Denied`] saying why.
    pub fn check_describe(&self, resource_type: ResourceType, name: &str) -> Result<(), Denied> {
        self.check(resource_type, name, Permission::Read)
            .or_else(|_| self.check(resource_type, name, Permission::Write))
    }

    /// [`check_describe`](Self::check_describe) as a bool.
    pub fn allows_describe(&self, resource_type: ResourceType, name: &str) -> bool {
        self.check_describe(resource_type, name).is_ok()
    }

    /// [`check`](Self::check) as a bool.
    pub fn allows(&self, resource_type: ResourceType, name: &str, needed: Permission) -> bool {
        self.check(resource_type, name, needed).is_ok()
    }

    /// The code for a denial on a resource of `resource_type`.
    pub fn denied_code(denied: Denied, resource_type: ResourceType) -> ErrorCode {
        match (denied, resource_type) {
            (Denied::Unauthenticated, _) => ErrorCode::AUTHENTICATION_REQUIRED,
            (Denied::Unauthorized, ResourceType::Topic) => ErrorCode::TOPIC_AUTHORIZATION_FAILED,
            (Denied::Unauthorized, ResourceType::Group) => ErrorCode::GROUP_AUTHORIZATION_FAILED,
            (Denied::Unauthorized, ResourceType::Cluster) => {
                ErrorCode::CLUSTER_AUTHORIZATION_FAILED
            }
        }
    }
}

/// Where a connection's SASL exchange stands.
#[derive(Debug, Default)]
pub enum SaslState {
    /// Nothing under way.
    #[default]
    Idle,
    /// SCRAM server-first sent; waiting for client-final.
    ScramFirstSent(Box<ScramServer>),
    /// Authenticated; a further Authenticate is out of turn.
    Done,
}

/// One connection's authentication state; owned by its reader task.
#[derive(Debug)]
pub struct Session {
    pub info: Arc<ConnectionInfo>,
    /// The authenticated user.
    user: Option<String>,
    pub sasl: SaslState,
    grants: Arc<Grants>,
    /// The [`Auth::epoch`] `grants` were computed at.
    epoch: u64,
}

impl Session {
    /// A new, unauthenticated session.
    pub fn new(info: Arc<ConnectionInfo>) -> Session {
        Session {
            info,
            user: None,
            sasl: SaslState::Idle,
            grants: Arc::new(Grants::Unauthenticated),
            epoch: u64::MAX,
        }
    }

    /// The session's grants, recomputed if users or ACLs changed since last
    /// time. A deleted user's session falls back to unauthenticated (and may
    /// authenticate again).
    pub fn grants(&mut self, auth: &Auth) -> Arc<Grants> {
        let epoch = auth.epoch();
        if epoch != self.epoch {
            let grants = auth.grants_for(self.user.as_deref());
            if self.user.is_some() && matches!(grants, Grants::Unauthenticated) {
                tracing::info!(user = ?self.user, peer = %self.info.peer, "user deleted: session unauthenticated");
                self.user = None;
                self.sasl = SaslState::Idle;
                self.info.set_user(None);
            }
            self.grants = Arc::new(grants);
            self.epoch = epoch;
        }
        Arc::clone(&self.grants)
    }

    /// Records a successful login.
    pub fn authenticated(&mut self, user: String) {
        tracing::info!(user = %user, peer = %self.info.peer, "authenticated");
        self.info.set_user(Some(user.clone()));
        self.user = Some(user);
        self.sasl = SaslState::Done;
        // Forces the next `grants` to recompute.
        self.epoch = u64::MAX;
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used)]
    use super::*;
    use warren_storage::KvConfig;

    fn credential(password: &str) -> ScramCredential {
        ScramCredential::derive(password, b"0123456789abcdef", 4096).unwrap()
    }

    fn acl(user: &str, resource: &str, permission: Permission) -> AclEntry {
        AclEntry {
            user: user.into(),
            resource: resource.parse().unwrap(),
            permission,
        }
    }

    /// A real non-loopback peer cannot be had in the tests (the network is
    /// loopback only, and 127.0.0.2 is loopback too), so this checks the
    /// rule where the CreateUser handler applies it, with the peer's address.
    #[test]
    fn the_first_user_cannot_be_created_from_a_remote_peer() {
        let dir = tempfile::tempdir().unwrap();
        let kv = KvStore::open(dir.path(), KvConfig::default()).unwrap();
        let auth = Auth::load(&kv);
        let remote: std::net::IpAddr = "192.0.2.7".parse().unwrap();
        let remote_v6: std::net::IpAddr = "2001:db8::1".parse().unwrap();
        for peer in [remote, remote_v6] {
            let err = auth
                .create_user_from(&kv, "root", credential("r"), true, peer)
                .unwrap_err();
            assert!(matches!(err, AuthError::FirstUserNotLocal { .. }), "{err}");
            assert_eq!(err.code(), ErrorCode::CLUSTER_AUTHORIZATION_FAILED);
        }
        assert!(!auth.has_users(), "nothing was created");
        assert!(kv.scan_prefix(users::USERS).is_empty());
        // IPv4-mapped loopback is loopback.
        let mapped: std::net::IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        auth.create_user_from(&kv, "root", credential("r"), true, mapped)
            .unwrap();
        // Once a user exists, the admin rules decide (checked before the
        // handler runs), not the peer's address.
        auth.create_user_from(&kv, "app", credential("a"), false, remote)
            .unwrap();
        assert_eq!(auth.list_users().len(), 2);
        // A public broker keeps its last user, so it never turns open.
        auth.delete_user_keeping_one(&kv, "app", true).unwrap();
        assert!(matches!(
            auth.delete_user_keeping_one(&kv, "root", true),
            Err(AuthError::SuperuserRequired(_))
        ));
        assert!(auth.has_users());
        auth.delete_user_keeping_one(&kv, "root", false).unwrap();
        assert!(!auth.has_users());
    }

    #[test]
    fn one_user_cannot_take_every_token_slot() {
        let dir = tempfile::tempdir().unwrap();
        let kv = KvStore::open(dir.path(), KvConfig::default()).unwrap();
        let auth = Auth::load(&kv);
        for _ in 0..3 {
            auth.issue_token("looper", 3).unwrap();
        }
        let refused = auth.issue_token("looper", 3).unwrap_err();
        assert!(matches!(refused, TokenError::TooMany(_)));
        assert!(
            refused.to_string().contains("http_max_tokens_per_user = 3"),
            "{refused}"
        );
        // Another user still gets one, and the refused user's tokens work.
        let (token, _) = auth.issue_token("other", 3).unwrap();
        assert_eq!(auth.token_user(&token).as_deref(), Some("other"));
        // Expired tokens free their slots.
        {
            let mut tokens = auth.tokens.lock().unwrap();
            for (user, expires) in tokens.values_mut() {
                if user == "looper" {
                    *expires = Instant::now() - Duration::from_secs(1);
                }
            }
        }
        auth.issue_token("looper", 3).unwrap();
    }

    #[test]
    fn the_first_user_must_be_a_superuser_and_the_last_superuser_stays() {
        let dir = tempfile::tempdir().unwrap();
        let kv = KvStore::open(dir.path(), KvConfig::default()).unwrap();
        let auth = Auth::load(&kv);
        assert_eq!(auth.grants_for(None), Grants::Open);
        assert!(matches!(
            auth.create_user(&kv, "bob", credential("b"), false),
            Err(AuthError::SuperuserRequired(_))
        ));
        assert!(matches!(
            auth.create_user(&kv, "bad name", credential("b"), true),
            Err(AuthError::InvalidUser(_))
        ));
        auth.create_user(&kv, "root", credential("r"), true)
            .unwrap();
        assert!(matches!(
            auth.create_user(&kv, "root", credential("r"), true),
            Err(AuthError::UserExists(_))
        ));
        assert_eq!(auth.grants_for(None), Grants::Unauthenticated);
        auth.create_user(&kv, "bob", credential("b"), false)
            .unwrap();
        assert!(matches!(
            auth.delete_user(&kv, "root"),
            Err(AuthError::SuperuserRequired(_))
        ));
        assert!(matches!(
            auth.delete_user(&kv, "nobody"),
            Err(AuthError::UserNotFound(_))
        ));
        auth.delete_user(&kv, "bob").unwrap();
        auth.delete_user(&kv, "root").unwrap();
        assert_eq!(auth.grants_for(None), Grants::Open);
    }

    #[test]
    fn users_and_acls_survive_a_reopen_and_deleting_a_user_drops_its_acls() {
        let dir = tempfile::tempdir().unwrap();
        {
            let kv = KvStore::open(dir.path(), KvConfig::default()).unwrap();
            let auth = Auth::load(&kv);
            auth.create_user(&kv, "root", credential("r"), true)
                .unwrap();
            auth.create_user(&kv, "bob", credential("b"), false)
                .unwrap();
            auth.create_user(&kv, "eve", credential("e"), false)
                .unwrap();
            auth.grant(&kv, acl("bob", "topic:orders.*", Permission::Write))
                .unwrap();
            auth.grant(&kv, acl("bob", "group:g", Permission::Read))
                .unwrap();
            auth.grant(&kv, acl("eve", "cluster", Permission::Admin))
                .unwrap();
            assert!(matches!(
                auth.grant(&kv, acl("ghost", "cluster", Permission::Admin)),
                Err(AuthError::UserNotFound(_))
            ));
            auth.revoke(&kv, &acl("bob", "group:g", Permission::Read))
                .unwrap();
            auth.delete_user(&kv, "eve").unwrap();
            kv.close().unwrap();
        }
        let kv = KvStore::open(dir.path(), KvConfig::default()).unwrap();
        let auth = Auth::load(&kv);
        assert_eq!(
            auth.list_users()
                .iter()
                .map(|u| (u.name.as_str(), u.superuser))
                .collect::<Vec<_>>(),
            vec![("bob", false), ("root", true)]
        );
        assert_eq!(
            auth.list_acls(None),
            vec![acl("bob", "topic:orders.*", Permission::Write)]
        );
        assert_eq!(
            auth.snapshot().users.get("bob").unwrap().credential,
            credential("b")
        );
    }

    #[test]
    fn grants_follow_the_acls() {
        let dir = tempfile::tempdir().unwrap();
        let kv = KvStore::open(dir.path(), KvConfig::default()).unwrap();
        let auth = Auth::load(&kv);
        auth.create_user(&kv, "root", credential("r"), true)
            .unwrap();
        auth.create_user(&kv, "bob", credential("b"), false)
            .unwrap();
        auth.grant(&kv, acl("bob", "topic:orders.*", Permission::Write))
            .unwrap();
        auth.grant(&kv, acl("bob", "topic:logs", Permission::Admin))
            .unwrap();
        let bob = auth.grants_for(Some("bob"));
        let topic = ResourceType::Topic;
        assert!(bob.allows(topic, "orders.eu", Permission::Write));
        assert!(bob.allows_describe(topic, "orders.eu"));
        assert!(!bob.allows_describe(topic, "payments"));
        assert_eq!(
            bob.check(topic, "orders.eu", Permission::Read),
            Err(Denied::Unauthorized)
        );
        assert!(bob.allows(topic, "logs", Permission::Read));
        assert!(bob.allows(topic, "logs", Permission::Admin));
        assert!(!bob.allows(ResourceType::Group, "logs", Permission::Read));
        assert!(!bob.allows(ResourceType::Cluster, "", Permission::Read));
        let root = auth.grants_for(Some("root"));
        assert!(root.allows(ResourceType::Cluster, "", Permission::Admin));
        assert_eq!(
            auth.grants_for(Some("ghost"))
                .check(topic, "x", Permission::Read),
            Err(Denied::Unauthenticated)
        );
    }

    #[test]
    fn a_session_sees_a_revoke_and_a_delete_on_its_next_check() {
        let dir = tempfile::tempdir().unwrap();
        let kv = KvStore::open(dir.path(), KvConfig::default()).unwrap();
        let auth = Auth::load(&kv);
        auth.create_user(&kv, "root", credential("r"), true)
            .unwrap();
        auth.create_user(&kv, "bob", credential("b"), false)
            .unwrap();
        let entry = acl("bob", "topic:t", Permission::Read);
        auth.grant(&kv, entry.clone()).unwrap();
        let connections = crate::connections::Connections::default();
        let reg = connections.register(([127, 0, 0, 1], 1).into(), false);
        let mut session = Session::new(Arc::clone(&reg.info));
        assert!(!session.grants(&auth).is_authenticated());
        session.authenticated("bob".into());
        assert_eq!(reg.info.user().as_deref(), Some("bob"));
        assert!(
            session
                .grants(&auth)
                .allows(ResourceType::Topic, "t", Permission::Read)
        );
        auth.revoke(&kv, &entry).unwrap();
        assert!(
            !session
                .grants(&auth)
                .allows(ResourceType::Topic, "t", Permission::Read)
        );
        auth.delete_user(&kv, "bob").unwrap();
        assert!(!session.grants(&auth).is_authenticated());
        assert_eq!(reg.info.user(), None);
    }

    #[test]
    fn password_checks_are_cached_until_the_user_changes() {
        let dir = tempfile::tempdir().unwrap();
        let kv = KvStore::open(dir.path(), KvConfig::default()).unwrap();
        let auth = Auth::load(&kv);
        auth.create_user(&kv, "root", credential("r"), true)
            .unwrap();
        assert!(!auth.verify_password_cached("root", "wrong"));
        assert!(auth.verify_password_cached("root", "r"));
        assert_eq!(auth.cache().len(), 1);
        assert!(auth.verify_password_cached("root", "r"));
        auth.delete_user(&kv, "root").unwrap();
        assert!(auth.cache().is_empty());
        assert!(!auth.verify_password_cached("root", "r"));
    }
}
