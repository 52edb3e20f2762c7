//! The metadata-store keys and values of users (prefix `u`) and ACL entries
//! (prefix `a`), their only owner. [`crate::auth`] loads and changes them
//! through these.
//!
//! ```text
//! u user                              value: the user record below
//! a user \0 resource \0 permission    value: empty (the ACL entry exists)
//!
//! user record, big-endian:
//! +------------+--------------+----------------+--------------+------+------------------+------------------+
//! | version u8 | superuser u8 | iterations u32 | salt_len u16 | salt | stored_key [32]  | server_key [32]  |
//! |    = 1     |   0 or 1     |                |              |      |                  |                  |
//! +------------+--------------+----------------+--------------+------+------------------+------------------+
//! ```
//!
//! `resource` is the text form of a [`Resource`] (`topic:PATTERN`,
//! `group:PATTERN` or `cluster`), `permission` its name (`read`, `write`,
//! `admin`). User names and patterns never hold a NUL byte, so a key splits
//! unambiguously. The store's CRCs cover
//! the bytes; a record that does not parse is skipped by the loader.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use warren_protocol::api::auth::{AclEntry, Permission, Resource, valid_user_name};
use warren_protocol::scram::{KEY_BYTES, ScramCredential};

use super::keys::{self, ACL, USER};

/// The prefix of every user key.
pub const USERS: &[u8] = &[USER];
/// The prefix of every ACL key.
pub const ACLS: &[u8] = &[ACL];

/// Version byte of a stored user record.
const USER_RECORD_VERSION: u8 = 1;
/// Bytes of a user record before its salt.
const USER_RECORD_HEAD_BYTES: usize = 1 + 1 + 4 + 2;

/// The store key of a user.
pub fn user_key(name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(name.len() + 1);
    key.push(USER);
    key.extend_from_slice(name.as_bytes());
    key
}

/// The store key of an ACL entry.
pub fn acl_key(acl: &AclEntry) -> Vec<u8> {
    let resource = acl.resource.to_string();
    let permission = acl.permission.name();
    let mut key = keys::with_fields(
        ACL,
        &[acl.user.as_str(), resource.as_str()],
        permission.len(),
    );
    key.extend_from_slice(permission.as_bytes());
    key
}

/// Reads a key written by [`acl_key`]; `None` for anything else (or a user
/// name that is not valid).
pub fn parse_acl_key(raw: &[u8]) -> Option<AclEntry> {
    let text = std::str::from_utf8(raw.strip_prefix(ACLS)?).ok()?;
    let mut parts = text.split(char::from(keys::SEPARATOR));
    let user = parts.next()?;
    let resource: Resource = parts.next()?.parse().ok()?;
    let permission: Permission = parts.next()?.parse().ok()?;
    if parts.next().is_some() || !valid_user_name(user) {
        return None;
    }
    Some(AclEntry {
        user: user.to_owned(),
        resource,
        permission,
    })
}

/// A user as stored: the name from its key, the rest from its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredUser {
    pub name: String,
    pub superuser: bool,
    pub credential: ScramCredential,
}

/// The record of a user (see the module docs). The credential's salt must be
/// at most `u16::MAX` bytes (`ScramCredential::validate` bounds it at 256).
pub fn encode_user(superuser: bool, credential: &ScramCredential) -> Vec<u8> {
    let c = credential;
    let mut out = BytesMut::with_capacity(USER_RECORD_HEAD_BYTES + c.salt.len() + 2 * KEY_BYTES);
    out.put_u8(USER_RECORD_VERSION);
    out.put_u8(u8::from(superuser));
    out.put_u32(c.iterations);
    // validate() bounds the salt at 256 bytes, so it fits a u16.
    out.put_u16(c.salt.len() as u16);
    out.put_slice(&c.salt);
    out.put_slice(&c.stored_key);
    out.put_slice(&c.server_key);
    out.to_vec()
}

/// Reads a user from its key ([`user_key`]) and record ([`encode_user`]);
/// `None` if either does not parse or the credential is not valid.
pub fn parse_user(key: &[u8], mut value: Bytes) -> Option<StoredUser> {
    let name = std::str::from_utf8(key.strip_prefix(USERS)?).ok()?;
    if !valid_user_name(name)
        || value.remaining() < USER_RECORD_HEAD_BYTES
        || value.get_u8() != USER_RECORD_VERSION
    {
        return None;
    }
    let superuser = match value.get_u8() {
        0 => false,
        1 => true,
        _ => return None,
    };
    let iterations = value.get_u32();
    let salt_len = usize::from(value.get_u16());
    if value.remaining() != salt_len + 2 * KEY_BYTES {
        return None;
    }
    let salt = value.split_to(salt_len).to_vec();
    let mut stored_key = [0u8; KEY_BYTES];
    value.copy_to_slice(&mut stored_key);
    let mut server_key = [0u8; KEY_BYTES];
    value.copy_to_slice(&mut server_key);
    let credential = ScramCredential {
        salt,
        iterations,
        stored_key,
        server_key,
    };
    credential.validate().ok()?;
    Some(StoredUser {
        name: name.to_owned(),
        superuser,
        credential,
    })
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn credential() -> ScramCredential {
        ScramCredential {
            salt: vec![7; 16],
            iterations: 4096,
            stored_key: [1; KEY_BYTES],
            server_key: [2; KEY_BYTES],
        }
    }

    fn acl(user: &str, resource: &str, permission: Permission) -> AclEntry {
        AclEntry {
            user: user.into(),
            resource: resource.parse().unwrap(),
            permission,
        }
    }

    #[test]
    fn malformed_records_do_not_parse() {
        let user = StoredUser {
            name: "a".into(),
            superuser: true,
            credential: ScramCredential::derive("p", b"0123456789abcdef", 4096).unwrap(),
        };
        let good = encode_user(user.superuser, &user.credential);
        assert_eq!(
            parse_user(&user_key("a"), Bytes::from(good.clone())),
            Some(user)
        );
        for cut in 0..good.len() {
            assert!(parse_user(&user_key("a"), Bytes::copy_from_slice(&good[..cut])).is_none());
        }
        assert!(parse_user(&user_key("a b"), Bytes::from(good)).is_none());
        let entry = acl("bob", "topic:o*", Permission::Admin);
        assert_eq!(parse_acl_key(&acl_key(&entry)), Some(entry));
        for bad in [
            &b"a"[..],
            b"abob",
            b"abob\0topic:x",
            b"abob\0queue:x\0read",
            b"abob\0cluster\0own",
            b"abob\0cluster\0read\0",
        ] {
            assert!(parse_acl_key(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn a_user_record_keeps_its_bytes() {
        let mut want = vec![1, 0, 0, 0, 0x10, 0, 0, 16];
        want.extend_from_slice(&[7; 16]);
        want.extend_from_slice(&[1; KEY_BYTES]);
        want.extend_from_slice(&[2; KEY_BYTES]);
        assert_eq!(encode_user(false, &credential()), want);
    }
}
