//! The broker's metadata: what it keeps about topics beyond their logs, and
//! the layout of its metadata store.
//!
//! Storage knows logs and files only: a topic file holds storage's fields and,
//! opaque to storage, the broker's settings, which this module types and
//! checks.
//!
//! # Layout
//! - [`topic`]: [`TopicConfig`], a topic as the broker sees it (storage's part plus
//!   routing and share settings), [`TopicRouting`], and their place in the topic file.
//! - [`share_config`]: [`ShareConfig`], a topic's share-group settings.

pub mod share_config;
pub mod topic;

pub use share_config::ShareConfig;
pub use topic::{TopicConfig, TopicRouting, check_stored};
