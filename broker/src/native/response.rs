//! Native framing of a [`Response`]: `frame_len: u32` (the header and
//! body), `correlation_id: u32`, `error_code: u16`, then the body (an
//! [`ErrorBody`] when the code is not `NONE`); see docs/PROTOCOL.md.

use bytes::{BufMut, BytesMut};
use warren_protocol::ErrorCode;
use warren_protocol::api::{Body, ErrorBody};
use warren_protocol::frame::{LENGTH_FIELD_BYTES, RESPONSE_HEADER_BYTES};

use crate::transport::response::{Chunk, Response};

/// Largest body a response frame can carry: its `frame_len` is a u32 that
/// also counts the response header. A body this large or larger is never
/// sent (its length would wrap); see [`frame_len`]. Not configurable.
pub const MAX_RESPONSE_BODY_BYTES: u64 = u32::MAX as u64 - RESPONSE_HEADER_BYTES as u64;

/// The `frame_len` field for a body of `body_len` bytes, or `None` when the
/// frame would not fit its u32 length (never wraps).
pub fn frame_len(body_len: u64) -> Option<u32> {
    if body_len > MAX_RESPONSE_BODY_BYTES {
        return None;
    }
    u32::try_from(body_len + RESPONSE_HEADER_BYTES as u64).ok()
}

/// The error answered instead of a response too large for a frame (a bug
/// in the handler's bounds, so it is logged).
fn too_large(correlation_id: u32, body_len: u64) -> Response {
    tracing::error!(
        body_len,
        "response too large for a frame; answering an error instead"
    );
    error(
        correlation_id,
        ErrorCode::UNKNOWN_SERVER_ERROR,
        format!("the response ({body_len} bytes) exceeds the largest frame"),
    )
}

/// A successful frame whose body is `body` (bytes and file ranges, in
/// order): the frame head (length, correlation id, `NONE`) goes in front.
/// `code` is the outcome recorded in metrics (see [`Response::outcome`]).
pub fn from_body_chunks(correlation_id: u32, mut body: Vec<Chunk>, code: ErrorCode) -> Response {
    let body_len: u64 = body.iter().map(|c| c.len() as u64).sum();
    let Some(len) = frame_len(body_len) else {
        return too_large(correlation_id, body_len);
    };
    let mut head = BytesMut::with_capacity(LENGTH_FIELD_BYTES + RESPONSE_HEADER_BYTES);
    head.put_u32(len);
    head.put_u32(correlation_id);
    head.put_u16(ErrorCode::NONE.0);
    body.insert(0, Chunk::Bytes(head.freeze()));
    Response::new(body, code.0)
}

/// A frame with an encoded body.
pub fn frame(correlation_id: u32, error_code: ErrorCode, body: &[u8]) -> Response {
    let Some(len) = frame_len(body.len() as u64) else {
        return too_large(correlation_id, body.len() as u64);
    };
    let mut b = BytesMut::with_capacity(LENGTH_FIELD_BYTES + RESPONSE_HEADER_BYTES + body.len());
    b.put_u32(len);
    b.put_u32(correlation_id);
    b.put_u16(error_code.0);
    b.put_slice(body);
    Response::new(vec![Chunk::Bytes(b.freeze())], error_code.0)
}

/// A successful response with `body`.
pub fn ok<B: Body>(correlation_id: u32, body: &B) -> Response {
    let mut b = BytesMut::new();
    match body.encode(&mut b) {
        Ok(()) => frame(correlation_id, ErrorCode::NONE, &b),
        Err(e) => error(
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
    frame(correlation_id, code, &b)
}

#[cfg(test)]
mod tests {
    #![expect(clippy::indexing_slicing, reason = "tests")]
    use super::*;

    #[test]
    fn a_frame_length_never_wraps() {
        let header = RESPONSE_HEADER_BYTES as u64;
        assert_eq!(frame_len(0), Some(RESPONSE_HEADER_BYTES as u32));
        assert_eq!(frame_len(MAX_RESPONSE_BODY_BYTES), Some(u32::MAX));
        assert_eq!(frame_len(MAX_RESPONSE_BODY_BYTES + 1), None);
        // 4 GiB + 10 bytes used to go out as a frame_len of 16.
        assert_eq!(frame_len((4 << 30) + 10 - header), None);
        assert_eq!(frame_len(u64::MAX), None);
    }

    #[test]
    fn a_body_too_large_for_a_frame_is_answered_with_an_error() {
        let r = too_large(7, 5 << 30);
        assert_eq!(r.outcome, ErrorCode::UNKNOWN_SERVER_ERROR.0);
        let [Chunk::Bytes(b)] = r.chunks.as_slice() else {
            panic!("one chunk");
        };
        let len = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        assert_eq!(len as usize, b.len() - LENGTH_FIELD_BYTES);
    }
}
