//! `warren bind TOPIC KEY --partition P` and `warren unbind TOPIC KEY
//! --partition P`: add or remove bindings of a `direct` or `topic` topic
//! through the client's `Admin`.
//!
//! `KEY` is an exact routing key on a `direct` topic and a pattern (`*` = one
//! word, `#` = zero or more, words split on `.`) on a `topic` topic.
//! `--partition` may be repeated or take a comma-separated list. The command
//! returns once the change is durable; it prints one line:
//!
//! ```text
//! $ warren bind orders 'orders.*.eu' --partition 0,2
//! bound "orders.*.eu" to orders partitions 0, 2
//! ```
//!
//! Thread safety: runs on the calling thread's own runtime; nothing is shared.

use std::io::Write;

use anyhow::Context;
use clap::Args;
use warren_client::Admin;

use crate::connect::{BrokerArgs, ClientContext, connect_error, runtime};

/// Arguments of `warren bind` and `warren unbind`.
#[derive(Debug, Args)]
pub struct BindArgs {
    #[command(flatten)]
    pub broker: BrokerArgs,
    /// The topic (routing direct or topic)
    pub topic: String,
    /// The routing key (direct) or pattern with `*` and `#` (topic); at most 255 bytes
    #[arg(allow_hyphen_values = true)]
    pub key: String,
    /// Partition(s) of the topic: repeat the option or separate with commas
    #[arg(long, value_name = "P", required = true, value_delimiter = ',')]
    pub partition: Vec<u32>,
}

/// Binds (`bind = true`) or unbinds.
///
/// # Errors
/// The connection's errors, and the broker's refusal (an unknown topic, a
/// `hash` topic, a partition out of range, a key too long) with its reason.
pub fn run(args: &BindArgs, bind: bool) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let admin = Admin::connect(args.broker.connection())
            .await
            .map_err(|e| connect_error(&args.broker, e))?;
        let (topic, key, partitions) = (&args.topic, &args.key, &args.partition);
        let list = partitions
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let line = if bind {
            admin
                .bind(topic, key, partitions)
                .await
                .doing(|| "bind failed".into())?;
            format!("bound {key:?} to {topic} partitions {list}")
        } else {
            admin
                .unbind(topic, key, partitions)
                .await
                .doing(|| "unbind failed".into())?;
            format!("unbound {key:?} from {topic} partitions {list}")
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .context("writing to stdout")
    })
}
