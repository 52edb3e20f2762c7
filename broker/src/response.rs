//! An outgoing response frame as a list of chunks: bytes the broker built, and
//! file ranges the connection sends with `sendfile(2)`.

use bytes::{BufMut, Bytes, BytesMut};
use warren_protocol::ErrorCode;
use warren_protocol::api::{Body, ErrorBody};
use warren_protocol::frame::{LENGTH_FIELD_BYTES, RESPONSE_HEADER_BYTES};
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

/// A whole response frame, length prefix included.
pub struct Response {
    pub chunks: Vec<Chunk>,
    /// The request's outcome for `warren_requests_total`: the header's code,
    /// or, when that is `NONE`, the first partition-level error of a Produce,
    /// Fetch or ShareFetch (set with [`with_code`](Self::with_code)).
    pub code: ErrorCode,
}

impl Response {
    /// A successful frame whose body is `body` (bytes and file ranges, in
    /// order): the frame head (length, correlation id, `NONE`) goes in front.
    /// `code` is the outcome recorded in metrics (see [`Response::code`]).
    pub fn from_body_chunks(
        correlation_id: u32,
        mut body: Vec<Chunk>,
        code: ErrorCode,
    ) -> Response {
        let body_len: usize = body.iter().map(Chunk::len).sum();
        let mut head = BytesMut::with_capacity(LENGTH_FIELD_BYTES + RESPONSE_HEADER_BYTES);
        head.put_u32((RESPONSE_HEADER_BYTES + body_len) as u32);
        head.put_u32(correlation_id);
        head.put_u16(ErrorCode::NONE.0);
        body.insert(0, Chunk::Bytes(head.freeze()));
        Response { chunks: body, code }
    }

    /// A frame with an encoded body.
    pub fn frame(correlation_id: u32, error_code: ErrorCode, body: &[u8]) -> Response {
        let mut b =
            BytesMut::with_capacity(LENGTH_FIELD_BYTES + RESPONSE_HEADER_BYTES + body.len());
        b.put_u32((RESPONSE_HEADER_BYTES + body.len()) as u32);
        b.put_u32(correlation_id);
        b.put_u16(error_code.0);
        b.put_slice(body);
        Response {
            chunks: vec![Chunk::Bytes(b.freeze())],
            code: error_code,
        }
    }

    /// The same response, reporting `code` as its outcome in the metrics
    /// when the header says `NONE` (a partition-level error).
    pub fn with_code(mut self, code: ErrorCode) -> Response {
        if self.code == ErrorCode::NONE {
            self.code = code;
        }
        self
    }

    /// A successful response with `body`.
    pub fn ok<B: Body>(correlation_id: u32, body: &B) -> Response {
        let mut b = BytesMut::new();
        match body.encode(&mut b) {
            Ok(()) => Response::frame(correlation_id, ErrorCode::NONE, &b),
            Err(e) => Response::error(
                correlation_id,
                ErrorCode::UNKNOWN_SERVER_ERROR,
                format!("encoding the response: {e}"),
            ),
        }
    }

    /// A failed response: the header's code and an [`ErrorBody`].
    pub fn error(correlation_id: u32, code: ErrorCode, message: impl Into<String>) -> Response {
        let mut b = BytesMut::new();
        // Encoding an ErrorBody cannot fail (strings are cut to fit).
        let _ = ErrorBody {
            message: message.into(),
        }
        .encode(&mut b);
        Response::frame(correlation_id, code, &b)
    }
}
