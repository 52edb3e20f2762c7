//! The test broker shared by the client's end-to-end tests: the real broker,
//! in-process on 127.0.0.1:0, with its data in a temporary directory.
#![allow(dead_code, reason = "each test file uses a different part")]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tempfile::TempDir;
use warren_client::{Admin, ConnectionConfig, ConsumerConfig, Error, ProducerConfig};

pub type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// A broker on 127.0.0.1 with its data directory.
pub struct TestBroker {
    pub dir: TempDir,
    pub broker: Option<warren_broker::RunningBroker>,
    pub addr: SocketAddr,
}

impl TestBroker {
    pub async fn start() -> Result<TestBroker, Box<dyn std::error::Error + Send + Sync>> {
        let dir = tempfile::tempdir()?;
        let broker = start_broker(&dir, "127.0.0.1:0".parse()?).await?;
        let addr = broker.local_addr();
        Ok(TestBroker {
            dir,
            broker: Some(broker),
            addr,
        })
    }

    pub async fn stop(&mut self) -> TestResult {
        if let Some(b) = self.broker.take() {
            b.shutdown().await?;
        }
        Ok(())
    }

    /// Starts a new broker on the same port and data directory.
    pub async fn restart(&mut self) -> TestResult {
        self.stop().await?;
        let mut last = None;
        // The port is free once the old listener closed; retry briefly in case
        // the OS is slow to release it.
        for _ in 0..50 {
            match start_broker(&self.dir, self.addr).await {
                Ok(b) => {
                    self.broker = Some(b);
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("broker did not restart: {last:?}").into())
    }

    pub fn connection(&self) -> ConnectionConfig {
        ConnectionConfig {
            reconnect_backoff: Duration::from_millis(20),
            reconnect_backoff_max: Duration::from_millis(200),
            request_timeout: Duration::from_secs(10),
            ..ConnectionConfig::new(self.addr.to_string())
        }
    }

    pub fn producer_config(&self) -> ProducerConfig {
        ProducerConfig {
            connection: self.connection(),
            delivery_timeout: Duration::from_secs(20),
            retry_backoff: Duration::from_millis(20),
            retry_backoff_max: Duration::from_millis(200),
            ..Default::default()
        }
    }

    pub fn consumer_config(&self) -> ConsumerConfig {
        ConsumerConfig {
            connection: self.connection(),
            ..Default::default()
        }
    }

    pub async fn admin(&self) -> Result<Admin, Error> {
        Admin::connect(self.connection()).await
    }
}

pub async fn start_broker(
    dir: &TempDir,
    listen: SocketAddr,
) -> Result<warren_broker::RunningBroker, warren_broker::Error> {
    let config = warren_broker::BrokerConfig {
        data_dir: dir.path().to_path_buf(),
        listen,
        http: SocketAddr::from(([127, 0, 0, 1], 0)),
        shutdown_timeout_ms: 2_000,
        ..Default::default()
    };
    warren_broker::Broker::start(config).await
}

/// Runs a test body with a time limit.
pub async fn bounded(body: impl Future<Output = TestResult>) -> TestResult {
    tokio::time::timeout(Duration::from_secs(90), body)
        .await
        .map_err(|_| "test timed out")?
}
