//! The native protocol's requests and responses: one module per api, each body
//! with its byte layout drawn in its docs (docs/PROTOCOL.md collects them).
//!
//! Every request type implements [`Request`] (its api key, version and response
//! type); every body implements [`Body`]. Decoding goes through [`decode`],
//! which refuses trailing bytes, so a body is accepted only if every byte of it
//! was understood. When a response header carries a non-zero error code the
//! body is an [`ErrorBody`] instead of the api's response.
//!
//! # Layout
//! - [`api_versions`]: ApiVersions, version negotiation.
//! - [`metadata`]: Metadata, the broker list and topic partition counts.
//! - [`topics`]: CreateTopic, DeleteTopic, DescribeTopic, ListTopics.
//! - [`produce`]: Produce (acks, routing by key).
//! - [`fetch`]: Fetch (the response's record bytes may go out by `sendfile`).
//! - [`list_offsets`]: ListOffsets (earliest, latest, by timestamp).
//! - [`groups`]: JoinGroup, Heartbeat, LeaveGroup, CommitOffsets, FetchOffsets,
//!   ListGroups, DescribeGroup.
//! - [`bindings`]: Bind, Unbind, and a topic's [`RoutingMode`](bindings::RoutingMode).
//! - [`share`]: ShareFetch and ShareAck (share groups: per-record locks and acks).
//! - [`auth`]: Authenticate, and the user and ACL management apis.

use bytes::{Bytes, BytesMut};

use crate::error::{Error, Result};
use crate::wire::{WireReader, put_string};

pub mod api_versions;
pub mod auth;
pub mod bindings;
pub mod fetch;
pub mod groups;
pub mod list_offsets;
pub mod metadata;
pub mod produce;
pub mod share;
pub mod topics;

/// An api key of the native protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum ApiKey {
    ApiVersions = 0,
    Metadata = 1,
    CreateTopic = 2,
    DeleteTopic = 3,
    DescribeTopic = 4,
    ListTopics = 5,
    Produce = 6,
    Fetch = 7,
    ListOffsets = 8,
    JoinGroup = 9,
    Heartbeat = 10,
    LeaveGroup = 11,
    CommitOffsets = 12,
    FetchOffsets = 13,
    Bind = 14,
    Unbind = 15,
    ShareFetch = 16,
    ShareAck = 17,
    ListGroups = 18,
    DescribeGroup = 19,
    Authenticate = 20,
    CreateUser = 21,
    DeleteUser = 22,
    ListUsers = 23,
    CreateAcl = 24,
    DeleteAcl = 25,
    ListAcls = 26,
}

impl ApiKey {
    /// Every api key with the versions this build supports: `(key, min, max)`.
    pub const SUPPORTED: &'static [(ApiKey, u16, u16)] = &[
        (ApiKey::ApiVersions, 0, 0),
        (ApiKey::Metadata, 0, 0),
        (ApiKey::CreateTopic, 0, 0),
        (ApiKey::DeleteTopic, 0, 0),
        (ApiKey::DescribeTopic, 0, 0),
        (ApiKey::ListTopics, 0, 0),
        (ApiKey::Produce, 0, 0),
        (ApiKey::Fetch, 0, 0),
        (ApiKey::ListOffsets, 0, 0),
        (ApiKey::JoinGroup, 0, 0),
        (ApiKey::Heartbeat, 0, 0),
        (ApiKey::LeaveGroup, 0, 0),
        (ApiKey::CommitOffsets, 0, 0),
        (ApiKey::FetchOffsets, 0, 0),
        (ApiKey::Bind, 0, 0),
        (ApiKey::Unbind, 0, 0),
        (ApiKey::ShareFetch, 0, 0),
        (ApiKey::ShareAck, 0, 0),
        (ApiKey::ListGroups, 0, 0),
        (ApiKey::DescribeGroup, 0, 0),
        (ApiKey::Authenticate, 0, 0),
        (ApiKey::CreateUser, 0, 0),
        (ApiKey::DeleteUser, 0, 0),
        (ApiKey::ListUsers, 0, 0),
        (ApiKey::CreateAcl, 0, 0),
        (ApiKey::DeleteAcl, 0, 0),
        (ApiKey::ListAcls, 0, 0),
    ];

    /// The key's name as docs/PROTOCOL.md spells it.
    pub fn name(self) -> &'static str {
        match self {
            ApiKey::ApiVersions => "ApiVersions",
            ApiKey::Metadata => "Metadata",
            ApiKey::CreateTopic => "CreateTopic",
            ApiKey::DeleteTopic => "DeleteTopic",
            ApiKey::DescribeTopic => "DescribeTopic",
            ApiKey::ListTopics => "ListTopics",
            ApiKey::Produce => "Produce",
            ApiKey::Fetch => "Fetch",
            ApiKey::ListOffsets => "ListOffsets",
            ApiKey::JoinGroup => "JoinGroup",
            ApiKey::Heartbeat => "Heartbeat",
            ApiKey::LeaveGroup => "LeaveGroup",
            ApiKey::CommitOffsets => "CommitOffsets",
            ApiKey::FetchOffsets => "FetchOffsets",
            ApiKey::Bind => "Bind",
            ApiKey::Unbind => "Unbind",
            ApiKey::ListGroups => "ListGroups",
            ApiKey::DescribeGroup => "DescribeGroup",
            ApiKey::ShareFetch => "ShareFetch",
            ApiKey::ShareAck => "ShareAck",
            ApiKey::Authenticate => "Authenticate",
            ApiKey::CreateUser => "CreateUser",
            ApiKey::DeleteUser => "DeleteUser",
            ApiKey::ListUsers => "ListUsers",
            ApiKey::CreateAcl => "CreateAcl",
            ApiKey::DeleteAcl => "DeleteAcl",
            ApiKey::ListAcls => "ListAcls",
        }
    }

    /// Checks that `version` of this key is supported.
    ///
    /// # Errors
    /// [`Error::UnsupportedVersion`].
    pub fn check_version(self, version: u16) -> Result<()> {
        let supported = ApiKey::SUPPORTED
            .iter()
            .any(|(k, min, max)| *k == self && (*min..=*max).contains(&version));
        if supported {
            Ok(())
        } else {
            Err(Error::UnsupportedVersion {
                api_key: self as u16,
                version,
            })
        }
    }
}

impl TryFrom<u16> for ApiKey {
    type Error = Error;

    fn try_from(v: u16) -> Result<ApiKey> {
        Ok(match v {
            0 => ApiKey::ApiVersions,
            1 => ApiKey::Metadata,
            2 => ApiKey::CreateTopic,
            3 => ApiKey::DeleteTopic,
            4 => ApiKey::DescribeTopic,
            5 => ApiKey::ListTopics,
            6 => ApiKey::Produce,
            7 => ApiKey::Fetch,
            8 => ApiKey::ListOffsets,
            9 => ApiKey::JoinGroup,
            10 => ApiKey::Heartbeat,
            11 => ApiKey::LeaveGroup,
            12 => ApiKey::CommitOffsets,
            13 => ApiKey::FetchOffsets,
            14 => ApiKey::Bind,
            15 => ApiKey::Unbind,
            18 => ApiKey::ListGroups,
            19 => ApiKey::DescribeGroup,
            16 => ApiKey::ShareFetch,
            17 => ApiKey::ShareAck,
            20 => ApiKey::Authenticate,
            21 => ApiKey::CreateUser,
            22 => ApiKey::DeleteUser,
            23 => ApiKey::ListUsers,
            24 => ApiKey::CreateAcl,
            25 => ApiKey::DeleteAcl,
            26 => ApiKey::ListAcls,
            other => return Err(Error::UnknownApiKey(other)),
        })
    }
}

/// A request or response body.
pub trait Body: Sized {
    /// Appends the body's bytes to `dst`.
    ///
    /// # Errors
    /// A field too large for its length prefix.
    fn encode(&self, dst: &mut BytesMut) -> Result<()>;

    /// Reads the body's fields; [`decode`] also checks nothing is left over.
    ///
    /// # Errors
    /// Any malformation, as a distinct [`Error`].
    fn read(r: &mut WireReader) -> Result<Self>;
}

/// A request body: which api it belongs to and what it is answered with.
pub trait Request: Body {
    const API_KEY: ApiKey;
    const VERSION: u16 = 0;
    type Response: Body;
}

/// Decodes a whole body, refusing trailing bytes.
///
/// # Errors
/// As [`Body::read`], plus [`Error::TrailingBytes`].
pub fn decode<T: Body>(body: Bytes) -> Result<T> {
    let mut r = WireReader::new(body);
    let value = T::read(&mut r)?;
    r.finish("body")?;
    Ok(value)
}

/// Encodes a body into a fresh buffer.
///
/// # Errors
/// As [`Body::encode`].
pub fn encode<T: Body>(value: &T) -> Result<Bytes> {
    let mut dst = BytesMut::new();
    value.encode(&mut dst)?;
    Ok(dst.freeze())
}

/// The body of a response whose header error code is not `NONE`.
///
/// ```text
/// message: string   human-readable, for logs and CLI output
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorBody {
    pub message: String,
}

impl Body for ErrorBody {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_string(dst, &self.message);
        Ok(())
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        Ok(ErrorBody {
            message: r.string("message")?,
        })
    }
}

/// Implements [`Body`] for a request with no fields.
macro_rules! empty_body {
    ($t:ty) => {
        impl $crate::api::Body for $t {
            fn encode(&self, _dst: &mut bytes::BytesMut) -> $crate::Result<()> {
                Ok(())
            }

            fn read(_r: &mut $crate::wire::WireReader) -> $crate::Result<Self> {
                Ok(Self)
            }
        }
    };
}
pub(crate) use empty_body;

#[cfg(test)]
pub(crate) mod tests {
    #![expect(clippy::unwrap_used)]
    use super::*;

    /// Encodes, decodes and compares; then checks every strict prefix of the
    /// encoding fails to decode (no panic, no success on a cut body).
    pub(crate) fn round_trip<T: Body + PartialEq + std::fmt::Debug>(value: &T) {
        let bytes = encode(value).unwrap();
        let back: T = decode(bytes.clone()).unwrap();
        assert_eq!(&back, value);
        for cut in 0..bytes.len() {
            assert!(decode::<T>(bytes.slice(..cut)).is_err(), "prefix {cut}");
        }
        let mut longer = BytesMut::from(&bytes[..]);
        longer.extend_from_slice(&[0]);
        assert!(decode::<T>(longer.freeze()).is_err());
    }

    #[test]
    fn api_keys_round_trip_and_unknown_ones_are_errors() {
        for (key, min, max) in ApiKey::SUPPORTED {
            assert_eq!(ApiKey::try_from(*key as u16).unwrap(), *key);
            assert!(key.check_version(*min).is_ok());
            assert!(key.check_version(max + 1).is_err());
        }
        assert!(matches!(
            ApiKey::try_from(999),
            Err(Error::UnknownApiKey(999))
        ));
    }

    #[test]
    fn error_body_round_trips() {
        round_trip(&ErrorBody {
            message: "no such topic".into(),
        });
    }
}
