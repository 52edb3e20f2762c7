//! A scripted stand-in for the broker, for unit tests: it listens on
//! 127.0.0.1:0, answers ApiVersions itself and hands every other request to a
//! handler that says how to react. Test-only.

#![expect(clippy::unwrap_used, reason = "test helper")]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_util::codec::{Encoder, FramedRead};
use warren_protocol::ErrorCode;
use warren_protocol::api::api_versions::{ApiVersionRange, ApiVersionsResponse};
use warren_protocol::api::{self, ApiKey, Body, ErrorBody};
use warren_protocol::frame::{RequestCodec, RequestFrame, ResponseFrame, ResponseHeader};

/// What the mock does with one request.
pub(crate) enum Reaction {
    /// Answer with this body and error code NONE.
    Respond(Bytes),
    /// Answer with this body after a pause (later responses wait behind it).
    RespondAfter(std::time::Duration, Bytes),
    /// Answer with a header error code and an error body.
    Error(ErrorCode, String),
    /// Answer with a chosen correlation id (to test mismatches).
    RespondWithId(u32, Bytes),
    /// Send nothing back (acks = 0 produce).
    Silent,
    /// Never answer this or anything after it on the connection.
    Hang,
    /// Close the connection.
    Close,
}

impl Reaction {
    pub(crate) fn respond<T: Body>(body: &T) -> Reaction {
        Reaction::Respond(api::encode(body).unwrap())
    }

    pub(crate) fn error(code: ErrorCode, message: &str) -> Reaction {
        Reaction::Error(code, message.to_owned())
    }
}

type Handler = Arc<dyn Fn(&RequestFrame) -> Reaction + Send + Sync>;

/// A running mock broker; stops when dropped.
pub(crate) struct MockBroker {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<RequestFrame>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MockBroker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockBroker {
    /// A mock supporting every api of this protocol version.
    pub(crate) async fn start(
        handler: impl Fn(&RequestFrame) -> Reaction + Send + Sync + 'static,
    ) -> MockBroker {
        let apis = ApiKey::SUPPORTED.to_vec();
        MockBroker::start_with_apis(apis, handler).await
    }

    /// A mock announcing only `apis` in ApiVersions.
    pub(crate) async fn start_with_apis(
        apis: Vec<(ApiKey, u16, u16)>,
        handler: impl Fn(&RequestFrame) -> Reaction + Send + Sync + 'static,
    ) -> MockBroker {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let versions = ApiVersionsResponse {
            apis: apis
                .into_iter()
                .map(|(k, min, max)| ApiVersionRange {
                    api_key: k as u16,
                    min_version: min,
                    max_version: max,
                })
                .collect(),
        };
        let handler: Handler = Arc::new(handler);
        let seen = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let handler = handler.clone();
                let seen = seen.clone();
                let versions = versions.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut frames = FramedRead::new(read, RequestCodec::default());
                    let mut hung = false;
                    while let Some(Ok(req)) = frames.next().await {
                        let reaction = if req.header.api_key == ApiKey::ApiVersions as u16 {
                            Reaction::respond(&versions)
                        } else {
                            seen.lock().unwrap().push(req.clone());
                            handler(&req)
                        };
                        if hung {
                            continue;
                        }
                        let id = req.header.correlation_id;
                        let (id, code, body) = match reaction {
                            Reaction::Respond(body) => (id, ErrorCode::NONE, body),
                            Reaction::RespondAfter(pause, body) => {
                                tokio::time::sleep(pause).await;
                                (id, ErrorCode::NONE, body)
                            }
                            Reaction::RespondWithId(id, body) => (id, ErrorCode::NONE, body),
                            Reaction::Error(code, message) => {
                                (id, code, api::encode(&ErrorBody { message }).unwrap())
                            }
                            Reaction::Silent => continue,
                            Reaction::Hang => {
                                hung = true;
                                continue;
                            }
                            Reaction::Close => return,
                        };
                        let mut buf = BytesMut::new();
                        RequestCodec::default()
                            .encode(
                                ResponseFrame {
                                    header: ResponseHeader {
                                        correlation_id: id,
                                        error_code: code.0,
                                    },
                                    body,
                                },
                                &mut buf,
                            )
                            .unwrap();
                        if write.write_all(&buf).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        MockBroker {
            addr,
            requests,
            task,
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far except ApiVersions, in arrival order.
    pub(crate) fn requests(&self) -> Vec<RequestFrame> {
        self.requests.lock().unwrap().clone()
    }
}
