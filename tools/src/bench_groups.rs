//! `warren bench rebalance`: how long a consumer-group rebalance takes.
//!
//! Starts `--members` [`GroupConsumer`]s (one task and two connections each)
//! on a topic of `--partitions` and waits until the group is settled. Then, for
//! `--rounds` rounds, one extra member alternately joins and leaves (`close`,
//! so LeaveGroup), and the time from that trigger until the group is settled
//! again is measured. Settled means what the broker reports (DescribeGroup,
//! polled every 2 ms): the expected number of members, every partition
//! assigned to exactly one member, and no member more than one partition
//! above or below the fair share. A partition is only assigned to its new
//! owner after the old one confirmed giving it up, so settled means every
//! member is consuming exactly its final partitions.
//!
//! The members poll continuously, as a consuming application does; the topic
//! is empty so the figure is the protocol's, not the data's.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use tokio::task::JoinHandle;
use warren_client::{Admin, ConsumerConfig, GroupConfig, GroupConsumer};

use crate::connect::BrokerArgs;

/// Arguments of `warren bench rebalance`.
#[derive(Debug, Args)]
pub struct RebalanceBench {
    /// Topic to use (created with --partitions if it does not exist).
    #[arg(long, default_value = "bench-rebalance")]
    topic: String,
    /// Partitions of the topic.
    #[arg(long, default_value_t = 100)]
    partitions: u32,
    /// Members of the group before each round.
    #[arg(long, default_value_t = 10)]
    members: u32,
    /// Rebalances to time (joins and leaves alternate).
    #[arg(long, default_value_t = 10)]
    rounds: u32,
    /// Session timeout of the members, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    session_timeout_ms: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Longest wait for one rebalance before the bench gives up.
const SETTLE_LIMIT: Duration = Duration::from_secs(30);

/// A member polling in its own task until `stop`.
struct Member {
    stop: Arc<AtomicBool>,
    task: JoinHandle<Result<()>>,
}

impl Member {
    async fn start(broker: &BrokerArgs, group: &str, args: &RebalanceBench) -> Result<Member> {
        let config = ConsumerConfig {
            connection: broker.connection(),
            ..ConsumerConfig::default()
        };
        let group_config = GroupConfig {
            session_timeout: Duration::from_millis(args.session_timeout_ms),
            ..GroupConfig::new(group, &[&args.topic])
        };
        let mut consumer = GroupConsumer::join(config, group_config).await?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            while !flag.load(Ordering::Relaxed) {
                consumer.poll(Duration::from_millis(50)).await?;
            }
            consumer.close().await?;
            Ok(())
        });
        Ok(Member { stop, task })
    }

    async fn leave(self) -> Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.context("member task")?
    }
}

/// Waits until the broker reports `members` members sharing every partition
/// fairly; returns when it saw that.
async fn settled(admin: &Admin, group: &str, members: usize, partitions: u32) -> Result<Instant> {
    let start = Instant::now();
    let fair_low = partitions as usize / members.max(1);
    let fair_high = fair_low + usize::from(!(partitions as usize).is_multiple_of(members.max(1)));
    loop {
        let d = admin.describe_group(group).await?;
        let counts: Vec<usize> = d
            .members
            .iter()
            .map(|m| m.assignment.iter().map(|t| t.partitions.len()).sum())
            .collect();
        let total: usize = counts.iter().sum();
        if d.members.len() == members
            && total == partitions as usize
            && counts.iter().all(|c| (fair_low..=fair_high).contains(c))
        {
            return Ok(Instant::now());
        }
        if start.elapsed() > SETTLE_LIMIT {
            bail!("the group did not settle within {SETTLE_LIMIT:?}: {counts:?}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Runs the bench; see the module docs.
///
/// # Errors
/// Connection errors; a rebalance that does not settle within 30 s.
pub async fn rebalance(broker: &BrokerArgs, args: &RebalanceBench) -> Result<()> {
    let admin = Admin::connect(broker.connection()).await?;
    match admin.create_topic(&args.topic, args.partitions, &[]).await {
        Ok(()) => {}
        Err(e) if e.code() == Some(warren_protocol::ErrorCode::TOPIC_ALREADY_EXISTS) => {}
        Err(e) => return Err(e).context(format!("creating topic {}", args.topic)),
    }
    let partitions = u32::try_from(admin.describe_topic(&args.topic).await?.partitions.len())?;
    let group = format!(
        "bench-rebalance-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let base = args.members.max(1) as usize;
    let mut members = Vec::with_capacity(base);
    for _ in 0..base {
        members.push(Member::start(broker, &group, args).await?);
    }
    settled(&admin, &group, base, partitions).await?;
    let mut times = Vec::with_capacity(args.rounds as usize);
    let mut extra: Option<Member> = None;
    for round in 0..args.rounds {
        let (started, expected) = match extra.take() {
            None => {
                let started = Instant::now();
                extra = Some(Member::start(broker, &group, args).await?);
                (started, base + 1)
            }
            Some(member) => {
                let started = Instant::now();
                member.leave().await?;
                (started, base)
            }
        };
        let done = settled(&admin, &group, expected, partitions).await?;
        let took = done - started;
        times.push(took);
        if !args.json {
            let what = if expected > base { "join" } else { "leave" };
            println!(
                "round {round}: {what} settled in {:.1} ms",
                took.as_secs_f64() * 1e3
            );
        }
    }
    if let Some(m) = extra {
        m.leave().await?;
    }
    for m in members {
        m.leave().await?;
    }
    let mut sorted = times.clone();
    sorted.sort();
    let ms = |d: Option<&Duration>| d.map_or(0.0, |d| (d.as_secs_f64() * 1e4).round() / 10.0);
    let median = ms(sorted.get(sorted.len() / 2));
    let max = ms(sorted.last());
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "bench": "rebalance",
                "members": base,
                "partitions": partitions,
                "rounds": times.len(),
                "median_ms": median,
                "max_ms": max,
                "rounds_ms": times.iter().map(|t| ms(Some(t))).collect::<Vec<_>>(),
            })
        );
    } else {
        println!(
            "rebalance: {base} members (+1 joining/leaving), {partitions} partitions, {} rounds: median {median} ms, max {max} ms",
            times.len()
        );
    }
    Ok(())
}
