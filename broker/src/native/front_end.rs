//! The native protocol as a transport [`FrontEnd`]: [`RequestCodec`]
//! frames, the auth [`Session`], and [`super::handle`] as the handler. The
//! native protocol only answers, in request order: it never pushes.
//!
//! Thread-safe: one value serves every native connection.

use std::sync::Arc;

use warren_protocol::frame::{REQUEST_HEADER_BYTES, RequestCodec, RequestFrame};

use crate::auth::Session;
use crate::connections::ConnectionInfo;
use crate::state::Shared;
use crate::transport::{FrontEnd, Outbox, Reply};

/// The native protocol's front-end, over the broker's state.
pub struct NativeFrontEnd {
    shared: Arc<Shared>,
}

impl NativeFrontEnd {
    /// The native front-end of the broker whose state is `shared`.
    pub fn new(shared: Arc<Shared>) -> NativeFrontEnd {
        NativeFrontEnd { shared }
    }
}

impl FrontEnd for NativeFrontEnd {
    type Request = RequestFrame;
    type Codec = RequestCodec;
    type Session = Session;

    fn codec(&self, max_frame_bytes: usize) -> RequestCodec {
        RequestCodec::new(max_frame_bytes)
    }

    /// An unauthenticated session; the outbox is dropped (nothing to push).
    fn session(&self, info: Arc<ConnectionInfo>, _outbox: Outbox) -> Session {
        Session::new(info)
    }

    /// The frame's header and body (the length field aside).
    fn request_bytes(&self, request: &RequestFrame) -> usize {
        request.body.len() + REQUEST_HEADER_BYTES
    }

    fn api_key(&self, request: &RequestFrame) -> u16 {
        request.header.api_key
    }

    fn handle(&self, request: RequestFrame, session: &mut Session) -> Reply {
        super::handle(request, &self.shared, session)
    }

    /// Authenticated, or the broker has no users (anonymous access).
    fn setup_done(&self, session: &mut Session) -> bool {
        !self.shared.auth.has_users() || session.grants(&self.shared.auth).is_authenticated()
    }
}
