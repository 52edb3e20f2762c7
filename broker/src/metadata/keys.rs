//! The prefix byte of every kind of key in the broker's metadata store, and the
//! helpers their owners build keys with. Only the owners (the sibling modules
//! named in the table of [`super`]) use them: nothing else in the broker builds
//! or parses a metadata-store key.
//!
//! A key is one prefix byte, then text fields each followed by a `\0`
//! separator (topic, group and user names never hold a NUL byte), then, for a
//! partition's key, the partition as 4 bytes big-endian, so a prefix scan
//! finds one group's or one topic's entries and a partition's keys sort
//! numerically. The bytes are a stored format: existing stores must load, so
//! they never change (the tests below pin each kind).

/// Prefix of committed consumer-group offsets ([`super::offsets`]).
pub(super) const OFFSET: u8 = b'o';
/// Prefix of topic bindings ([`super::bindings`]).
pub(super) const BINDING: u8 = b'b';
/// Prefix of share-group state ([`super::share_state`]).
pub(super) const SHARE_STATE: u8 = b's';
/// Prefix of users ([`super::users`]).
pub(super) const USER: u8 = b'u';
/// Prefix of ACL entries ([`super::users`]).
pub(super) const ACL: u8 = b'a';

/// Ends each text field of a key.
pub(super) const SEPARATOR: u8 = 0;

/// `prefix field \0 field \0 ...`, with room for `more` bytes after.
pub(super) fn with_fields(prefix: u8, fields: &[&str], more: usize) -> Vec<u8> {
    let len = 1 + fields.iter().map(|f| f.len() + 1).sum::<usize>() + more;
    let mut out = Vec::with_capacity(len);
    out.push(prefix);
    for field in fields {
        out.extend_from_slice(field.as_bytes());
        out.push(SEPARATOR);
    }
    out
}

/// `prefix field \0 field \0 partition(u32 BE)`.
pub(super) fn partition_key(prefix: u8, fields: &[&str], partition: u32) -> Vec<u8> {
    let mut out = with_fields(prefix, fields, 4);
    out.extend_from_slice(&partition.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use warren_protocol::api::auth::{AclEntry, Permission};

    use super::super::{bindings, offsets, share_state, users};
    use super::*;

    /// The bytes of one key of every kind, as stores written before this
    /// module existed hold them.
    #[test]
    fn every_kind_of_key_keeps_its_bytes() {
        let partition = 0x0102_0304;
        let cases: [(&str, Vec<u8>, &[u8]); 9] = [
            (
                "offset",
                offsets::key("billing", "orders", partition),
                b"obilling\0orders\0\x01\x02\x03\x04",
            ),
            (
                "offset group",
                offsets::group_prefix("billing"),
                b"obilling\0",
            ),
            ("offsets", offsets::ALL.to_vec(), b"o"),
            (
                "binding",
                bindings::key("orders", "eu.paris", partition),
                b"borders\0eu.paris\0\x01\x02\x03\x04",
            ),
            (
                "binding topic",
                bindings::topic_prefix("orders"),
                b"borders\0",
            ),
            (
                "share state",
                share_state::key("billing", "orders", partition),
                b"sbilling\0orders\0\x01\x02\x03\x04",
            ),
            ("user", users::user_key("alice"), b"ualice"),
            (
                "acl",
                users::acl_key(&AclEntry {
                    user: "alice".into(),
                    resource: "topic:orders*".parse().unwrap_or_else(|e| panic!("{e}")),
                    permission: Permission::Write,
                }),
                b"aalice\0topic:orders*\0write",
            ),
            ("acls", users::ACLS.to_vec(), b"a"),
        ];
        for (what, got, want) in cases {
            assert_eq!(got, want, "{what}: {:?}", String::from_utf8_lossy(&got));
        }
        assert_eq!(bindings::ALL, b"b");
        assert_eq!(share_state::ALL, b"s");
        assert_eq!(users::USERS, b"u");
    }

    /// A store whose entries were written byte by byte as today's broker
    /// writes them loads through every owner's loader.
    #[test]
    #[expect(clippy::unwrap_used, reason = "tests")]
    fn a_store_with_these_bytes_loads_through_every_owner() {
        use std::sync::Arc;

        use warren_protocol::api::auth::ResourceType;
        use warren_protocol::api::bindings::RoutingMode;
        use warren_storage::{KvConfig, KvOp, KvStore, LogConfig, LogManager, StorageMetrics};

        use super::super::{ShareConfig, TopicRouting, check_stored};
        use crate::auth::Auth;
        use crate::groups::coordinator::{StoredCommit, committed_offsets};
        use crate::share::{ShareGroups, ShareKey, ShareState};
        use crate::topics::Topics;

        let dir = tempfile::tempdir().unwrap();
        let kv = KvStore::open(&dir.path().join("kv"), KvConfig::default()).unwrap();
        let manager = LogManager::open_checked(
            &dir.path().join("data"),
            StorageMetrics::default(),
            &check_stored,
        )
        .unwrap();
        let topics = Topics::with_metrics(Arc::new(manager), false);
        let direct = TopicRouting {
            mode: RoutingMode::Direct,
            alternate_topic: None,
        };
        let log = LogConfig::default();
        topics
            .create(&kv, "orders", 2, log, direct, ShareConfig::default())
            .unwrap();

        let mut user = vec![1, 0, 0, 0, 0x10, 0, 0, 16];
        user.extend_from_slice(&[7; 16]);
        user.extend_from_slice(&[1; 32]);
        user.extend_from_slice(&[2; 32]);
        let offset = b"\0\0\0\0\0\0\0\0\x2a\0\0\0\0\0\0\0\x07\xff\xff\xff\xff";
        let share = ShareState::new(0).encode();
        let entries: [(&[u8], &[u8]); 5] = [
            (b"borders\0eu\0\0\0\0\x01", b""),
            (b"obilling\0orders\0\0\0\0\x01", offset),
            (b"sbilling\0orders\0\0\0\0\0", &share),
            (b"ualice", &user),
            (b"aalice\0topic:orders\0read", b""),
        ];
        let ops: Vec<KvOp<'_>> = entries.iter().map(|(k, v)| KvOp::Put(k, v)).collect();
        kv.apply_durable(&ops).unwrap();

        let loaded = topics.load_bindings(&kv).unwrap();
        assert_eq!((loaded.loaded, loaded.removed), (1, 0));
        let mut partitions = Vec::new();
        topics.get("orders").unwrap().route("eu", &mut partitions);
        assert_eq!(partitions, [1]);

        assert_eq!(
            committed_offsets(&kv),
            [StoredCommit {
                group: "billing".into(),
                topic: "orders".into(),
                partition: 1,
                offset: 42,
            }]
        );

        let share_groups = ShareGroups::load(&kv, &topics, &crate::BrokerConfig::default());
        let key = ShareKey {
            group: "billing".into(),
            topic: "orders".into(),
            partition: 0,
        };
        assert!(share_groups.get(&key).is_some());

        let auth = Auth::load(&kv);
        assert!(auth.has_users());
        let grants = auth.grants_for(Some("alice"));
        assert!(grants.allows(ResourceType::Topic, "orders", Permission::Read));
        assert!(!grants.allows(ResourceType::Topic, "orders", Permission::Write));
    }

    #[test]
    fn no_two_owners_share_a_prefix() {
        let prefixes = [OFFSET, BINDING, SHARE_STATE, USER, ACL];
        assert_eq!(
            prefixes.iter().collect::<BTreeSet<_>>().len(),
            prefixes.len()
        );
    }
}
