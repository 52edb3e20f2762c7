//! Starting, running and stopping the broker: the listeners, the accept loop,
//! the HTTP endpoint, and graceful shutdown.
//!
//! Shutdown (SIGINT/SIGTERM via [`RunningBroker::run_until_signal`], or
//! [`RunningBroker::shutdown`]): cancel the shared token, so the accept loop
//! stops accepting, readers stop reading new requests, and long-poll fetches
//! answer with what they have; wait (up to `shutdown_timeout_ms`) for every
//! connection to send its in-flight replies; then close every log, which
//! fsyncs it and writes a clean recovery point, so the next start scans
//! nothing; the share groups' lock-expiry task stops and every share-partition
//! with unwritten delivery counts is written; the metadata store ([`Shared::kv`]) is snapshotted and closed too.
//! Start opens the logs and the metadata store, then loads the stored topic
//! bindings into their topics before the listeners accept anything.
//! The connection tasks each hold a clone of an `mpsc::Sender`; the
//! receiver returning `None` means all of them have finished (mini-redis's
//! pattern).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use warren_storage::{KvConfig, KvStore, LogManager};

use crate::config::BrokerConfig;
use crate::error::{Error, Result};
use crate::groups::Coordinator;
use crate::services::{Access, Catalog, Fetcher, Producer, Queues, Sasl, Services, TopicAdmin};
use crate::share::{ShareContext, ShareGroups};
use crate::state::Shared;
use crate::topics::Topics;
use crate::transport::{TransportConfig, TransportContext};

/// The broker; see [`Broker::start`].
pub struct Broker;

/// A started broker. Dropping it without [`shutdown`](Self::shutdown) leaves
/// its tasks to the runtime; the logs then recover at the next start.
pub struct RunningBroker {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    http_addr: SocketAddr,
    accept: JoinHandle<()>,
    http: JoinHandle<()>,
    /// Stops the HTTP listener: cancelled after the connections drained, so
    /// `/readyz` answers 503 while the broker shuts down.
    http_stop: CancellationToken,
    /// The share groups' lock-expiry task.
    share_timers: JoinHandle<()>,
    connections_done: mpsc::Receiver<()>,
}

impl Broker {
    /// Opens the data directory (recovering it after a crash), binds both
    /// listeners and starts serving.
    ///
    /// # Errors
    /// Invalid config, a data dir that cannot be opened or is locked by another
    /// broker, or an address that cannot be bound.
    pub async fn start(config: BrokerConfig) -> Result<RunningBroker> {
        config.validate()?;
        // Before touching the data dir: a bad certificate is a startup error.
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::acceptor(cert, key)?),
            _ => None,
        };
        let data_dir = config.data_dir.clone();
        let metrics = Arc::new(crate::metrics::Metrics::new(config.metrics));
        let storage_metrics = metrics.storage();
        let metrics_enabled = metrics.enabled();
        // A data dir that does not exist yet holds no users: refuse before
        // creating it.
        if !config.data_dir.exists() {
            config.check_anonymous_exposure(false)?;
        }
        let anonymous_check = config.clone();
        let (topics, kv, auth) =
            tokio::task::spawn_blocking(move || -> Result<(Topics, KvStore, crate::auth::Auth)> {
                std::fs::create_dir_all(&data_dir).map_err(|e| Error::Storage {
                    path: data_dir.clone(),
                    source: warren_storage::Error::Io {
                        op: "create data dir",
                        path: data_dir.clone(),
                        source: e,
                    },
                })?;
                let manager = LogManager::open_checked(
                    &data_dir,
                    storage_metrics.clone(),
                    &crate::metadata::check_stored,
                )
                .map_err(|source| Error::Storage {
                    path: data_dir.clone(),
                    source,
                })?;
                let kv_dir = manager.meta_dir().join("kv");
                let kv = KvStore::open_with_metrics(&kv_dir, KvConfig::default(), storage_metrics)
                    .map_err(|source| Error::Storage {
                        path: kv_dir.clone(),
                        source,
                    })?;
                // Logs whether anonymous access is on.
                let auth = crate::auth::Auth::load(&kv);
                if let Err(e) = anonymous_check.check_anonymous_exposure(auth.has_users()) {
                    // Refused before anything listens: close cleanly, so the
                    // next start scans nothing.
                    let _ = kv.close();
                    let _ = manager.close();
                    return Err(e);
                }
                let topics = Topics::with_metrics(Arc::new(manager), metrics_enabled);
                let bindings = topics.load_bindings(&kv).map_err(|source| Error::Storage {
                    path: kv_dir,
                    source,
                })?;
                tracing::info!(
                    loaded = bindings.loaded,
                    removed = bindings.removed,
                    "bindings loaded"
                );
                Ok((topics, kv, auth))
            })
            .await
            .map_err(|e| Error::Io {
                what: "opening the data dir",
                source: std::io::Error::other(e),
            })??;
        let manager = Arc::clone(topics.manager());
        manager
            .start_background(Duration::from_millis(config.retention_check_ms))
            .map_err(|source| Error::Storage {
                path: config.data_dir.clone(),
                source,
            })?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: config.listen,
                source,
            })?;
        let http_listener = TcpListener::bind(config.http)
            .await
            .map_err(|source| Error::Bind {
                addr: config.http,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| Error::Io {
            what: "reading the listener's address",
            source,
        })?;
        let http_addr = http_listener.local_addr().map_err(|source| Error::Io {
            what: "reading the HTTP listener's address",
            source,
        })?;
        let (topics, share, groups, config) = {
            let kv = kv.clone();
            tokio::task::spawn_blocking(move || {
                let share = ShareGroups::load(&kv, &topics, &config);
                let groups = Coordinator::load(&config, &kv);
                (topics, share, groups, config)
            })
            .await
            .map_err(|e| Error::Io {
                what: "loading share groups",
                source: std::io::Error::other(e),
            })?
        };
        tracing::info!(
            listen = %local_addr,
            http = %http_addr,
            data_dir = %config.data_dir.display(),
            topics = topics.list().len(),
            tls = tls.is_some(),
            "warren broker started"
        );
        let throughput = Arc::new(crate::throughput::Throughput::new(&topics));
        let (topics, groups, share) = (Arc::new(topics), Arc::new(groups), Arc::new(share));
        let auth = Arc::new(auth);
        let shutdown = CancellationToken::new();
        let services = Services {
            produce: Producer::new(Arc::clone(&topics), config.message_timestamp_max_skew_ms),
            fetch: Fetcher::new(
                Arc::clone(&topics),
                config.fetch_max_bytes,
                shutdown.clone(),
            ),
            admin: TopicAdmin::new(
                Arc::clone(&topics),
                kv.clone(),
                Arc::clone(&groups),
                Arc::clone(&share),
                config.log.clone(),
            ),
            catalog: Catalog::new(Arc::clone(&topics), local_addr),
            access: Access::new(
                Arc::clone(&auth),
                kv.clone(),
                config.check_anonymous_exposure(false).is_err(),
            ),
            queues: Queues::new(ShareContext {
                groups: Arc::clone(&share),
                topics: Arc::clone(&topics),
                kv: kv.clone(),
                auth: Arc::clone(&auth),
                shutdown: shutdown.clone(),
            }),
            sasl: Sasl::new(Arc::clone(&auth)),
        };
        let shared = Arc::new(Shared {
            config,
            topics,
            kv,
            groups,
            share,
            services,
            shutdown,
            advertised: local_addr,
            connections: Default::default(),
            throughput,
            metrics,
            auth,
            tls,
        });
        tokio::spawn(crate::groups::coordinator::run_expiry(
            Arc::clone(&shared.groups),
            Arc::clone(&shared.topics),
            shared.shutdown.clone(),
        ));
        tokio::spawn(crate::offsets_retention::run(
            Arc::clone(&shared.groups),
            Arc::clone(&shared.share),
            shared.kv.clone(),
            Duration::from_millis(shared.config.offsets_retention_check_ms),
            shared.shutdown.clone(),
        ));
        let (done_tx, connections_done) = mpsc::channel(1);
        let transport = Arc::new(TransportContext {
            config: TransportConfig::from(&shared.config),
            shutdown: shared.shutdown.clone(),
            connections: Arc::clone(&shared.connections),
            metrics: Arc::clone(&shared.metrics),
            tls: shared.tls.clone(),
        });
        let native = Arc::new(crate::native::NativeFrontEnd::new(Arc::clone(&shared)));
        let accept = tokio::spawn(crate::transport::accept_loop(
            listener, transport, native, done_tx,
        ));
        let http_stop = CancellationToken::new();
        let http = tokio::spawn(crate::http::serve(
            http_listener,
            Arc::clone(&shared),
            http_stop.clone(),
        ));
        tokio::spawn(crate::throughput::run_sampler(
            Arc::clone(&shared.throughput),
            Arc::clone(&shared.topics),
            Arc::clone(&shared.connections),
            shared.shutdown.clone(),
        ));
        let share_timers = tokio::spawn(crate::share::run_timers(
            shared.services.queues.context().clone(),
        ));
        tokio::spawn(crate::metrics::run_upkeep(
            Arc::clone(&shared.metrics),
            shared.shutdown.clone(),
        ));
        Ok(RunningBroker {
            shared,
            local_addr,
            http_addr,
            accept,
            http,
            http_stop,
            share_timers,
            connections_done,
        })
    }
}

impl RunningBroker {
    /// The native protocol address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Serves until SIGINT or SIGTERM, then shuts down gracefully.
    ///
    /// # Errors
    /// As [`shutdown`](Self::shutdown), or if the signal handlers cannot be installed.
    pub async fn run_until_signal(self) -> Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let io = |source| Error::Io {
            what: "installing signal handlers",
            source,
        };
        let mut term = signal(SignalKind::terminate()).map_err(io)?;
        let mut int = signal(SignalKind::interrupt()).map_err(io)?;
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "shutting down");
        self.shutdown().await
    }

    /// Begins shutting down without waiting: stops accepting native
    /// connections and reading requests, and `/readyz` answers 503 from now
    /// on (the HTTP listener stays up until [`shutdown`](Self::shutdown) has
    /// drained the connections). Call [`shutdown`](Self::shutdown) to finish.
    pub fn begin_shutdown(&self) {
        self.shared.shutdown.cancel();
    }

    /// Stops accepting, lets in-flight requests finish (up to
    /// `shutdown_timeout_ms`), stops the HTTP listener, then closes every log
    /// cleanly.
    ///
    /// # Errors
    /// [`Error::Close`] if a log fails to close (it is then recovered at the
    /// next start).
    pub async fn shutdown(mut self) -> Result<()> {
        self.shared.shutdown.cancel();
        let _ = (&mut self.accept).await;
        let timeout = Duration::from_millis(self.shared.config.shutdown_timeout_ms);
        if tokio::time::timeout(timeout, self.connections_done.recv())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after {timeout:?}; closing anyway");
        }
        self.http_stop.cancel();
        let _ = (&mut self.http).await;
        let _ = (&mut self.share_timers).await;
        let shared = Arc::clone(&self.shared);
        let closed = tokio::task::spawn_blocking(move || {
            if let Err(e) = shared.share.persist_all(&shared.kv) {
                tracing::warn!(error = %e, "writing share-group state at shutdown failed");
            }
            let kv = shared.kv.close();
            shared.topics.manager().close().and(kv)
        })
        .await
        .map_err(|e| Error::Io {
            what: "closing logs",
            source: std::io::Error::other(e),
        })?;
        closed.map_err(Error::Close)?;
        tracing::info!("warren broker stopped");
        Ok(())
    }
}
