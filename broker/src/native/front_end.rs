//! The native protocol as a transport [`FrontEnd`]: [`RequestCodec`]
//! frames, the auth [`Session`], and [`super::handle`] as the handler. The
//! native protocol only answers, in request order: it never pushes.
//!
//! Thread-safe: one value serves every native connection.

use std::sync::Arc;

use warren_protocol::ErrorCode;
use warren_protocol::api::ApiKey;
use warren_protocol::frame::{REQUEST_HEADER_BYTES, RequestCodec, RequestFrame};

use crate::auth::Session;
use crate::connections::ConnectionInfo;
use crate::metrics::RequestLabels;
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

    /// The names of [`ApiKey`] and [`ErrorCode`].
    fn request_labels(&self) -> RequestLabels {
        request_labels()
    }

    fn handle(&self, request: RequestFrame, session: &mut Session) -> Reply {
        super::handle(request, &self.shared, session)
    }

    /// Authenticated, or the broker has no users (anonymous access).
    fn setup_done(&self, session: &mut Session) -> bool {
        !self.shared.auth.has_users() || session.grants(&self.shared.auth).is_authenticated()
    }
}

/// The native request metrics' labels: each supported [`ApiKey`]'s name by
/// its number, each [`ErrorCode`]'s name (an unknown code is
/// `UNKNOWN_CODE`, as [`ErrorCode::name`] says).
fn request_labels() -> RequestLabels {
    let max_key = ApiKey::SUPPORTED
        .iter()
        .map(|(k, _, _)| *k as usize)
        .max()
        .unwrap_or(0);
    RequestLabels {
        apis: (0..=max_key)
            .map(|i| {
                u16::try_from(i)
                    .ok()
                    .and_then(|k| ApiKey::try_from(k).ok())
                    .map(ApiKey::name)
            })
            .collect(),
        outcomes: ErrorCode::ALL.iter().map(|c| (c.0, c.name())).collect(),
        unknown_outcome: ErrorCode(u16::MAX).name(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::metrics::Metrics;

    #[test]
    fn requests_are_counted_by_native_api_name_and_error_code_name() {
        let m = Arc::new(Metrics::new(true));
        let requests = m.requests(request_labels());
        let started = requests.started();
        let now = Instant::now();
        requests.done(ApiKey::Produce as u16, ErrorCode::NONE.0, started, now);
        requests.done(ApiKey::Produce as u16, ErrorCode::NONE.0, started, now);
        requests.done(
            ApiKey::Fetch as u16,
            ErrorCode::UNKNOWN_TOPIC.0,
            started,
            now,
        );
        requests.done(999, 999, started, now);
        let text = m.render_recorded();
        for line in [
            "warren_requests_total{api=\"Produce\",error_code=\"NONE\"} 2",
            "warren_requests_total{api=\"Fetch\",error_code=\"UNKNOWN_TOPIC\"} 1",
            "warren_requests_total{api=\"unknown\",error_code=\"UNKNOWN_CODE\"} 1",
            "warren_request_duration_seconds_count{api=\"Produce\"} 2",
            "# TYPE warren_request_duration_seconds histogram",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }

    #[test]
    fn every_error_code_is_labelled_in_ascending_order() {
        let labels = request_labels();
        assert_eq!(labels.outcomes.first(), Some(&(0, "NONE")));
        assert!(labels.outcomes.is_sorted_by_key(|(code, _)| *code));
        assert!(labels.outcomes.windows(2).all(|w| w.first() != w.last()));
        assert_eq!(labels.outcomes.len(), ErrorCode::ALL.len());
    }
}
