//! The keys of the broker's metadata store ([`Shared::kv`](crate::server::Shared::kv)),
//! one prefix byte per kind, then fields separated by `\0` (topic and group names
//! never contain a NUL byte: topic names are `[A-Za-z0-9._-]`, group names are
//! checked by the coordinator), so a prefix scan finds one group's or one topic's
//! entries:
//!
//! | key                                   | value                         | owner |
//! |---------------------------------------|-------------------------------|-------|
//! | `o` group `\0` topic `\0` partition   | committed offset (see `groups`) | consumer groups |
//! | `b` topic `\0` ...                    | a binding                     | routing |
//! | `s` group `\0` topic `\0` partition | a share-partition's state (see `share::state`) | share groups |
//!
//! `partition` is 4 bytes big-endian, so a partition's keys sort numerically.

/// Prefix of committed consumer-group offsets.
pub const OFFSET_PREFIX: u8 = b'o';
/// Prefix of topic bindings.
pub const BINDING_PREFIX: u8 = b'b';
/// Prefix of share-group state.
pub const SHARE_PREFIX: u8 = b's';
