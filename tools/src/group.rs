//! `warren group list|describe|reset-offsets`: consumer-group administration
//! through the client's `Admin`.
//!
//! ```text
//! $ warren group describe billing
//! Group: billing  Members: 2
//! MEMBER                  GENERATION  TOPICS  PARTITIONS
//! member-18f3a2c1d-1               3  orders  orders/0,orders/1,orders/2
//! member-18f3a2c1d-2               2  orders  orders/3,orders/4,orders/5
//! TOPIC   PARTITION  COMMITTED  END_OFFSET  LAG  OWNER
//! orders          0       1200        1250   50  member-18f3a2c1d-1
//! ```
//!
//! `COMMITTED` is `-` when the group has committed nothing for the partition
//! (the lag is then the whole log). `reset-offsets` sets a group's committed
//! offsets for one topic; the broker refuses it while the group has members
//! (stop the consumers first).
//!
//! Thread safety: runs on the calling thread's own runtime; nothing is shared.

use std::io::{self, Write};
use std::time::UNIX_EPOCH;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use warren_client::{Admin, OffsetSpec};

use crate::connect::{BrokerArgs, ClientContext, connect_error, runtime};
use crate::topic::{Align, Table};

/// Arguments of `warren group`.
#[derive(Debug, Args)]
pub struct GroupArgs {
    #[command(flatten)]
    pub broker: BrokerArgs,
    #[command(subcommand)]
    pub command: GroupCommand,
}

/// The `group` subcommands.
#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// List every group with members or committed offsets
    List,
    /// Print a group's members and, per partition, the committed offset, end
    /// offset, lag and owner
    Describe {
        /// The group
        group: String,
    },
    /// Set a group's committed offsets for a topic (refused while the group
    /// has members)
    ResetOffsets(ResetArgs),
}

/// Arguments of `warren group reset-offsets`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("to").required(true).args(["to_earliest", "to_latest", "to_offset", "to_datetime"])))]
pub struct ResetArgs {
    /// The group
    pub group: String,
    /// The topic whose offsets to set
    #[arg(long)]
    pub topic: String,
    /// Only this partition [default: every partition]
    #[arg(long, value_name = "P")]
    pub partition: Option<u32>,
    /// To the oldest record kept
    #[arg(long)]
    pub to_earliest: bool,
    /// To the end of the log (skip everything there is)
    #[arg(long)]
    pub to_latest: bool,
    /// To this offset (clamped to the partition's range)
    #[arg(long, value_name = "N")]
    pub to_offset: Option<u64>,
    /// To the first record at or after this time: RFC 3339
    /// (2026-11-24T09:30:00Z) or milliseconds since the epoch
    #[arg(long, value_name = "T", value_parser = parse_datetime)]
    pub to_datetime: Option<i64>,
}

/// Milliseconds since the epoch, from RFC 3339 or a plain number.
fn parse_datetime(s: &str) -> Result<i64, String> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let t = humantime::parse_rfc3339_weak(s)
        .map_err(|e| format!("{s:?} is not RFC 3339 (2026-11-24T09:30:00Z) or epoch ms: {e}"))?;
    let since = t
        .duration_since(UNIX_EPOCH)
        .map_err(|_| format!("{s:?} is before 1970"))?;
    i64::try_from(since.as_millis()).map_err(|_| format!("{s:?} is too far in the future"))
}

/// Runs a `group` subcommand.
///
/// # Errors
/// The connection's errors and the broker's refusals, naming the group.
pub fn run(args: &GroupArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let admin = Admin::connect(args.broker.connection())
            .await
            .map_err(|e| connect_error(&args.broker, e))?;
        let stdout = io::stdout();
        let mut out = stdout.lock();
        match &args.command {
            GroupCommand::List => {
                let groups = admin
                    .list_groups()
                    .await
                    .doing(|| "listing groups".into())?;
                let mut table = Table::new(&[("GROUP", Align::Left), ("MEMBERS", Align::Right)]);
                for g in groups {
                    table.row(vec![g.group, g.members.to_string()]);
                }
                table.write(&mut out).context("writing to stdout")?;
            }
            GroupCommand::Describe { group } => describe(&admin, group, &mut out).await?,
            GroupCommand::ResetOffsets(reset) => {
                let set = reset_offsets(&admin, reset).await?;
                for (partition, offset) in set {
                    writeln!(
                        out,
                        "{} {}/{partition} -> {offset}",
                        reset.group, reset.topic
                    )
                    .context("writing to stdout")?;
                }
            }
        }
        out.flush().context("writing to stdout")
    })
}

async fn describe(admin: &Admin, group: &str, out: &mut impl Write) -> anyhow::Result<()> {
    let d = admin
        .describe_group(group)
        .await
        .doing(|| format!("describing group {group}"))?;
    writeln!(out, "Group: {}  Members: {}", d.group, d.members.len())
        .context("writing to stdout")?;
    if !d.members.is_empty() {
        let mut members = Table::new(&[
            ("MEMBER", Align::Left),
            ("GENERATION", Align::Right),
            ("TOPICS", Align::Left),
            ("PARTITIONS", Align::Left),
        ]);
        for m in &d.members {
            let partitions: Vec<String> = m
                .assignment
                .iter()
                .flat_map(|t| t.partitions.iter().map(move |p| format!("{}/{p}", t.topic)))
                .collect();
            members.row(vec![
                m.member_id.clone(),
                m.generation.to_string(),
                m.topics.join(","),
                if partitions.is_empty() {
                    "-".into()
                } else {
                    partitions.join(",")
                },
            ]);
        }
        members.write(out).context("writing to stdout")?;
    }
    let mut offsets = Table::new(&[
        ("TOPIC", Align::Left),
        ("PARTITION", Align::Right),
        ("COMMITTED", Align::Right),
        ("END_OFFSET", Align::Right),
        ("LAG", Align::Right),
        ("OWNER", Align::Left),
    ]);
    let dash = |v: i64| if v < 0 { "-".to_owned() } else { v.to_string() };
    for t in &d.offsets {
        for p in &t.partitions {
            offsets.row(vec![
                t.topic.clone(),
                p.partition.to_string(),
                dash(p.committed),
                dash(p.log_end_offset),
                dash(p.lag),
                if p.owner.is_empty() {
                    "-".into()
                } else {
                    p.owner.clone()
                },
            ]);
        }
    }
    offsets.write(out).context("writing to stdout")
}

/// Resolves the target offsets and commits them; returns what was set.
async fn reset_offsets(admin: &Admin, reset: &ResetArgs) -> anyhow::Result<Vec<(u32, u64)>> {
    let topic = reset.topic.as_str();
    let what = || format!("resetting offsets of group {} on {topic}", reset.group);
    let count = admin
        .describe_topic(topic)
        .await
        .doing(what)?
        .partitions
        .len();
    let count = u32::try_from(count).unwrap_or(u32::MAX);
    let partitions: Vec<u32> = match reset.partition {
        Some(p) if p >= count => bail!(
            "{}: the topic has no partition {p} (it has {count})",
            what()
        ),
        Some(p) => vec![p],
        None => (0..count).collect(),
    };
    let mut targets = Vec::with_capacity(partitions.len());
    for p in partitions {
        let lookup = |spec| admin.list_offsets(topic, p, spec);
        let start = lookup(OffsetSpec::Earliest)
            .await
            .doing(what)?
            .offset
            .unwrap_or(0);
        let end = lookup(OffsetSpec::Latest)
            .await
            .doing(what)?
            .offset
            .unwrap_or(start);
        let offset = if reset.to_earliest {
            start
        } else if reset.to_latest {
            end
        } else if let Some(n) = reset.to_offset {
            n.clamp(start, end)
        } else if let Some(ts) = reset.to_datetime {
            // A time after every record: the end of the log.
            lookup(OffsetSpec::Timestamp(ts))
                .await
                .doing(what)?
                .offset
                .unwrap_or(end)
        } else {
            bail!(
                "{}: say where to (--to-earliest, --to-latest, --to-offset, --to-datetime)",
                what()
            )
        };
        targets.push((p, offset));
    }
    admin
        .reset_offsets(&reset.group, topic, &targets)
        .await
        .doing(what)?;
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_parse_as_rfc3339_or_epoch_ms() {
        assert_eq!(parse_datetime("1700000000000"), Ok(1_700_000_000_000));
        assert_eq!(parse_datetime("1970-01-01T00:00:01Z"), Ok(1000));
        assert_eq!(
            parse_datetime("2026-11-24T09:30:00Z"),
            Ok(1_795_512_600_000)
        );
        assert!(parse_datetime("yesterday").is_err());
    }
}
