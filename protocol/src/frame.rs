//! Request and response frames of the native protocol, and their tokio-util
//! codecs.
//!
//! ```text
//! request  = frame_len: u32 | api_key: u16 | api_version: u16 | correlation_id: u32 | body
//! response = frame_len: u32 | correlation_id: u32 | error_code: u16 | body
//! ```
//!
//! All big-endian; `frame_len` counts the bytes after itself, so the smallest
//! request frame has `frame_len = 8` and the smallest response `frame_len = 6`. A
//! connection carries many requests in flight (pipelining); responses come back
//! in request order, matched by `correlation_id`. Frames have no checksum of their
//! own: TCP's covers the wire, and record data carries the RecordBatch CRC.
//!
//! A `frame_len` above the codec's `max_frame_bytes` (default 16 MiB) is refused
//! from the first four bytes, before any buffer is reserved for it; one below the
//! header size is refused as malformed. Both are fatal to the connection (its
//! byte stream can no longer be trusted) and to nothing else. The codecs copy no
//! body bytes: a decoded frame's body is a frozen slice of the read buffer.
//!
//! Not thread-safe; one codec per connection (they are plain values).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::error::{Error, Result};

/// Default for `max_frame_bytes` (16 MiB): the largest frame, length field
/// excluded, a codec accepts. Configurable per codec ([`RequestCodec::new`]).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 16 << 20;
/// Bytes of the `frame_len` field.
pub const LENGTH_FIELD_BYTES: usize = 4;
/// Bytes of a request header after `frame_len`.
pub const REQUEST_HEADER_BYTES: usize = 8;
/// Bytes of a response header after `frame_len`.
pub const RESPONSE_HEADER_BYTES: usize = 6;

/// The fixed fields of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHeader {
    pub api_key: u16,
    pub api_version: u16,
    pub correlation_id: u32,
}

/// A whole request: header and undecoded body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFrame {
    pub header: RequestHeader,
    pub body: Bytes,
}

/// The fixed fields of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHeader {
    pub correlation_id: u32,
    pub error_code: u16,
}

/// A whole response: header and undecoded body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseFrame {
    pub header: ResponseHeader,
    pub body: Bytes,
}

/// Splits one whole frame (length field removed) off `src`, or `Ok(None)` if it
/// is not all buffered yet, reserving room for the rest once its length is known
/// to be acceptable.
fn split_frame(
    src: &mut BytesMut,
    header_bytes: usize,
    max_frame_bytes: usize,
) -> Result<Option<BytesMut>> {
    let Some(len_field) = src.get(..LENGTH_FIELD_BYTES) else {
        return Ok(None);
    };
    let mut len_bytes = [0u8; LENGTH_FIELD_BYTES];
    len_bytes.copy_from_slice(len_field);
    let len = u32::from_be_bytes(len_bytes) as usize;
    if len > max_frame_bytes {
        return Err(Error::FrameTooLarge {
            len,
            max: max_frame_bytes,
        });
    }
    if len < header_bytes {
        return Err(Error::FrameTooShort {
            len,
            min: header_bytes,
        });
    }
    let total = LENGTH_FIELD_BYTES + len;
    if src.len() < total {
        // Reserve the known remainder once, instead of growing read by read.
        src.reserve(total - src.len());
        return Ok(None);
    }
    src.advance(LENGTH_FIELD_BYTES);
    Ok(Some(src.split_to(len)))
}

fn put_len(dst: &mut BytesMut, len: usize, max_frame_bytes: usize) -> Result<()> {
    if len > max_frame_bytes {
        return Err(Error::FrameTooLarge {
            len,
            max: max_frame_bytes,
        });
    }
    dst.reserve(LENGTH_FIELD_BYTES + len);
    dst.put_u32(len as u32);
    Ok(())
}

/// The broker's side: decodes requests, encodes responses.
#[derive(Debug, Clone)]
pub struct RequestCodec {
    max_frame_bytes: usize,
}

impl RequestCodec {
    /// A codec refusing frames above `max_frame_bytes` (at most `u32::MAX`).
    pub fn new(max_frame_bytes: usize) -> Self {
        RequestCodec {
            max_frame_bytes: max_frame_bytes.min(u32::MAX as usize),
        }
    }
}

impl Default for RequestCodec {
    fn default() -> Self {
        RequestCodec::new(DEFAULT_MAX_FRAME_BYTES)
    }
}

impl Decoder for RequestCodec {
    type Item = RequestFrame;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<RequestFrame>> {
        let Some(mut frame) = split_frame(src, REQUEST_HEADER_BYTES, self.max_frame_bytes)? else {
            return Ok(None);
        };
        let header = RequestHeader {
            api_key: frame.get_u16(),
            api_version: frame.get_u16(),
            correlation_id: frame.get_u32(),
        };
        Ok(Some(RequestFrame {
            header,
            body: frame.freeze(),
        }))
    }
}

impl Encoder<ResponseFrame> for RequestCodec {
    type Error = Error;

    fn encode(&mut self, item: ResponseFrame, dst: &mut BytesMut) -> Result<()> {
        put_len(
            dst,
            RESPONSE_HEADER_BYTES + item.body.len(),
            self.max_frame_bytes,
        )?;
        dst.put_u32(item.header.correlation_id);
        dst.put_u16(item.header.error_code);
        dst.put_slice(&item.body);
        Ok(())
    }
}

/// The client's side: encodes requests, decodes responses.
#[derive(Debug, Clone)]
pub struct ResponseCodec {
    max_frame_bytes: usize,
}

impl ResponseCodec {
    /// A codec refusing frames above `max_frame_bytes` (at most `u32::MAX`).
    pub fn new(max_frame_bytes: usize) -> Self {
        ResponseCodec {
            max_frame_bytes: max_frame_bytes.min(u32::MAX as usize),
        }
    }
}

impl Default for ResponseCodec {
    fn default() -> Self {
        ResponseCodec::new(DEFAULT_MAX_FRAME_BYTES)
    }
}

impl Decoder for ResponseCodec {
    type Item = ResponseFrame;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<ResponseFrame>> {
        let Some(mut frame) = split_frame(src, RESPONSE_HEADER_BYTES, self.max_frame_bytes)? else {
            return Ok(None);
        };
        let header = ResponseHeader {
            correlation_id: frame.get_u32(),
            error_code: frame.get_u16(),
        };
        Ok(Some(ResponseFrame {
            header,
            body: frame.freeze(),
        }))
    }
}

impl Encoder<RequestFrame> for ResponseCodec {
    type Error = Error;

    fn encode(&mut self, item: RequestFrame, dst: &mut BytesMut) -> Result<()> {
        put_len(
            dst,
            REQUEST_HEADER_BYTES + item.body.len(),
            self.max_frame_bytes,
        )?;
        dst.put_u16(item.header.api_key);
        dst.put_u16(item.header.api_version);
        dst.put_u32(item.header.correlation_id);
        dst.put_slice(&item.body);
        Ok(())
    }
}
