//! The transport every front-end shares: one connection's reader and writer
//! (framing by a codec, pipelining, back-pressure, deadlines, the in-order
//! reply queue, `sendfile(2)` or the TLS copy), and the [`Reply`] a handler
//! gives for each request.
//!
//! - `connection`: the reader and writer tasks of one connection.
//! - `response`: a response as bytes and file ranges.

use std::time::Instant;

use tokio::task::JoinHandle;

pub mod connection;
pub mod response;

use response::Response;

/// What a request produces.
pub enum Reply {
    /// The response is ready.
    Now(Response),
    /// The response comes from a task (it waits for something), with the
    /// moment it was ready (the request-latency metric ends there, not when
    /// the connection's writer gets to it behind earlier replies).
    Later(JoinHandle<(Response, Instant)>),
    /// No response at all (produce with acks=0).
    None,
}

impl Reply {
    /// A reply from a future, run as its own task.
    pub fn later(f: impl Future<Output = Response> + Send + 'static) -> Reply {
        Reply::Later(tokio::spawn(async move {
            let response = f.await;
            (response, Instant::now())
        }))
    }
}
