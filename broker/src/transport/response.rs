//! An outgoing message as a list of chunks: bytes the front-end built, and
//! file ranges the connection sends with `sendfile(2)`. How the chunks are
//! framed (length prefix, correlation id, header) is the front-end's
//! business: the transport writes them as they are.

use bytes::Bytes;
use warren_storage::FileSlice;

/// One piece of a response.
pub enum Chunk {
    Bytes(Bytes),
    /// Record bytes sent straight from the segment file.
    File(FileSlice),
}

impl Chunk {
    /// Bytes this chunk puts on the wire.
    pub fn len(&self) -> usize {
        match self {
            Chunk::Bytes(b) => b.len(),
            Chunk::File(f) => f.len as usize,
        }
    }
}

/// A whole response (or pushed message), framed by its front-end.
pub struct Response {
    pub chunks: Vec<Chunk>,
    /// The request's outcome for `warren_requests_total`, as the
    /// protocol's own numeric error code (0 is success, as in the native
    /// and Kafka protocols); the front-end's
    /// [`RequestLabels`](crate::metrics::RequestLabels) name it.
    pub outcome: u16,
}

impl Response {
    /// A response of `chunks` whose outcome is `outcome`.
    pub fn new(chunks: Vec<Chunk>, outcome: u16) -> Response {
        Response { chunks, outcome }
    }

    /// The same response, reporting `outcome` in the metrics when it so far
    /// reports success (a whole request that succeeded with a failure
    /// inside, such as a partition-level error).
    pub fn with_outcome(mut self, outcome: u16) -> Response {
        if self.outcome == 0 {
            self.outcome = outcome;
        }
        self
    }
}
