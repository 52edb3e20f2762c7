//! `warren acl grant|revoke|list`: ACL entries through the client's `Admin`.
//!
//! An entry gives a user a permission (`read`, `write` or `admin`; admin
//! implies read and write, write does not imply read) on a resource: topics or
//! groups whose name matches a pattern (`*` = any run of characters), or the
//! cluster (managing users and ACLs).
//!
//! ```text
//! $ warren acl grant app --topic 'orders.*' --permission write
//! granted app topic:orders.* write
//! $ warren acl list app
//! USER  RESOURCE        PERMISSION
//! app   topic:orders.*  write
//! ```
//!
//! Thread safety: runs on the calling thread's own runtime; nothing is shared.

use std::io::{self, Write};

use anyhow::Context;
use clap::{ArgGroup, Args, Subcommand};
use warren_client::{AclEntry, Admin, Permission, Resource, ResourceType};

use crate::connect::{BrokerArgs, ClientContext, connect_error, runtime};
use crate::topic::{Align, Table};

/// Arguments of `warren acl`.
#[derive(Debug, Args)]
pub struct AclArgs {
    #[command(flatten)]
    pub broker: BrokerArgs,
    #[command(subcommand)]
    pub command: AclCommand,
}

/// The `acl` subcommands.
#[derive(Debug, Subcommand)]
pub enum AclCommand {
    /// Give a user a permission on topics, groups or the cluster
    Grant(AclSpec),
    /// Take a permission back (exactly as granted)
    Revoke(AclSpec),
    /// List the ACL entries of one user, or of everyone
    List {
        /// Only this user's entries
        #[arg(id = "acl_user", value_name = "USER")]
        user: Option<String>,
    },
}

/// One ACL entry on the command line.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("resource").required(true).args(["topic", "group", "cluster"])))]
pub struct AclSpec {
    /// The user (not `user` as the argument id: that is the global --user)
    #[arg(id = "acl_user", value_name = "USER")]
    pub user: String,
    /// Topics whose name matches PATTERN (`*` = any run of characters)
    #[arg(long, value_name = "PATTERN")]
    pub topic: Option<String>,
    /// Consumer or share groups whose name matches PATTERN
    #[arg(long, value_name = "PATTERN")]
    pub group: Option<String>,
    /// The cluster: admin here means managing users and ACLs
    #[arg(long)]
    pub cluster: bool,
    /// read, write or admin (admin implies read and write)
    #[arg(long, value_name = "PERMISSION", value_parser = parse_permission)]
    pub permission: Permission,
}

fn parse_permission(s: &str) -> Result<Permission, String> {
    s.parse()
        .map_err(|e: warren_protocol::api::auth::InvalidAcl| e.to_string())
}

impl AclSpec {
    /// The entry, its pattern checked.
    fn entry(&self) -> anyhow::Result<AclEntry> {
        let (resource_type, pattern) = match (&self.topic, &self.group) {
            (Some(t), _) => (ResourceType::Topic, t.clone()),
            (_, Some(g)) => (ResourceType::Group, g.clone()),
            _ => (ResourceType::Cluster, String::new()),
        };
        let resource = Resource {
            resource_type,
            pattern,
        };
        resource.validate()?;
        Ok(AclEntry {
            user: self.user.clone(),
            resource,
            permission: self.permission,
        })
    }
}

/// Runs `warren acl ...`.
///
/// # Errors
/// An invalid pattern; the connection's errors; the broker's refusal.
pub fn run(args: &AclArgs) -> anyhow::Result<()> {
    let entry = match &args.command {
        AclCommand::Grant(spec) | AclCommand::Revoke(spec) => Some(spec.entry()?),
        AclCommand::List { .. } => None,
    };
    runtime()?.block_on(async {
        let admin = Admin::connect(args.broker.connection())
            .await
            .map_err(|e| connect_error(&args.broker, e))?;
        let stdout = io::stdout();
        let mut out = stdout.lock();
        match (&args.command, entry) {
            (AclCommand::Grant(_), Some(entry)) => {
                let text = entry.to_string();
                admin
                    .grant(entry)
                    .await
                    .doing(|| format!("granting {text}"))?;
                writeln!(out, "granted {text}").context("writing to stdout")?;
            }
            (AclCommand::Revoke(_), Some(entry)) => {
                let text = entry.to_string();
                admin
                    .revoke(entry)
                    .await
                    .doing(|| format!("revoking {text}"))?;
                writeln!(out, "revoked {text}").context("writing to stdout")?;
            }
            (AclCommand::List { user }, _) => {
                let acls = admin
                    .list_acls(user.as_deref())
                    .await
                    .doing(|| "listing ACLs".into())?;
                let mut table = Table::new(&[
                    ("USER", Align::Left),
                    ("RESOURCE", Align::Left),
                    ("PERMISSION", Align::Left),
                ]);
                for a in acls {
                    table.row(vec![
                        a.user,
                        a.resource.to_string(),
                        a.permission.to_string(),
                    ]);
                }
                table.write(&mut out).context("writing to stdout")?;
            }
            // `entry` is Some exactly for grant and revoke (above).
            (AclCommand::Grant(_) | AclCommand::Revoke(_), None) => {}
        }
        out.flush().context("writing to stdout")
    })
}
