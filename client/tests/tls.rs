//! The client over TLS against the real broker with `tls_cert`/`tls_key`, on
//! 127.0.0.1:0: producer, consumer, group consumer and admin; reconnects after
//! a restart; clear errors for an untrusted certificate, a wrong server name,
//! an unreadable CA file and a plaintext client.
//!
//! Every loop is bounded in count and every test in time.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;
use warren_client::{
    Admin, ConnectionConfig, Consumer, ConsumerConfig, ConsumerRecord, Credentials, Error,
    GroupConfig, GroupConsumer, Mechanism, Producer, ProducerConfig, TlsConfig,
};

mod common;

use common::{TestResult, bounded};

/// A test CA and a broker certificate it signed for `localhost` and
/// `127.0.0.1`, as PEM files.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn make_pki(dir: &Path, name: &str) -> Result<Pki, Box<dyn std::error::Error + Send + Sync>> {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate()?;
    let cert = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?
        .signed_by(&key, &issuer)?;
    let pki = Pki {
        ca: dir.join(format!("{name}-ca.pem")),
        cert: dir.join(format!("{name}-cert.pem")),
        key: dir.join(format!("{name}-key.pem")),
    };
    std::fs::write(&pki.ca, ca_cert.pem())?;
    std::fs::write(&pki.cert, cert.pem())?;
    std::fs::write(&pki.key, key.serialize_pem())?;
    Ok(pki)
}

/// A TLS broker with small segments, so fetches span several files.
struct TlsBroker {
    dir: TempDir,
    pki: Pki,
    broker: Option<warren_broker::RunningBroker>,
    addr: SocketAddr,
}

impl TlsBroker {
    async fn start() -> Result<TlsBroker, Box<dyn std::error::Error + Send + Sync>> {
        let dir = tempfile::tempdir()?;
        let pki = make_pki(dir.path(), "broker")?;
        let broker = Self::start_on(dir.path(), &pki, "127.0.0.1:0".parse()?).await?;
        let addr = broker.local_addr();
        Ok(TlsBroker {
            dir,
            pki,
            broker: Some(broker),
            addr,
        })
    }

    async fn start_on(
        dir: &Path,
        pki: &Pki,
        listen: SocketAddr,
    ) -> Result<warren_broker::RunningBroker, warren_broker::Error> {
        let mut config = warren_broker::BrokerConfig {
            data_dir: dir.join("data"),
            listen,
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            shutdown_timeout_ms: 2_000,
            tls_cert: Some(pki.cert.clone()),
            tls_key: Some(pki.key.clone()),
            ..Default::default()
        };
        config.log.segment_bytes = 1 << 20;
        warren_broker::Broker::start(config).await
    }

    /// Stops the broker and starts it again on the same port.
    async fn restart(&mut self) -> TestResult {
        if let Some(b) = self.broker.take() {
            b.shutdown().await?;
        }
        let mut last = None;
        for _ in 0..50 {
            match Self::start_on(self.dir.path(), &self.pki, self.addr).await {
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

    fn connection(&self) -> ConnectionConfig {
        ConnectionConfig {
            reconnect_backoff: Duration::from_millis(20),
            reconnect_backoff_max: Duration::from_millis(200),
            request_timeout: Duration::from_secs(10),
            tls: Some(TlsConfig::new(&self.pki.ca)),
            ..ConnectionConfig::new(self.addr.to_string())
        }
    }

    fn producer_config(&self) -> ProducerConfig {
        ProducerConfig {
            connection: self.connection(),
            delivery_timeout: Duration::from_secs(20),
            retry_backoff: Duration::from_millis(20),
            retry_backoff_max: Duration::from_millis(200),
            ..Default::default()
        }
    }

    fn consumer_config(&self) -> ConsumerConfig {
        ConsumerConfig {
            connection: self.connection(),
            ..Default::default()
        }
    }
}

/// Bytes that differ everywhere, so a misplaced chunk cannot go unnoticed.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as u8
        })
        .collect()
}

/// Polls until `n` records arrived (at most 200 polls).
async fn consume(consumer: &mut Consumer, n: usize) -> Result<Vec<ConsumerRecord>, Error> {
    let mut out = Vec::new();
    for _ in 0..200 {
        out.extend(consumer.poll(Duration::from_millis(200)).await?);
        if out.len() >= n {
            break;
        }
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_and_consume_over_tls_keep_every_byte() -> TestResult {
    bounded(async {
        let broker = TlsBroker::start().await?;
        let admin = Admin::connect(broker.connection()).await?;
        admin
            .create_topic("tls", 1, &[("durability", "none")])
            .await?;
        let producer = Producer::connect(broker.producer_config()).await?;
        // Records from 1 byte to 700 KiB (bigger than the broker's 256 KiB
        // copy chunk), about 4 MiB in all: several 1 MiB segments.
        let sizes = [1usize, 300 << 10, 17, 700 << 10, 64 << 10, 5, 200 << 10];
        let mut sent = Vec::new();
        let mut deliveries = Vec::new();
        for round in 0..3u64 {
            for (i, size) in sizes.iter().enumerate() {
                let value = noise(round * 10 + i as u64, *size);
                deliveries.push(producer.send("tls", None, &value).await?);
                sent.push(value);
            }
        }
        producer.flush().await?;
        for d in deliveries {
            d.await?;
        }
        let segments = std::fs::read_dir(broker.dir.path().join("data/tls-0"))?
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "log"))
            })
            .count();
        assert!(segments >= 3, "{segments} segments");
        // One big fetch (all of it at once) and the default-sized ones.
        for max_bytes in [8 << 20, ConsumerConfig::default().max_bytes] {
            let mut consumer = Consumer::connect(ConsumerConfig {
                max_bytes,
                partition_max_bytes: max_bytes,
                ..broker.consumer_config()
            })
            .await?;
            consumer.assign("tls", &[0]);
            let got = consume(&mut consumer, sent.len()).await?;
            assert_eq!(got.len(), sent.len());
            for (i, (r, v)) in got.iter().zip(&sent).enumerate() {
                assert_eq!(r.offset, i as u64);
                assert!(
                    r.value.as_deref() == Some(v.as_slice()),
                    "record {i} differs"
                );
            }
        }
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_consumer_and_reconnects_use_tls() -> TestResult {
    bounded(async {
        let mut broker = TlsBroker::start().await?;
        let admin = Admin::connect(broker.connection()).await?;
        admin
            .create_topic("g", 2, &[("durability", "none")])
            .await?;
        let producer = Producer::connect(broker.producer_config()).await?;
        let mut deliveries = Vec::new();
        for i in 0..20 {
            let (key, value) = (format!("k{i}"), format!("v{i}"));
            deliveries.push(
                producer
                    .send("g", Some(key.as_bytes()), value.as_bytes())
                    .await?,
            );
        }
        producer.flush().await?;
        for d in deliveries {
            d.await?;
        }
        let group = GroupConfig {
            session_timeout: Duration::from_millis(1_500),
            ..GroupConfig::new("gtls", &["g"])
        };
        let mut member = GroupConsumer::join(broker.consumer_config(), group).await?;
        let mut seen = 0;
        for _ in 0..100 {
            seen += member.poll(Duration::from_millis(100)).await?.len();
            if seen >= 20 {
                break;
            }
        }
        assert_eq!(seen, 20);
        assert_eq!(member.assignment().len(), 2);
        member.commit().await?;
        // The broker restarts: every client reconnects, over TLS again.
        broker.restart().await?;
        let mut delivered = None;
        for _ in 0..50 {
            match producer.send("g", None, b"after restart").await {
                Ok(d) => {
                    delivered = Some(d);
                    break;
                }
                Err(e) if e.is_retriable() => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(e) => return Err(e.into()),
            }
        }
        producer.flush().await?;
        delivered.ok_or("no send after the restart")?.await?;
        let mut after = Vec::new();
        for _ in 0..100 {
            match member.poll(Duration::from_millis(100)).await {
                Ok(records) => after.extend(records),
                Err(e) if e.is_retriable() => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(e) => return Err(e.into()),
            }
            if !after.is_empty() {
                break;
            }
        }
        assert!(
            after
                .iter()
                .any(|r| r.value.as_deref() == Some(b"after restart".as_slice())),
            "{after:?}"
        );
        let topics = admin.list_topics().await?;
        assert!(topics.iter().any(|t| t.name == "g"));
        Ok(())
    })
    .await
}

/// SASL PLAIN, refused on plain TCP, logs in over TLS; a wrong password is
/// still refused, and SCRAM works on the same TLS listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_authentication_works_over_tls() -> TestResult {
    bounded(async {
        let tb = TlsBroker::start().await?;
        let anonymous = Admin::connect(tb.connection()).await?;
        anonymous.create_topic("secret", 1, &[]).await?;
        anonymous.create_user("root", "root-pw", true).await?;
        let login = |password: &str, mechanism: Mechanism| {
            let mut connection = tb.connection();
            connection.credentials = Some(Credentials {
                mechanism,
                ..Credentials::new("root", password)
            });
            connection
        };
        let plain = Admin::connect(login("root-pw", Mechanism::Plain)).await?;
        let names: Vec<String> = plain
            .list_topics()
            .await?
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(names, ["secret"]);
        let wrong = match Admin::connect(login("nope", Mechanism::Plain)).await {
            Ok(admin) => admin.list_topics().await.map(|_| ()),
            Err(e) => Err(e),
        };
        assert!(
            matches!(wrong, Err(Error::AuthenticationFailed { .. })),
            "{wrong:?}"
        );
        let scram = Admin::connect(login("root-pw", Mechanism::ScramSha256)).await?;
        assert_eq!(scram.list_topics().await?.len(), 1);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn untrusted_certificates_and_bad_settings_are_clear_errors() -> TestResult {
    bounded(async {
        let broker = TlsBroker::start().await?;
        let stranger = make_pki(broker.dir.path(), "stranger")?;
        let with_tls = |tls: TlsConfig| ConnectionConfig {
            tls: Some(tls),
            connect_timeout: Duration::from_secs(5),
            ..broker.connection()
        };
        // A CA that did not sign the broker's certificate.
        let err = Admin::connect(with_tls(TlsConfig::new(&stranger.ca)))
            .await
            .err()
            .ok_or("connected trusting the wrong CA")?;
        assert!(matches!(err, Error::Tls { .. }), "{err:?}");
        assert!(!err.is_retriable());
        let msg = err.to_string();
        assert!(msg.contains("certificate was refused"), "{msg}");
        assert!(msg.contains("stranger-ca.pem"), "{msg}");
        // The right CA, but a name the certificate does not carry.
        let err = Admin::connect(with_tls(TlsConfig {
            server_name: Some("wrong.example".into()),
            ..TlsConfig::new(&broker.pki.ca)
        }))
        .await
        .err()
        .ok_or("connected with a name the certificate lacks")?;
        assert!(err.to_string().contains("wrong.example"), "{err}");
        // ... and a name it does carry, though the address is an IP.
        let admin = Admin::connect(with_tls(TlsConfig {
            server_name: Some("localhost".into()),
            ..TlsConfig::new(&broker.pki.ca)
        }))
        .await?;
        admin.list_topics().await?;
        // An unreadable CA file, and one with no certificate in it.
        let missing = broker.dir.path().join("missing.pem");
        let err = Admin::connect(with_tls(TlsConfig::new(&missing)))
            .await
            .err()
            .ok_or("connected with a missing CA file")?;
        assert!(err.to_string().contains("cannot read the CA file"), "{err}");
        assert!(err.to_string().contains("missing.pem"), "{err}");
        let err = Admin::connect(with_tls(TlsConfig::new(&broker.pki.key)))
            .await
            .err()
            .ok_or("connected with a key as CA file")?;
        assert!(err.to_string().contains("no certificate"), "{err}");
        // A plaintext client gets an error, not a hang and not a response.
        let plain = ConnectionConfig {
            tls: None,
            ..with_tls(TlsConfig::new(&broker.pki.ca))
        };
        assert!(Admin::connect(plain).await.is_err());
        Ok(())
    })
    .await
}
