//! `warren topic create|list|describe|delete`: topic administration through the
//! client's `Admin`.
//!
//! Output is for people and for `awk`: a table per listing, columns separated
//! by at least two spaces, no cell containing a space (sizes print as
//! `12.3KiB`).
//!
//! ```text
//! $ warren topic describe orders
//! Topic: orders  Partitions: 2  Routing: direct  Alternate-topic: orders-unrouted
//! Configs:
//!   durability         fsync
//!   max.message.bytes  1048576
//!   ...
//!   routing            direct
//!   alternate.topic    orders-unrouted
//! PARTITION  LOG_START_OFFSET  LOG_END_OFFSET  HIGH_WATERMARK     SIZE  SEGMENTS
//!         0                 0            1000            1000  52.1KiB         1
//!         1                 0             980             980  50.9KiB         1
//! BINDING  PARTITIONS
//! eu       0,1
//! us       1
//! ```
//!
//! The header names the routing mode and, for `direct` and `topic`, the
//! alternate topic (`-` when none is set). A `direct` or `topic` topic ends with its bindings
//! (`(none)` when it has none); a binding key with a space or an empty key
//! is printed quoted (`""`), so each row stays two words.
//!
//! Thread safety: runs on the calling thread's own runtime; nothing is shared.

use std::io::{self, Write};

use anyhow::Context;
use clap::{Args, Subcommand};
use warren_client::Admin;
use warren_client::RoutingMode;
use warren_protocol::api::topics::DescribeTopicResponse;

use crate::connect::{BrokerArgs, ClientContext, connect_error, runtime};

/// Arguments of `warren topic`.
#[derive(Debug, Args)]
pub struct TopicArgs {
    #[command(flatten)]
    pub broker: BrokerArgs,
    #[command(subcommand)]
    pub command: TopicCommand,
}

/// The `topic` subcommands.
#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic
    Create(CreateArgs),
    /// List every topic and its partition count
    List,
    /// Print a topic's configs and per-partition offsets and sizes
    Describe {
        /// The topic
        name: String,
    },
    /// Delete a topic and all its data
    Delete {
        /// The topic
        name: String,
    },
}

/// Arguments of `warren topic create`; unset configs keep the broker's defaults.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The topic name: 1 to 242 characters of [A-Za-z0-9._-]
    pub name: String,
    /// Number of partitions (1..=10000)
    #[arg(long, value_name = "N")]
    pub partitions: u32,
    /// When an append is durable: fsync, none or interval:<ms> [config: durability]
    #[arg(long, value_name = "MODE", value_parser = parse_durability)]
    pub durability: Option<String>,
    /// Delete the oldest segments while a partition is larger; -1 = unlimited
    /// [config: retention.bytes]
    #[arg(long, value_name = "B", allow_hyphen_values = true)]
    pub retention_bytes: Option<i64>,
    /// Delete segments whose newest record is older; -1 = unlimited [config: retention.ms]
    #[arg(long, value_name = "MS", allow_hyphen_values = true)]
    pub retention_ms: Option<i64>,
    /// Roll a partition's active segment before it exceeds this [config: segment.bytes]
    #[arg(long, value_name = "B")]
    pub segment_bytes: Option<u64>,
    /// Roll the active segment once it has held data this long [config: segment.ms]
    #[arg(long, value_name = "MS")]
    pub segment_ms: Option<u64>,
    /// Largest record batch a produce may carry [config: max.message.bytes]
    #[arg(long, value_name = "B")]
    pub max_message_bytes: Option<u64>,
    /// How a keyed record without a partition is placed: hash (by the key's
    /// hash), direct (partitions bound to the exact key) or topic (bound
    /// patterns) [config: routing]
    #[arg(long, value_name = "MODE", value_parser = parse_routing)]
    pub routing: Option<String>,
    /// Where records that match no binding go instead of failing UNROUTABLE
    /// (routing direct or topic only) [config: alternate.topic]
    #[arg(long, value_name = "TOPIC")]
    pub alternate_topic: Option<String>,
    /// Share groups: where rejected records, and those out of delivery attempts,
    /// are written [config: dead.letter.topic]
    #[arg(long, value_name = "TOPIC")]
    pub dead_letter_topic: Option<String>,
    /// Share groups: deliveries before a record goes to the dead-letter topic,
    /// 1..=100 [config: max.delivery.attempts]
    #[arg(long, value_name = "N")]
    pub max_delivery_attempts: Option<u16>,
    /// Share groups: how long a delivered record stays locked for its consumer
    /// [config: share.lock.timeout.ms]
    #[arg(long, value_name = "MS")]
    pub share_lock_timeout_ms: Option<u64>,
}

impl CreateArgs {
    /// The CreateTopic configs: only the options given, under their topic keys.
    fn configs(&self) -> Vec<(&'static str, String)> {
        let entries = [
            ("durability", self.durability.clone()),
            (
                "retention.bytes",
                self.retention_bytes.map(|v| v.to_string()),
            ),
            ("retention.ms", self.retention_ms.map(|v| v.to_string())),
            ("segment.bytes", self.segment_bytes.map(|v| v.to_string())),
            ("segment.ms", self.segment_ms.map(|v| v.to_string())),
            (
                "max.message.bytes",
                self.max_message_bytes.map(|v| v.to_string()),
            ),
            ("routing", self.routing.clone()),
            ("alternate.topic", self.alternate_topic.clone()),
            ("dead.letter.topic", self.dead_letter_topic.clone()),
            (
                "max.delivery.attempts",
                self.max_delivery_attempts.map(|v| v.to_string()),
            ),
            (
                "share.lock.timeout.ms",
                self.share_lock_timeout_ms.map(|v| v.to_string()),
            ),
        ];
        entries
            .into_iter()
            .filter_map(|(key, value)| value.map(|v| (key, v)))
            .collect()
    }
}

/// Accepts what the broker accepts for `durability`, so a typo fails before
/// any request is sent.
fn parse_durability(s: &str) -> Result<String, String> {
    let ok = match s.strip_prefix("interval:") {
        Some(ms) => ms.parse::<u64>().is_ok_and(|ms| ms > 0),
        None => s == "fsync" || s == "none",
    };
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "{s:?} is not fsync, none or interval:<ms> with ms > 0"
        ))
    }
}

/// Accepts the routing modes the broker knows, so a typo fails before any
/// request is sent.
fn parse_routing(s: &str) -> Result<String, String> {
    s.parse::<RoutingMode>()
        .map(|mode| mode.name().to_owned())
        .map_err(|e| e.to_string())
}

/// Runs a `topic` subcommand.
///
/// # Errors
/// The connection's errors, and the broker's refusal (the topic exists, does
/// not exist, an invalid config...) naming the topic.
pub fn run(args: &TopicArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let admin = Admin::connect(args.broker.connection())
            .await
            .map_err(|e| connect_error(&args.broker, e))?;
        let stdout = io::stdout();
        let mut out = stdout.lock();
        match &args.command {
            TopicCommand::Create(create) => {
                let configs = create.configs();
                let configs: Vec<(&str, &str)> =
                    configs.iter().map(|(k, v)| (*k, v.as_str())).collect();
                admin
                    .create_topic(&create.name, create.partitions, &configs)
                    .await
                    .doing(|| format!("creating topic {}", create.name))?;
                writeln!(out, "created topic {}", create.name).context("writing to stdout")?;
            }
            TopicCommand::List => {
                let topics = admin
                    .list_topics()
                    .await
                    .doing(|| "listing topics".into())?;
                let mut table = Table::new(&[("TOPIC", Align::Left), ("PARTITIONS", Align::Right)]);
                for t in topics {
                    table.row(vec![t.name, t.partitions.to_string()]);
                }
                table.write(&mut out).context("writing to stdout")?;
            }
            TopicCommand::Describe { name } => {
                let description = admin
                    .describe_topic(name)
                    .await
                    .doing(|| format!("describing topic {name}"))?;
                write_description(&mut out, &description).context("writing to stdout")?;
            }
            TopicCommand::Delete { name } => {
                admin
                    .delete_topic(name)
                    .await
                    .doing(|| format!("deleting topic {name}"))?;
                writeln!(out, "deleted topic {name}").context("writing to stdout")?;
            }
        }
        out.flush().context("writing to stdout")
    })
}

/// Prints a DescribeTopic response: the configs, a table of partitions and,
/// for a `direct` or `topic` topic, a table of bindings.
fn write_description(out: &mut impl Write, d: &DescribeTopicResponse) -> io::Result<()> {
    let config = |key: &str| {
        d.configs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let routing = config("routing").unwrap_or("hash");
    let alternate = config("alternate.topic").filter(|t| !t.is_empty());
    write!(
        out,
        "Topic: {}  Partitions: {}  Routing: {routing}",
        d.name,
        d.partitions.len()
    )?;
    if routing == "hash" {
        writeln!(out)?;
    } else {
        writeln!(out, "  Alternate-topic: {}", alternate.unwrap_or("-"))?;
    }
    writeln!(out, "Configs:")?;
    let width = d.configs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, value) in &d.configs {
        writeln!(out, "  {}", format!("{key:<width$}  {value}").trim_end())?;
    }
    let mut table = Table::new(&[
        ("PARTITION", Align::Right),
        ("LOG_START_OFFSET", Align::Right),
        ("LOG_END_OFFSET", Align::Right),
        ("HIGH_WATERMARK", Align::Right),
        ("SIZE", Align::Right),
        ("SEGMENTS", Align::Right),
    ]);
    for p in &d.partitions {
        table.row(vec![
            p.partition.to_string(),
            p.log_start_offset.to_string(),
            p.log_end_offset.to_string(),
            p.high_watermark.to_string(),
            human_bytes(p.size_bytes),
            p.segments.to_string(),
        ]);
    }
    table.write(out)?;
    if routing == "hash" {
        return Ok(());
    }
    if d.bindings.is_empty() {
        return writeln!(out, "Bindings: (none)");
    }
    let mut bindings = Table::new(&[("BINDING", Align::Left), ("PARTITIONS", Align::Left)]);
    for b in &d.bindings {
        let key = if b.key.is_empty() || b.key.contains(char::is_whitespace) {
            format!("{:?}", b.key)
        } else {
            b.key.clone()
        };
        let partitions: Vec<String> = b.partitions.iter().map(u32::to_string).collect();
        bindings.row(vec![key, partitions.join(",")]);
    }
    bindings.write(out)
}

/// A byte count for people: `870B`, `52.1KiB`, `1.0GiB` (binary units, one
/// decimal, no space so a table column stays one word).
fn human_bytes(n: u64) -> String {
    if n < 1024 {
        return format!("{n}B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = "KiB";
    for next in ["MiB", "GiB", "TiB", "PiB", "EiB"] {
        // Switch units only where the one-decimal rounding stays below 1024.
        if value < 1023.95 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    format!("{value:.1}{unit}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Right,
}

/// A text table: a header row, then rows, columns padded to their widest
/// cell and separated by two spaces.
pub(crate) struct Table {
    columns: Vec<(&'static str, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(columns: &[(&'static str, Align)]) -> Self {
        Table {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub(crate) fn write(&self, out: &mut impl Write) -> io::Result<()> {
        let widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, (name, _))| {
                let cells = self.rows.iter().filter_map(|r| r.get(i)).map(String::len);
                cells.fold(name.len(), usize::max)
            })
            .collect();
        let header: Vec<&str> = self.columns.iter().map(|(name, _)| *name).collect();
        self.write_row(out, &header, &widths)?;
        for row in &self.rows {
            let cells: Vec<&str> = row.iter().map(String::as_str).collect();
            self.write_row(out, &cells, &widths)?;
        }
        Ok(())
    }

    fn write_row(&self, out: &mut impl Write, cells: &[&str], widths: &[usize]) -> io::Result<()> {
        let mut line = String::new();
        for (i, ((cell, width), (_, align))) in
            cells.iter().zip(widths).zip(&self.columns).enumerate()
        {
            if i > 0 {
                line.push_str("  ");
            }
            let last = i + 1 == self.columns.len();
            match align {
                // No trailing spaces after the last column.
                Align::Left if last => line.push_str(cell),
                Align::Left => line.push_str(&format!("{cell:<width$}")),
                Align::Right => line.push_str(&format!("{cell:>width$}")),
            }
        }
        writeln!(out, "{line}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_uses_binary_units_with_one_decimal() {
        assert_eq!(human_bytes(0), "0B");
        assert_eq!(human_bytes(1023), "1023B");
        assert_eq!(human_bytes(1024), "1.0KiB");
        assert_eq!(human_bytes(53_350), "52.1KiB");
        assert_eq!(human_bytes(1024 * 1024 - 1), "1.0MiB");
        assert_eq!(human_bytes(1 << 30), "1.0GiB");
        assert_eq!(human_bytes(u64::MAX), "16.0EiB");
    }

    #[test]
    fn durability_accepts_the_broker_modes_only() {
        assert!(parse_durability("fsync").is_ok());
        assert!(parse_durability("none").is_ok());
        assert!(parse_durability("interval:50").is_ok());
        assert!(parse_durability("interval:0").is_err());
        assert!(parse_durability("interval:").is_err());
        assert!(parse_durability("always").is_err());
    }

    #[test]
    fn configs_hold_only_the_options_given() {
        let args = CreateArgs {
            name: "t".into(),
            partitions: 1,
            durability: Some("none".into()),
            retention_bytes: Some(-1),
            retention_ms: None,
            segment_bytes: Some(4096),
            segment_ms: None,
            max_message_bytes: None,
            routing: Some("direct".into()),
            alternate_topic: Some("spill".into()),
            dead_letter_topic: Some("t.dlq".into()),
            max_delivery_attempts: None,
            share_lock_timeout_ms: Some(5000),
        };
        assert_eq!(
            args.configs(),
            [
                ("durability", "none".to_owned()),
                ("retention.bytes", "-1".to_owned()),
                ("segment.bytes", "4096".to_owned()),
                ("routing", "direct".to_owned()),
                ("alternate.topic", "spill".to_owned()),
                ("dead.letter.topic", "t.dlq".to_owned()),
                ("share.lock.timeout.ms", "5000".to_owned()),
            ]
        );
    }

    #[test]
    fn routing_accepts_the_broker_modes_only() {
        assert_eq!(parse_routing("direct"), Ok("direct".to_owned()));
        assert_eq!(parse_routing("topic"), Ok("topic".to_owned()));
        assert_eq!(parse_routing("hash"), Ok("hash".to_owned()));
        assert!(parse_routing("fanout").is_err());
        assert!(parse_routing("Direct").is_err());
    }

    #[test]
    fn tables_pad_columns_to_the_widest_cell() {
        let mut t = Table::new(&[("TOPIC", Align::Left), ("PARTITIONS", Align::Right)]);
        t.row(vec!["orders-long".into(), "3".into()]);
        t.row(vec!["a".into(), "10000".into()]);
        let mut out = Vec::new();
        t.write(&mut out).ok();
        assert_eq!(
            String::from_utf8_lossy(&out),
            "TOPIC        PARTITIONS\n\
             orders-long           3\n\
             a                 10000\n"
        );
    }
}
