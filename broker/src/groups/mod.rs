//! Consumer groups: the target assignment ([`assignor`]), one group's
//! membership and incremental hand-over ([`state`]), and the coordinator that
//! serves the group apis over them and the metadata store ([`coordinator`]).

pub mod assignor;
pub mod coordinator;
pub mod state;

pub use coordinator::Coordinator;
