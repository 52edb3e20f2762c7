//! Users and permissions: Authenticate (key 20), CreateUser (21), DeleteUser
//! (22), ListUsers (23), CreateAcl (24), DeleteAcl (25), ListAcls (26); and the
//! ACL model they carry ([`AclEntry`], [`Resource`], [`Permission`]).
//!
//! ```text
//! Authenticate request  = mechanism: string | auth_bytes: bytes
//! Authenticate response = auth_bytes: bytes
//! CreateUser request    = name: string | superuser: u8 | salt: bytes | iterations: u32 |
//!                         stored_key: bytes | server_key: bytes
//! CreateUser response   = (empty)
//! DeleteUser request    = name: string
//! DeleteUser response   = (empty)
//! ListUsers request     = (empty)
//! ListUsers response    = users: array< name: string | superuser: u8 >
//! CreateAcl request     = acl
//! DeleteAcl request     = acl
//! CreateAcl/DeleteAcl response = (empty)
//! ListAcls request      = user: nullable string          null = every user's
//! ListAcls response     = acls: array<acl>
//! acl                   = user: string | resource_type: u8 | pattern: string | permission: u8
//! ```
//!
//! - Authenticate, `SCRAM-SHA-256`: two round trips on one connection (the
//!   broker keeps the exchange's state per connection): `auth_bytes` =
//!   client-first, answered with server-first; then client-final, answered
//!   with server-final (see [`crate::scram`]). `PLAIN`: one round trip,
//!   `auth_bytes` = `authzid \0 user \0 password` (RFC 4616), answered with
//!   empty `auth_bytes`; accepted only on a TLS connection, since the password
//!   crosses the wire. Errors: `UNSUPPORTED_SASL_MECHANISM`,
//!   `SASL_AUTHENTICATION_FAILED` (wrong user or password, malformed
//!   message, PLAIN without TLS), `ILLEGAL_SASL_STATE` (a message out of turn).
//! - CreateUser carries the SCRAM credential the client derived
//!   ([`crate::scram::ScramCredential`]): the password never reaches the
//!   broker. `superuser` is 0 or 1; `stored_key` and `server_key` are 32
//!   bytes. Errors: `USER_ALREADY_EXISTS`, `INVALID_USER` (name outside
//!   `[A-Za-z0-9._@-]{1,255}`, or a credential out of range),
//!   `SUPERUSER_REQUIRED` (the first user must be a superuser).
//! - DeleteUser also deletes the user's ACLs. Errors: `USER_NOT_FOUND`,
//!   `SUPERUSER_REQUIRED` (the last superuser while other users exist).
//! - `resource_type`: 0 topic, 1 group, 2 cluster ([`ResourceType`]);
//!   `pattern` is a topic or group name where `*` matches any run of
//!   characters (empty for `cluster`). `permission`: 0 read, 1 write, 2 admin
//!   ([`Permission`]); admin implies read and write on the same resource,
//!   write does not imply read. CreateAcl of an existing entry and DeleteAcl
//!   of a missing one change nothing. Errors: `USER_NOT_FOUND`, `INVALID_ACL`.
//! - All but Authenticate need `admin` on `cluster` (or a superuser).

use std::fmt;
use std::str::FromStr;

use bytes::{BufMut, Bytes, BytesMut};

use super::topics::EmptyResponse;
use super::{ApiKey, Body, Request, empty_body};
use crate::error::{Error, Result};
use crate::scram::KEY_BYTES;
use crate::wire::{WireReader, put_array, put_bytes, put_nullable_string, put_string};

/// The SASL mechanisms the broker knows.
pub const MECHANISMS: [&str; 2] = [crate::scram::MECHANISM, PLAIN];
/// SASL PLAIN (RFC 4616).
pub const PLAIN: &str = "PLAIN";
/// Longest user name, in bytes.
pub const MAX_USER_LEN: usize = 255;
/// Longest ACL pattern, in bytes.
pub const MAX_PATTERN_LEN: usize = 255;

/// Whether `name` is a valid user name: 1 to 255 bytes of `[A-Za-z0-9._@-]`.
pub fn valid_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_USER_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'))
}

/// Authenticate request: one SASL message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthenticateRequest {
    /// `SCRAM-SHA-256` or `PLAIN`.
    pub mechanism: String,
    pub auth_bytes: Bytes,
}

impl Request for AuthenticateRequest {
    const API_KEY: ApiKey = ApiKey::Authenticate;
    type Response = AuthenticateResponse;
}

impl Body for AuthenticateRequest {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_string(dst, &self.mechanism);
        put_bytes(dst, &self.auth_bytes)
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        Ok(AuthenticateRequest {
            mechanism: r.string("mechanism")?,
            auth_bytes: r.bytes("auth_bytes")?,
        })
    }
}

/// Authenticate response: the server's SASL message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthenticateResponse {
    pub auth_bytes: Bytes,
}

impl Body for AuthenticateResponse {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_bytes(dst, &self.auth_bytes)
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        Ok(AuthenticateResponse {
            auth_bytes: r.bytes("auth_bytes")?,
        })
    }
}

fn put_bool(dst: &mut BytesMut, v: bool) {
    dst.put_u8(u8::from(v));
}

fn read_bool(r: &mut WireReader, what: &'static str) -> Result<bool> {
    match r.u8(what)? {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(Error::InvalidField {
            field: what,
            value: i64::from(other),
        }),
    }
}

fn read_key(r: &mut WireReader, what: &'static str) -> Result<[u8; KEY_BYTES]> {
    let raw = r.bytes(what)?;
    let len = raw.len();
    <[u8; KEY_BYTES]>::try_from(raw.as_ref()).map_err(|_| Error::InvalidField {
        field: what,
        value: len as i64,
    })
}

/// CreateUser request: a user and the SCRAM credential the client derived.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreateUserRequest {
    pub name: String,
    pub superuser: bool,
    pub salt: Bytes,
    pub iterations: u32,
    pub stored_key: [u8; KEY_BYTES],
    pub server_key: [u8; KEY_BYTES],
}

impl Request for CreateUserRequest {
    const API_KEY: ApiKey = ApiKey::CreateUser;
    type Response = EmptyResponse;
}

impl Body for CreateUserRequest {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_string(dst, &self.name);
        put_bool(dst, self.superuser);
        put_bytes(dst, &self.salt)?;
        dst.put_u32(self.iterations);
        put_bytes(dst, &self.stored_key)?;
        put_bytes(dst, &self.server_key)
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        Ok(CreateUserRequest {
            name: r.string("name")?,
            superuser: read_bool(r, "superuser")?,
            salt: r.bytes("salt")?,
            iterations: r.u32("iterations")?,
            stored_key: read_key(r, "stored_key")?,
            server_key: read_key(r, "server_key")?,
        })
    }
}

/// DeleteUser request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeleteUserRequest {
    pub name: String,
}

impl Request for DeleteUserRequest {
    const API_KEY: ApiKey = ApiKey::DeleteUser;
    type Response = EmptyResponse;
}

impl Body for DeleteUserRequest {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_string(dst, &self.name);
        Ok(())
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        Ok(DeleteUserRequest {
            name: r.string("name")?,
        })
    }
}

/// ListUsers request (empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListUsersRequest;

empty_body!(ListUsersRequest);

impl Request for ListUsersRequest {
    const API_KEY: ApiKey = ApiKey::ListUsers;
    type Response = ListUsersResponse;
}

/// One user in a ListUsers response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserListing {
    pub name: String,
    pub superuser: bool,
}

/// ListUsers response, sorted by name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListUsersResponse {
    pub users: Vec<UserListing>,
}

impl Body for ListUsersResponse {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_array(dst, &self.users, |dst, u| {
            put_string(dst, &u.name);
            put_bool(dst, u.superuser);
            Ok(())
        })
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        Ok(ListUsersResponse {
            users: r.array("users", 3, |r| {
                Ok(UserListing {
                    name: r.string("name")?,
                    superuser: read_bool(r, "superuser")?,
                })
            })?,
        })
    }
}

/// What kind of thing an ACL entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceType {
    Topic,
    Group,
    Cluster,
}

impl ResourceType {
    /// Every type, in wire order.
    pub const ALL: [ResourceType; 3] = [
        ResourceType::Topic,
        ResourceType::Group,
        ResourceType::Cluster,
    ];

    /// The type's `u8` on the wire: 0 topic, 1 group, 2 cluster.
    pub fn wire(self) -> u8 {
        match self {
            ResourceType::Topic => 0,
            ResourceType::Group => 1,
            ResourceType::Cluster => 2,
        }
    }

    /// The type's name: `topic`, `group`, `cluster`.
    pub fn name(self) -> &'static str {
        match self {
            ResourceType::Topic => "topic",
            ResourceType::Group => "group",
            ResourceType::Cluster => "cluster",
        }
    }

    fn from_wire(v: u8) -> Result<ResourceType> {
        ResourceType::ALL
            .into_iter()
            .find(|t| t.wire() == v)
            .ok_or(Error::InvalidField {
                field: "resource_type",
                value: i64::from(v),
            })
    }
}

/// What an ACL entry allows. `Admin` implies `Read` and `Write` on the same
/// resource; `Write` does not imply `Read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    Read,
    Write,
    Admin,
}

impl Permission {
    /// Every permission, in wire order.
    pub const ALL: [Permission; 3] = [Permission::Read, Permission::Write, Permission::Admin];

    /// The permission's `u8` on the wire: 0 read, 1 write, 2 admin.
    pub fn wire(self) -> u8 {
        match self {
            Permission::Read => 0,
            Permission::Write => 1,
            Permission::Admin => 2,
        }
    }

    /// The permission's name: `read`, `write`, `admin`.
    pub fn name(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Write => "write",
            Permission::Admin => "admin",
        }
    }

    /// Whether holding `self` allows an action that needs `needed`.
    pub fn allows(self, needed: Permission) -> bool {
        self == needed || self == Permission::Admin
    }

    fn from_wire(v: u8) -> Result<Permission> {
        Permission::ALL
            .into_iter()
            .find(|p| p.wire() == v)
            .ok_or(Error::InvalidField {
                field: "permission",
                value: i64::from(v),
            })
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Text that names no resource or permission.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidAcl(pub String);

impl FromStr for Permission {
    type Err = InvalidAcl;

    fn from_str(s: &str) -> Result<Permission, InvalidAcl> {
        Permission::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| InvalidAcl(format!("unknown permission {s:?} (read, write, admin)")))
    }
}

/// A resource an ACL entry is about: `topic:PATTERN`, `group:PATTERN` or
/// `cluster`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Resource {
    pub resource_type: ResourceType,
    /// A name where `*` matches any run of characters; empty for `cluster`.
    pub pattern: String,
}

impl Resource {
    /// Checks the pattern: `cluster` has none; topic and group patterns are
    /// 1 to 255 bytes of `[A-Za-z0-9._-*]`.
    ///
    /// # Errors
    /// [`InvalidAcl`] saying what is wrong.
    pub fn validate(&self) -> Result<(), InvalidAcl> {
        let ok = match self.resource_type {
            ResourceType::Cluster => self.pattern.is_empty(),
            ResourceType::Topic | ResourceType::Group => {
                !self.pattern.is_empty()
                    && self.pattern.len() <= MAX_PATTERN_LEN
                    && self.pattern.bytes().all(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'*')
                    })
            }
        };
        if ok {
            Ok(())
        } else {
            Err(InvalidAcl(format!(
                "invalid {} pattern {:?} (1 to {MAX_PATTERN_LEN} of [A-Za-z0-9._-*]; none for cluster)",
                self.resource_type.name(),
                self.pattern
            )))
        }
    }

    /// Whether the resource covers `name` of type `resource_type`.
    pub fn matches(&self, resource_type: ResourceType, name: &str) -> bool {
        self.resource_type == resource_type
            && (resource_type == ResourceType::Cluster || glob_matches(&self.pattern, name))
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.resource_type {
            ResourceType::Cluster => f.write_str("cluster"),
            t => write!(f, "{}:{}", t.name(), self.pattern),
        }
    }
}

impl FromStr for Resource {
    type Err = InvalidAcl;

    fn from_str(s: &str) -> Result<Resource, InvalidAcl> {
        let resource = match s.split_once(':') {
            None if s == "cluster" => Resource {
                resource_type: ResourceType::Cluster,
                pattern: String::new(),
            },
            Some(("topic", p)) => Resource {
                resource_type: ResourceType::Topic,
                pattern: p.to_owned(),
            },
            Some(("group", p)) => Resource {
                resource_type: ResourceType::Group,
                pattern: p.to_owned(),
            },
            _ => {
                return Err(InvalidAcl(format!(
                    "unknown resource {s:?} (topic:PATTERN, group:PATTERN or cluster)"
                )));
            }
        };
        resource.validate()?;
        Ok(resource)
    }
}

/// Whether `pattern` matches `name`, where `*` in the pattern matches any run
/// of characters (the empty one too) and every other byte itself. Linear in
/// practice: the classic backtrack-to-last-star loop, no allocation.
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(c) if Some(c) == n.get(ni) => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|c| *c == b'*'))
}

/// One ACL entry: `user` holds `permission` on `resource`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclEntry {
    pub user: String,
    pub resource: Resource,
    pub permission: Permission,
}

impl Default for AclEntry {
    fn default() -> Self {
        AclEntry {
            user: String::new(),
            resource: Resource {
                resource_type: ResourceType::Cluster,
                pattern: String::new(),
            },
            permission: Permission::Read,
        }
    }
}

impl fmt::Display for AclEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.user, self.resource, self.permission)
    }
}

fn put_acl(dst: &mut BytesMut, acl: &AclEntry) {
    put_string(dst, &acl.user);
    dst.put_u8(acl.resource.resource_type.wire());
    put_string(dst, &acl.resource.pattern);
    dst.put_u8(acl.permission.wire());
}

fn read_acl(r: &mut WireReader) -> Result<AclEntry> {
    Ok(AclEntry {
        user: r.string("user")?,
        resource: Resource {
            resource_type: ResourceType::from_wire(r.u8("resource_type")?)?,
            pattern: r.string("pattern")?,
        },
        permission: Permission::from_wire(r.u8("permission")?)?,
    })
}

/// Smallest encoded [`AclEntry`]: two empty strings and two bytes.
const MIN_ACL_BYTES: usize = 2 + 1 + 2 + 1;

/// CreateAcl request: grant one entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreateAclRequest {
    pub acl: AclEntry,
}

impl Request for CreateAclRequest {
    const API_KEY: ApiKey = ApiKey::CreateAcl;
    type Response = EmptyResponse;
}

impl Body for CreateAclRequest {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_acl(dst, &self.acl);
        Ok(())
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        Ok(CreateAclRequest { acl: read_acl(r)? })
    }
}

/// DeleteAcl request: revoke one entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeleteAclRequest {
    pub acl: AclEntry,
}

impl Request for DeleteAclRequest {
    const API_KEY: ApiKey = ApiKey::DeleteAcl;
    type Response = EmptyResponse;
}

impl Body for DeleteAclRequest {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_acl(dst, &self.acl);
        Ok(())
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        Ok(DeleteAclRequest { acl: read_acl(r)? })
    }
}

/// ListAcls request: one user's entries, or everyone's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListAclsRequest {
    pub user: Option<String>,
}

impl Request for ListAclsRequest {
    const API_KEY: ApiKey = ApiKey::ListAcls;
    type Response = ListAclsResponse;
}

impl Body for ListAclsRequest {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_nullable_string(dst, self.user.as_deref());
        Ok(())
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        Ok(ListAclsRequest {
            user: r.nullable_string("user")?,
        })
    }
}

/// ListAcls response, sorted by user, resource, permission.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListAclsResponse {
    pub acls: Vec<AclEntry>,
}

impl Body for ListAclsResponse {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_array(dst, &self.acls, |dst, a| {
            put_acl(dst, a);
            Ok(())
        })
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        Ok(ListAclsResponse {
            acls: r.array("acls", MIN_ACL_BYTES, read_acl)?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::api::tests::round_trip;

    fn acl(user: &str, resource: &str, permission: Permission) -> AclEntry {
        AclEntry {
            user: user.into(),
            resource: resource.parse().unwrap(),
            permission,
        }
    }

    #[test]
    fn bodies_round_trip() {
        round_trip(&AuthenticateRequest {
            mechanism: "SCRAM-SHA-256".into(),
            auth_bytes: Bytes::from_static(b"n,,n=user,r=abc"),
        });
        round_trip(&AuthenticateResponse {
            auth_bytes: Bytes::new(),
        });
        round_trip(&CreateUserRequest {
            name: "alice".into(),
            superuser: true,
            salt: Bytes::from_static(b"0123456789abcdef"),
            iterations: 4096,
            stored_key: [7; 32],
            server_key: [9; 32],
        });
        round_trip(&DeleteUserRequest { name: "bob".into() });
        round_trip(&ListUsersRequest);
        round_trip(&ListUsersResponse {
            users: vec![UserListing {
                name: "alice".into(),
                superuser: true,
            }],
        });
        let entry = acl("bob", "topic:orders.*", Permission::Write);
        round_trip(&CreateAclRequest { acl: entry.clone() });
        round_trip(&DeleteAclRequest { acl: entry.clone() });
        round_trip(&ListAclsRequest { user: None });
        round_trip(&ListAclsRequest {
            user: Some("bob".into()),
        });
        round_trip(&ListAclsResponse {
            acls: vec![entry, acl("bob", "cluster", Permission::Admin)],
        });
    }

    #[test]
    fn out_of_range_bytes_are_errors() {
        let mut b = BytesMut::new();
        CreateAclRequest {
            acl: acl("u", "cluster", Permission::Read),
        }
        .encode(&mut b)
        .unwrap();
        let mut bad_type = b.clone();
        bad_type[3] = 3;
        assert!(crate::api::decode::<CreateAclRequest>(bad_type.freeze()).is_err());
        let mut bad_perm = b.clone();
        let last = bad_perm.len() - 1;
        bad_perm[last] = 3;
        assert!(crate::api::decode::<CreateAclRequest>(bad_perm.freeze()).is_err());
        let mut user = BytesMut::new();
        CreateUserRequest {
            name: "u".into(),
            ..Default::default()
        }
        .encode(&mut user)
        .unwrap();
        user[3] = 2; // superuser must be 0 or 1
        assert!(crate::api::decode::<CreateUserRequest>(user.freeze()).is_err());
    }

    #[test]
    fn resources_and_permissions_parse_and_print() {
        for text in ["topic:orders", "group:g-*", "cluster", "topic:*"] {
            assert_eq!(text.parse::<Resource>().unwrap().to_string(), text);
        }
        for bad in ["topic:", "cluster:x", "queue:q", "topic:a b", "group:a\0"] {
            assert!(bad.parse::<Resource>().is_err(), "{bad}");
        }
        for p in Permission::ALL {
            assert_eq!(p.name().parse::<Permission>().unwrap(), p);
        }
        assert!("owner".parse::<Permission>().is_err());
    }

    #[test]
    fn admin_implies_read_and_write_but_write_not_read() {
        assert!(Permission::Admin.allows(Permission::Read));
        assert!(Permission::Admin.allows(Permission::Write));
        assert!(!Permission::Write.allows(Permission::Read));
        assert!(!Permission::Read.allows(Permission::Write));
        assert!(!Permission::Read.allows(Permission::Admin));
    }

    #[test]
    fn globs_match_like_a_model() {
        for (pattern, name, expected) in [
            ("orders", "orders", true),
            ("orders", "orders2", false),
            ("orders*", "orders", true),
            ("orders*", "orders.eu", true),
            ("*", "", true),
            ("*", "anything", true),
            ("*.eu", "orders.eu", true),
            ("*.eu", "orders.us", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("a**c", "abc", true),
            ("", "", true),
            ("", "a", false),
            ("a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false),
        ] {
            assert_eq!(glob_matches(pattern, name), expected, "{pattern} {name}");
        }
        let r: Resource = "topic:orders.*".parse().unwrap();
        assert!(r.matches(ResourceType::Topic, "orders.eu"));
        assert!(!r.matches(ResourceType::Group, "orders.eu"));
        let c: Resource = "cluster".parse().unwrap();
        assert!(c.matches(ResourceType::Cluster, ""));
    }

    #[test]
    fn user_names_are_checked() {
        assert!(valid_user_name("alice"));
        assert!(valid_user_name("svc.orders-1@eu"));
        assert!(!valid_user_name(""));
        assert!(!valid_user_name("a b"));
        assert!(!valid_user_name("a,b"));
        assert!(!valid_user_name(&"a".repeat(256)));
    }
}
