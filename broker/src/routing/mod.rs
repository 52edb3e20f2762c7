//! Routing: which partitions a produced batch goes to, by RabbitMQ's rules (DESIGN.md,
//! "Routing"). A topic's routing mode is fixed at creation:
//! - `hash`: the partitioner ([`warren_protocol::partition_for_key`]); no bindings.
//! - `direct`: [`DirectBindings`], exact routing key -> partitions (one hash lookup).
//! - `topic`: [`TopicBindings`], a trie of patterns -> partitions (rules below).
//!
//! [`Bindings`] holds whichever a topic needs; the broker's `Topic` keeps it behind an
//! `RwLock` that produce only reads. Bindings are persisted in the metadata store
//! (keys in [`crate::metadata::bindings`]) by Bind/Unbind and reloaded at start. A batch
//! whose key reaches several partitions is appended to each; one that reaches none
//! goes to the topic's alternate topic (routed by that topic's own mode, no further
//! hop) or is refused `UNROUTABLE`: that is the produce handler's part.
//!
//! # Layout
//! - `pattern`: [`TopicBindings`], [`validate_key`], [`MAX_KEY_BYTES`].
//! - `bindings`: [`Bindings`], [`DirectBindings`], [`BindingError`].
//!
//! # Topic patterns (RabbitMQ's topic exchange, exactly)
//! A routing key and a binding pattern are both split into *words* on `.`, as RabbitMQ's
//! `rabbit_db_topic_exchange:split_topic_key_binary/1` does:
//! - the empty string is zero words;
//! - otherwise every `.` separates two words, which may be empty: `"a."` is `["a", ""]`,
//!   `".a"` is `["", "a"]`, `".."` is three empty words. An empty word is an ordinary
//!   word (a `*` matches it).
//!
//! In a pattern, a word that is exactly `*` matches exactly one word, a word that is
//! exactly `#` matches zero or more words, and any other word, `a*` or `#b` included,
//! matches only itself. In a routing key every word is literal.
//!
//! | pattern  | matches                              | does not match       |
//! |----------|--------------------------------------|----------------------|
//! | `a.*.c`  | `a.b.c`, `a..c`                      | `a.c`, `a.b.b.c`     |
//! | `a.#`    | `a`, `a.b`, `a.b.c`                  | `b.a`, `""`          |
//! | `#.a.#`  | any key with the word `a`: `a`, `x.a.y` | `ab`, `x.y`       |
//! | `#`      | every key, `""` included             |                      |
//! | `*`      | any one-word key: `x`, `*`           | `""` (zero words), `x.y` |
//! | `*.#`    | every key but `""`                   | `""`                 |
//! | `""`     | only `""`                            | `a`, `.`             |
//! | `a*`     | only `a*`                            | `ab`                 |
//!
//! ```
//! use warren_broker::routing::TopicBindings;
//!
//! let mut bindings = TopicBindings::new();
//! bindings.insert("orders.*.eu", 0)?;
//! bindings.insert("orders.#", 1)?;
//! bindings.insert("#.refund", 2)?;
//!
//! let mut partitions = Vec::new();
//! bindings.route("orders.paid.eu", &mut partitions);
//! assert_eq!(partitions, [0, 1]);
//! bindings.route("orders.refund", &mut partitions);
//! assert_eq!(partitions, [1, 2]);
//! bindings.route("payments.refund", &mut partitions);
//! assert_eq!(partitions, [2]);
//! bindings.route("", &mut partitions);
//! assert!(partitions.is_empty());
//! # Ok::<(), warren_broker::routing::KeyError>(())
//! ```
//!
//! Keys are at most [`MAX_KEY_BYTES`] (255, RabbitMQ's limit); [`validate_key`] checks
//! one, and [`TopicBindings::insert`] refuses longer patterns.
//!
//! # Thread safety
//! [`TopicBindings`], [`DirectBindings`] and [`Bindings`] are plain data (`Send + Sync`)
//! with no lock of their own: the owner serializes `insert`/`remove`; `route` takes
//! `&self`.

mod bindings;
mod pattern;

pub use bindings::{BindingError, Bindings, DirectBindings};
pub use pattern::{KeyError, MAX_KEY_BYTES, TopicBindings, validate_key};

#[cfg(test)]
mod tests;
