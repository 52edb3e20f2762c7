//! Frame codecs: round trips, pipelining, awkward chunking, hostile lengths.
#![expect(clippy::unwrap_used, reason = "tests")]

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};
use warren_protocol::Error;
use warren_protocol::frame::{
    RequestCodec, RequestFrame, RequestHeader, ResponseCodec, ResponseFrame, ResponseHeader,
};

fn request(correlation_id: u32, body: &'static [u8]) -> RequestFrame {
    RequestFrame {
        header: RequestHeader {
            api_key: 5,
            api_version: 1,
            correlation_id,
        },
        body: Bytes::from_static(body),
    }
}

fn encoded_requests(frames: &[RequestFrame]) -> BytesMut {
    let mut client = ResponseCodec::default();
    let mut buf = BytesMut::new();
    for f in frames {
        client.encode(f.clone(), &mut buf).unwrap();
    }
    buf
}

#[test]
fn a_request_has_the_documented_bytes() {
    let buf = encoded_requests(&[request(0x0102_0304, b"xyz")]);
    assert_eq!(
        &buf[..],
        [0, 0, 0, 11, 0, 5, 0, 1, 1, 2, 3, 4, b'x', b'y', b'z']
    );
}

#[test]
fn pipelined_requests_decode_in_order_from_one_buffer() {
    let frames = [request(1, b"a"), request(2, b""), request(3, b"ccc")];
    let mut buf = encoded_requests(&frames);
    let mut server = RequestCodec::default();
    for f in &frames {
        assert_eq!(server.decode(&mut buf).unwrap().as_ref(), Some(f));
    }
    assert_eq!(server.decode(&mut buf).unwrap(), None);
    assert!(buf.is_empty());
}

#[test]
fn a_frame_fed_one_byte_at_a_time_decodes_once_complete() {
    let frame = request(7, b"hello world");
    let wire = encoded_requests(std::slice::from_ref(&frame));
    let mut server = RequestCodec::default();
    let mut buf = BytesMut::new();
    for (i, byte) in wire.iter().enumerate() {
        buf.put_u8(*byte);
        let got = server.decode(&mut buf).unwrap();
        if i + 1 < wire.len() {
            assert_eq!(got, None, "byte {i}");
        } else {
            assert_eq!(got, Some(frame.clone()));
        }
    }
}

#[test]
fn responses_round_trip_through_both_codecs() {
    let mut server = RequestCodec::default();
    let mut client = ResponseCodec::default();
    let response = ResponseFrame {
        header: ResponseHeader {
            correlation_id: 9,
            error_code: 3,
        },
        body: Bytes::from_static(b"body"),
    };
    let mut buf = BytesMut::new();
    server.encode(response.clone(), &mut buf).unwrap();
    assert_eq!(&buf[..4], [0, 0, 0, 10]);
    assert_eq!(client.decode(&mut buf).unwrap(), Some(response));
}

#[test]
fn an_oversize_length_is_refused_from_four_bytes_without_reserving() {
    let mut server = RequestCodec::new(1024);
    let mut buf = BytesMut::from(&u32::MAX.to_be_bytes()[..]);
    let capacity = buf.capacity();
    assert!(matches!(
        server.decode(&mut buf),
        Err(Error::FrameTooLarge { len, max: 1024 }) if len == u32::MAX as usize
    ));
    assert_eq!(
        buf.capacity(),
        capacity,
        "nothing reserved for the claimed length"
    );
    let mut buf = BytesMut::from(&1025u32.to_be_bytes()[..]);
    assert!(matches!(
        server.decode(&mut buf),
        Err(Error::FrameTooLarge { .. })
    ));
    let mut buf = BytesMut::from(&1024u32.to_be_bytes()[..]);
    assert_eq!(
        server.decode(&mut buf).unwrap(),
        None,
        "at the limit: wait for it"
    );
}

#[test]
fn a_length_shorter_than_the_header_is_refused() {
    let mut server = RequestCodec::default();
    let mut buf = BytesMut::from(&[0u8, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0][..]);
    assert!(matches!(
        server.decode(&mut buf),
        Err(Error::FrameTooShort { len: 7, min: 8 })
    ));
    let mut client = ResponseCodec::default();
    let mut buf = BytesMut::from(&[0u8, 0, 0, 5, 0, 0, 0, 0, 0][..]);
    assert!(matches!(
        client.decode(&mut buf),
        Err(Error::FrameTooShort { len: 5, min: 6 })
    ));
}

#[test]
fn encoding_an_oversize_body_is_refused() {
    let mut client = ResponseCodec::new(16);
    let mut buf = BytesMut::new();
    let big = RequestFrame {
        header: request(1, b"").header,
        body: Bytes::from(vec![0u8; 9]),
    };
    assert!(matches!(
        client.encode(big, &mut buf),
        Err(Error::FrameTooLarge { len: 17, max: 16 })
    ));
    assert!(buf.is_empty());
}

proptest! {
    /// Any bytes, in any chunks: the decoder yields frames, waits, or reports an
    /// error; it never panics and never holds more than it was given plus one
    /// reserved frame.
    #[test]
    fn arbitrary_bytes_in_arbitrary_chunks_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        cuts in proptest::collection::vec(1usize..64, 1..64),
    ) {
        let mut server = RequestCodec::new(4096);
        let mut buf = BytesMut::new();
        let mut rest = &bytes[..];
        let mut cut = cuts.iter().cycle();
        'feed: while !rest.is_empty() {
            let n = (*cut.next().unwrap()).min(rest.len());
            buf.put_slice(&rest[..n]);
            rest = &rest[n..];
            loop {
                match server.decode(&mut buf) {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => break 'feed,
                }
            }
            prop_assert!(buf.capacity() <= 4096 + 4 + bytes.len() + 64);
        }
    }

    /// Frames encoded by the client decode to the same frames on the server,
    /// however the stream is cut.
    #[test]
    fn encoded_frames_survive_any_chunking(
        bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..10),
        cuts in proptest::collection::vec(1usize..50, 1..32),
    ) {
        let frames: Vec<RequestFrame> = bodies
            .into_iter()
            .enumerate()
            .map(|(i, b)| RequestFrame {
                header: RequestHeader { api_key: i as u16, api_version: 0, correlation_id: i as u32 },
                body: Bytes::from(b),
            })
            .collect();
        let wire = encoded_requests(&frames);
        let mut server = RequestCodec::default();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut rest = &wire[..];
        let mut cut = cuts.iter().cycle();
        while !rest.is_empty() {
            let n = (*cut.next().unwrap()).min(rest.len());
            buf.put_slice(&rest[..n]);
            rest = &rest[n..];
            while let Some(f) = server.decode(&mut buf).unwrap() {
                got.push(f);
            }
        }
        prop_assert_eq!(got, frames);
    }
}
