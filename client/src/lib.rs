//! Placeholder: see the crate's issue.
