//! Routing (DESIGN.md, "Routing: RabbitMQ semantics on a log"): a topic's
//! [`RoutingMode`], and Bind (key 14) / Unbind (15), which add and remove the
//! bindings that `direct` and `topic` topics route by.
//!
//! ```text
//! Bind    request  = topic: string | key: string | partitions: array<u32>
//!         response = (empty)
//! Unbind  request  = topic: string | key: string | partitions: array<u32>
//!         response = (empty)
//! ```
//!
//! - `key` is the exact routing key (`direct`) or a pattern (`topic`: words
//!   split on `.`, `*` = one word, `#` = zero or more), at most 255 bytes.
//! - Bind binds `key` to every partition listed; binding one that exists
//!   changes nothing. Unbind removes them; removing one that does not exist
//!   changes nothing. The broker answers once the change is durable.
//! - Errors (in the header, with an [`ErrorBody`](super::ErrorBody)):
//!   `UNKNOWN_TOPIC`; `INVALID_BINDING` (the topic routes by `hash`, an empty
//!   `partitions`, a partition the topic does not have, a key over 255 bytes);
//!   `DISK_FULL`, `STORAGE_ERROR`.
//!
//! A routing mode travels as a `u8` in Metadata ([`RoutingMode::wire`]) and as
//! its name in topic configs (`routing = hash | direct | topic`).

use std::fmt;
use std::str::FromStr;

use bytes::{BufMut, BytesMut};

use super::topics::EmptyResponse;
use super::{ApiKey, Body, Request};
use crate::error::{Error, Result};
use crate::wire::{WireReader, put_array, put_string};

/// How a topic places a batch produced with `partition = -1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RoutingMode {
    /// `partition = murmur2(routing key) mod partitions`; no key: round-robin.
    #[default]
    Hash,
    /// Bindings map an exact routing key to partitions.
    Direct,
    /// Bindings map a pattern (`*`, `#`) to partitions, by RabbitMQ's topic
    /// exchange rules.
    Topic,
}

impl RoutingMode {
    /// Every mode, in wire order.
    pub const ALL: [RoutingMode; 3] = [RoutingMode::Hash, RoutingMode::Direct, RoutingMode::Topic];

    /// The mode's name, as topic configs spell it: `hash`, `direct`, `topic`.
    pub fn name(self) -> &'static str {
        match self {
            RoutingMode::Hash => "hash",
            RoutingMode::Direct => "direct",
            RoutingMode::Topic => "topic",
        }
    }

    /// The mode's `u8` on the wire: 0 hash, 1 direct, 2 topic.
    pub fn wire(self) -> u8 {
        match self {
            RoutingMode::Hash => 0,
            RoutingMode::Direct => 1,
            RoutingMode::Topic => 2,
        }
    }

    /// The mode of a wire `u8`.
    ///
    /// # Errors
    /// [`Error::InvalidField`] for a value that names no mode.
    pub fn from_wire(value: u8) -> Result<RoutingMode> {
        RoutingMode::ALL
            .into_iter()
            .find(|m| m.wire() == value)
            .ok_or(Error::InvalidField {
                field: "routing mode",
                value: i64::from(value),
            })
    }

    /// True for the modes that route by bindings (`direct`, `topic`).
    pub fn uses_bindings(self) -> bool {
        self != RoutingMode::Hash
    }
}

impl fmt::Display for RoutingMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A routing mode name that is not `hash`, `direct` or `topic`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown routing mode {0:?} (known: hash, direct, topic)")]
pub struct UnknownRoutingMode(pub String);

impl FromStr for RoutingMode {
    type Err = UnknownRoutingMode;

    fn from_str(s: &str) -> Result<RoutingMode, UnknownRoutingMode> {
        RoutingMode::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| UnknownRoutingMode(s.to_owned()))
    }
}

/// The body shared by Bind and Unbind.
fn put_binding(dst: &mut BytesMut, topic: &str, key: &str, partitions: &[u32]) -> Result<()> {
    put_string(dst, topic);
    put_string(dst, key);
    put_array(dst, partitions, |dst, p| {
        dst.put_u32(*p);
        Ok(())
    })
}

fn read_binding(r: &mut WireReader) -> Result<(String, String, Vec<u32>)> {
    Ok((
        r.string("topic")?,
        r.string("key")?,
        r.array("partitions", 4, |r| r.u32("partition"))?,
    ))
}

/// Bind request: bind `key` to `partitions` of `topic`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BindRequest {
    pub topic: String,
    /// The routing key (`direct`) or pattern (`topic`).
    pub key: String,
    pub partitions: Vec<u32>,
}

impl Request for BindRequest {
    const API_KEY: ApiKey = ApiKey::Bind;
    type Response = EmptyResponse;
}

impl Body for BindRequest {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_binding(dst, &self.topic, &self.key, &self.partitions)
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        let (topic, key, partitions) = read_binding(r)?;
        Ok(BindRequest {
            topic,
            key,
            partitions,
        })
    }
}

/// Unbind request: remove the bindings of `key` to `partitions` of `topic`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnbindRequest {
    pub topic: String,
    /// The routing key (`direct`) or pattern (`topic`), as bound.
    pub key: String,
    pub partitions: Vec<u32>,
}

impl Request for UnbindRequest {
    const API_KEY: ApiKey = ApiKey::Unbind;
    type Response = EmptyResponse;
}

impl Body for UnbindRequest {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_binding(dst, &self.topic, &self.key, &self.partitions)
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        let (topic, key, partitions) = read_binding(r)?;
        Ok(UnbindRequest {
            topic,
            key,
            partitions,
        })
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used)]
    use super::*;
    use crate::api::tests::round_trip;

    #[test]
    fn round_trips() {
        round_trip(&BindRequest {
            topic: "orders".into(),
            key: "orders.*.eu".into(),
            partitions: vec![0, 3],
        });
        round_trip(&UnbindRequest {
            topic: "orders".into(),
            key: String::new(),
            partitions: vec![],
        });
    }

    #[test]
    fn routing_modes_parse_print_and_travel_as_u8() {
        for mode in RoutingMode::ALL {
            assert_eq!(mode.name().parse::<RoutingMode>().unwrap(), mode);
            assert_eq!(mode.to_string(), mode.name());
            assert_eq!(RoutingMode::from_wire(mode.wire()).unwrap(), mode);
        }
        assert_eq!(RoutingMode::default(), RoutingMode::Hash);
        assert!(RoutingMode::from_wire(3).is_err());
        assert_eq!(
            "fanout".parse::<RoutingMode>().unwrap_err().to_string(),
            "unknown routing mode \"fanout\" (known: hash, direct, topic)"
        );
    }
}
