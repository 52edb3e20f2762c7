//! The broker's metadata: what it keeps about topics beyond their logs, and
//! the layout of its metadata store.
//!
//! Storage knows logs and files only. A topic file holds storage's fields and,
//! opaque to storage, the broker's settings, which [`topic`] types and checks.
//! The metadata store ([`KvStore`](warren_storage::KvStore) in
//! `<data_dir>/meta/kv`, [`Shared::kv`](crate::state::Shared::kv)) holds
//! everything else; each key prefix has one owning module here that builds and
//! parses its keys (and its values, where they are simple), and no other module
//! builds or parses a key by hand:
//!
//! | key                                     | value                                   | owner            | used by |
//! |-----------------------------------------|-----------------------------------------|------------------|---------|
//! | `o` group `\0` topic `\0` partition     | committed offset, time, metadata        | [`offsets`]      | consumer groups |
//! | `b` topic `\0` key `\0` partition       | empty: the binding exists               | [`bindings`]     | routing ([`crate::topics`]) |
//! | `s` group `\0` topic `\0` partition     | a share-partition's state ([`crate::share::state`] encodes it) | [`share_state`] | share groups |
//! | `u` user                                | the user's SCRAM credential and superuser flag | [`users`] | [`crate::auth`] |
//! | `a` user `\0` resource `\0` permission  | empty: the ACL entry exists             | [`users`]        | [`crate::auth`] |
//!
//! One prefix byte per kind (`keys`), then text fields each ended by `\0`
//! (topic, group and user names never contain a NUL byte: topic names are
//! `[A-Za-z0-9._-]`, group names are checked by the coordinators), so a prefix
//! scan finds one group's or one topic's entries. `partition` is 4 bytes
//! big-endian, so a partition's keys sort numerically. The bytes of every key
//! are pinned by a test: existing stores must load.
//!
//! # Layout
//! - [`topic`]: [`TopicConfig`], a topic as the broker sees it (storage's part plus
//!   routing and share settings), [`TopicRouting`], and their place in the topic file.
//! - [`share_config`]: [`ShareConfig`], a topic's share-group settings.
//! - `keys`: the prefix bytes and the helpers the owners build keys with.
//! - [`offsets`]: committed-offset keys and values (`o`).
//! - [`bindings`]: binding keys (`b`).
//! - [`share_state`]: share-state keys (`s`).
//! - [`users`]: user keys and records (`u`), ACL keys (`a`).
//!
//! Pure functions and plain values: thread-safe.

use bytes::Bytes;
use warren_storage::{KvOp, KvStore, Offset};

pub mod bindings;
mod keys;
pub mod offsets;
pub mod share_config;
pub mod share_state;
pub mod topic;
pub mod users;

pub use share_config::ShareConfig;
pub use topic::{TopicConfig, TopicRouting, check_stored};

/// Most store operations in one apply when many keys are deleted at once
/// (a topic's offsets, an expired group's): 10 000 keys of at most about 520
/// bytes stay well inside the store's 16 MiB batch. Not configurable.
pub const DELETE_CHUNK: usize = 10_000;

/// Deletes `keys` from `kv` in applies of at most [`DELETE_CHUNK`]; returns
/// the last store offset written, if any.
///
/// # Errors
/// The store's; earlier chunks stay deleted.
pub fn delete_keys(kv: &KvStore, keys: &[Bytes]) -> warren_storage::Result<Option<Offset>> {
    let mut end = None;
    for chunk in keys.chunks(DELETE_CHUNK) {
        let ops: Vec<KvOp<'_>> = chunk.iter().map(|k| KvOp::Delete(k)).collect();
        end = Some(kv.apply(&ops)?);
    }
    Ok(end)
}
